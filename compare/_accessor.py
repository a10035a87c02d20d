"""``Dataset.ntkgap``: the gap metrics of :mod:`compare._metrics` on ntkgap Datasets.

Importing :mod:`compare` registers the accessor. It relies only on DESIGN.md variable names
(``ntk_theory``, ``ntk_empirical``, ``nngp_theory``, ``nngp_empirical``, ``ntk_change``,
``f_test``, ``y_train``, ...), so it also works on Datasets loaded from files.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _metrics
from ._schema import KERNEL_DIMS

__all__ = ["NtkgapAccessor"]


@xr.register_dataset_accessor("ntkgap")
class NtkgapAccessor:
    """Gap metrics of a theory-vs-empirical Dataset.

    Examples
    --------
    >>> import compare
    >>> ds = compare.theory_empirical_dataset(ntk_theory=np.eye(2), ntk_empirical=2 * np.eye(2))
    >>> float(ds.ntkgap.relative_frobenius("ntk"))
    1.0
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def _pair(self, kind: str) -> tuple[xr.DataArray, xr.DataArray]:
        if kind not in ("ntk", "nngp"):
            raise ValueError(f"`kind` must be 'ntk' or 'nngp'; got {kind!r}.")
        names = (f"{kind}_empirical", f"{kind}_theory")
        missing = [n for n in names if n not in self._ds]
        if missing:
            raise KeyError(f"the Dataset has no {missing!r}; its variables are {sorted(self._ds.data_vars)!r}.")
        return self._ds[names[0]], self._ds[names[1]]

    def _train_block(self, da: xr.DataArray) -> xr.DataArray:
        if "split" in da.coords and "split" in self._ds.coords:
            return da.isel(x1=(self._ds.split.values == "train"), x2=(self._ds.split.values == "train"))
        return da

    def relative_frobenius(self, kind: str = "ntk") -> xr.DataArray:
        """Relative Frobenius gap |K_emp - K_theory|_F / |K_theory|_F (see :func:`compare.relative_frobenius`)."""
        emp, th = self._pair(kind)
        out = _metrics.relative_frobenius(emp, th)
        out.name = f"{kind}_gap"
        return out

    def relative_variance(self, kind: str = "ntk", dim: str = "seed") -> xr.DataArray:
        """Relative variance of the empirical kernel over ``dim`` (see :func:`compare.relative_variance`)."""
        emp, _ = self._pair(kind)
        out = _metrics.relative_variance(emp, dim=dim)
        out.name = f"{kind}_relative_variance"
        return out

    def cka(self, kind: str = "ntk") -> xr.DataArray:
        """Centered kernel alignment of empirical and analytic kernels (see :func:`compare.cka`)."""
        emp, th = self._pair(kind)
        out = _metrics.cka(emp, th)
        out.name = f"{kind}_cka"
        return out

    def spectra(self, kind: str = "ntk") -> xr.Dataset:
        """Eigenvalues (largest first, dim ``eig``) of both kernels on the training points."""
        emp, th = self._pair(kind)
        return xr.Dataset(
            {
                f"{kind}_eig_empirical": _metrics.eigenvalues(self._train_block(emp)),
                f"{kind}_eig_theory": _metrics.eigenvalues(self._train_block(th)),
            }
        )

    def condition_numbers(self, kind: str = "ntk") -> xr.Dataset:
        """lambda_max / lambda_min of both kernels on the training points, side by side."""
        emp, th = self._pair(kind)
        return xr.Dataset(
            {
                f"{kind}_cond_empirical": _metrics.condition_number(self._train_block(emp)),
                f"{kind}_cond_theory": _metrics.condition_number(self._train_block(th)),
            }
        )

    def kernel_change(self, step: int = -1) -> xr.DataArray:
        """Relative NTK change |Theta_t - Theta_0|_F / |Theta_0|_F at snapshot ``step`` (index)."""
        if "ntk_change" not in self._ds:
            raise KeyError("the Dataset has no 'ntk_change' (run the sweep with training enabled).")
        return self._ds["ntk_change"].isel(step=step)

    def kernel_regression_prediction(self) -> xr.DataArray:
        """Infinite-width mean prediction on the test points at every snapshot (Lee et al. 2019).

        Uses ``ntk_theory``, ``y_train``, the ``learning_rate`` of the training runs (one per
        activation, init and depth) and the ``step`` coordinate; discrete-time gradient descent.
        """
        ds = self._ds
        for name in ("ntk_theory", "y_train", "learning_rate"):
            if name not in ds:
                raise KeyError(f"the Dataset has no {name!r}; kernel regression needs it.")
        train = ds.split.values == "train"
        lr = ds["learning_rate"]
        lr = lr.max([d for d in ("width", "seed") if d in lr.dims])
        steps = ds["step"].values.astype(np.float64)
        n_test = int((~train).sum())

        def predict(k: np.ndarray, eta: np.ndarray) -> np.ndarray:
            flat_k = k.reshape(-1, *k.shape[-2:])
            flat_eta = np.broadcast_to(eta, k.shape[:-2]).reshape(-1)
            y = ds["y_train"].values
            out = np.stack([
                _metrics.kernel_regression_prediction(m[np.ix_(~train, train)], m[np.ix_(train, train)], y, steps,
                                                      learning_rate=float(e), time="discrete")
                if np.all(np.isfinite(m)) and np.isfinite(e) else np.full((steps.size, n_test), np.nan)
                for m, e in zip(flat_k, flat_eta)
            ])
            return out.reshape(*k.shape[:-2], steps.size, n_test)

        out = xr.apply_ufunc(
            predict,
            ds["ntk_theory"],
            lr,
            input_core_dims=[list(KERNEL_DIMS), []],
            output_core_dims=[["step", "test"]],
        )
        out = out.assign_coords(step=ds["step"])
        out.name = "f_kernel_regression"
        return out

    def kernel_regression_distance(self) -> xr.DataArray:
        """Relative distance of the mean trained network output from the kernel-regression mean.

        The mean over seeds of ``f_test`` is compared with the infinite-width prediction at the
        last snapshot (Lee et al. 2019, arXiv:1902.06720, Eq. 11), with
        :func:`compare.function_distance`.
        """
        pred = self.kernel_regression_prediction().isel(step=-1)
        net = self._ds["f_test"].isel(step=-1).mean("seed")
        out = _metrics.function_distance(net, pred, dim="test")
        out.name = "kernel_regression_distance"
        return out

    def width_exponent(self, gap: str | xr.DataArray = "ntk", **kwargs) -> xr.Dataset:
        """Width-scaling exponent of a gap (see :func:`compare.width_scaling_exponent`).

        ``gap`` is a DataArray, a variable name, or ``"ntk"`` / ``"nngp"`` for the relative
        Frobenius gap at initialisation.
        """
        if isinstance(gap, str):
            gap = self.relative_frobenius(gap) if gap in ("ntk", "nngp") else self._ds[gap]
        return _metrics.width_scaling_exponent(gap, **kwargs)

    def gaps(self) -> xr.Dataset:
        """All gap metrics available from the Dataset's variables, in one Dataset."""
        out: dict[str, xr.DataArray] = {}
        for kind in ("ntk", "nngp"):
            if f"{kind}_empirical" in self._ds and f"{kind}_theory" in self._ds:
                out[f"{kind}_gap"] = self.relative_frobenius(kind)
                out[f"{kind}_cka"] = self.cka(kind)
                if "seed" in self._ds[f"{kind}_empirical"].dims and self._ds.sizes["seed"] > 1:
                    out[f"{kind}_relative_variance"] = self.relative_variance(kind)
        if "ntk_change" in self._ds:
            out["ntk_change"] = self.kernel_change()
        if "lin_distance" in self._ds:
            out["lin_distance"] = self._ds["lin_distance"].isel(step=-1)
        return xr.Dataset(out)
