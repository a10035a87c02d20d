"""empirical: finite-width networks measured with torch, under ntktheory's conventions."""

from ._activations import TorchActivation, torch_activation
from ._mlp import MLP, ScaledLinear
from ._ntk import nngp, ntk

__all__ = ["MLP", "ScaledLinear", "TorchActivation", "nngp", "ntk", "torch_activation"]
__version__ = "0.1.0"
