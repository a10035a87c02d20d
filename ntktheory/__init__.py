"""ntktheory: infinite-width NNGP and NTK kernels and mean-field analysis, analytically.

Never imports torch.
"""

from . import activations
from .activations import Activation, get_activation
from ._meanfield import MeanField, critical_sigma_w2, mean_field, meanfield_trajectory
from ._kernels import kernels
from ._phase import phase_diagram

__all__ = [
    "Activation",
    "MeanField",
    "activations",
    "critical_sigma_w2",
    "get_activation",
    "kernels",
    "mean_field",
    "meanfield_trajectory",
    "phase_diagram",
]
__version__ = "0.1.0"
