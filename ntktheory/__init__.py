"""ntktheory: infinite-width NNGP and NTK kernels and mean-field analysis, analytically.

Never imports torch.
"""

from . import activations
from .activations import Activation, get_activation

__all__ = ["Activation", "activations", "get_activation"]
__version__ = "0.1.0"
