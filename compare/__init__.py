"""compare: theory and finite networks side by side (datasets, gap metrics, sweeps, figures, CLI).

Importing it registers the ``Dataset.ntkgap`` accessor. The recipes (:mod:`compare.recipes`) are
imported on first use, so ``import compare`` then ``compare.recipes.run_recipe(...)`` works.
"""

import importlib as _importlib

from . import _accessor  # noqa: F401  (registers Dataset.ntkgap)
from ._config import ConfigError, DataSpec, InitPoint, SweepConfig, TrainingSpec, load_sweep
from ._data import (
    load_cifar10,
    load_digits,
    load_mnist,
    load_user_arrays,
    normalize_to_sphere,
    sphere_points,
)
from ._kernel_matrix import KernelMatrixResult, kernel_matrix
from ._kernel_solve import predict_from_store
from ._metrics import (
    cka,
    condition_number,
    diagonal_relative_variance,
    eigenvalues,
    function_distance,
    kernel_regression_prediction,
    relative_frobenius,
    relative_kernel_change,
    relative_variance,
    width_scaling_exponent,
)
from ._plan import Task, plan_tasks
from ._schema import CONVENTIONS, provenance_attrs, theory_empirical_dataset
from ._store import StoreMismatchError
from ._sweep import SweepResult, combine_results, open_sweep_store, run_sweep

__all__ = [
    "CONVENTIONS",
    "ConfigError",
    "DataSpec",
    "InitPoint",
    "KernelMatrixResult",
    "StoreMismatchError",
    "SweepConfig",
    "SweepResult",
    "Task",
    "TrainingSpec",
    "cka",
    "combine_results",
    "condition_number",
    "diagonal_relative_variance",
    "eigenvalues",
    "function_distance",
    "kernel_matrix",
    "kernel_regression_prediction",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "load_sweep",
    "load_user_arrays",
    "normalize_to_sphere",
    "open_sweep_store",
    "plan_tasks",
    "predict_from_store",
    "provenance_attrs",
    "recipes",
    "relative_frobenius",
    "relative_kernel_change",
    "relative_variance",
    "run_sweep",
    "sphere_points",
    "theory_empirical_dataset",
    "width_scaling_exponent",
]
from ntktheory._version import __version__ as __version__


def __getattr__(name: str):
    """``compare.recipes`` on first access (it imports torch-based experiments, which ``import compare`` avoids)."""
    if name == "recipes":
        return _importlib.import_module(".recipes", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
