"""ntktheory: infinite-width NNGP and NTK kernels and mean-field analysis, analytically.

Never imports torch.
"""

from . import activations
from ._finite_width import (
    hanin_nica_beta,
    hanin_nica_ratio,
    relu_ntk_mean_parts,
    seleznova_kutyniok_dispersion,
)
from ._kernels import kernels
from ._large_depth import large_depth_analysis
from ._meanfield import MeanField, critical_sigma_w2, mean_field, meanfield_trajectory
from ._phase import phase_diagram
from ._predict import KernelConditionWarning, predict, predict_from_kernels
from .activations import Activation, get_activation

__all__ = [
    "Activation",
    "KernelConditionWarning",
    "MeanField",
    "activations",
    "critical_sigma_w2",
    "get_activation",
    "hanin_nica_beta",
    "hanin_nica_ratio",
    "kernels",
    "large_depth_analysis",
    "mean_field",
    "meanfield_trajectory",
    "phase_diagram",
    "predict",
    "predict_from_kernels",
    "relu_ntk_mean_parts",
    "seleznova_kutyniok_dispersion",
]
from ._version import __version__ as __version__
