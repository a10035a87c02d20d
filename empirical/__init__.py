"""empirical: finite-width networks measured with torch, under ntktheory's conventions.

Networks (:class:`MLP`), their empirical NTK and NNGP (:func:`ntk`, :func:`nngp`), ensembles over
seeds (:func:`ensemble_kernels`), training with measurements next to the linearised network
(:func:`train`, :class:`Linearized`), and curvature (:func:`model_hessian_norm`,
:func:`loss_hessian_norm`, :func:`gradient_norms`). Conventions: the README's "Conventions"
section; NTK parameterisation by default; float64; ``device="auto"`` picks CUDA when present.
"""

from ._activations import TorchActivation, torch_activation
from ._build import Network, ScaledConv2d, ScaledLinear, build
from ._curvature import gradient_norms, loss_hessian_norm, model_hessian_norm
from ._device import CONVENTIONS, resolve_device
from ._ensemble import ensemble_kernels, stack_models
from ._mlp import MLP
from ._ntk import nngp, ntk
from ._training import Linearized, critical_learning_rate, train

__all__ = [
    "CONVENTIONS",
    "MLP",
    "Linearized",
    "Network",
    "ScaledConv2d",
    "ScaledLinear",
    "TorchActivation",
    "build",
    "critical_learning_rate",
    "ensemble_kernels",
    "gradient_norms",
    "loss_hessian_norm",
    "model_hessian_norm",
    "nngp",
    "ntk",
    "resolve_device",
    "stack_models",
    "torch_activation",
    "train",
]
from ntktheory._version import __version__ as __version__
