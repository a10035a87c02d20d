"""``Dataset.ntkgap``: the gap metrics of :mod:`compare._metrics` on ntkgap Datasets.

Importing :mod:`compare` registers the accessor. It relies only on the project's variable names
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

    def diagonal_relative_variance(self, kind: str = "ntk", dim: str = "seed") -> xr.DataArray:
        """Var/E^2 of K(x, x) over seeds, averaged over points (see :func:`compare.diagonal_relative_variance`)."""
        emp, _ = self._pair(kind)
        out = _metrics.diagonal_relative_variance(emp, dim=dim)
        out.name = f"{kind}_diagonal_relative_variance"
        return out

    def hanin_nica_prediction(self) -> xr.DataArray:
        """Finite-width prediction exp(5 beta) - 1 of the NTK diagonal's relative variance.

        beta = depth / width (all hidden layers of one width); from
        ``ntktheory.hanin_nica_ratio`` (Hanin & Nica 2019, arXiv:1909.05989, Thm. 1). The theorem
        is for ReLU with zero biases and holds up to constants: compare rates, not values. NaN for
        other activations.
        """
        import ntktheory

        ds = self._ds
        pred = xr.DataArray(
            [[ntktheory.hanin_nica_ratio([int(w)] * int(d)) - 1.0 for d in ds.depth.values] for w in ds.width.values],
            dims=("width", "depth"), coords={"width": ds.width, "depth": ds.depth},
        )
        is_relu = xr.DataArray([str(a) == "relu" for a in ds.activation.values], dims="activation",
                               coords={"activation": ds.activation})
        out = pred.where(is_relu)
        out.name = "hanin_nica_relative_variance"
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

    def kernel_regression_prediction(self, *, from_init: bool = True) -> xr.DataArray:
        """Infinite-width kernel-regression prediction on the test points at every snapshot.

        Lee et al. 2019 (arXiv:1902.06720, Eq. 11), in discrete time (the networks are trained by
        gradient descent with step ``learning_rate``):
        f_t(x) = f_0(x) + Theta(x, X) Theta^-1 (I - (I - eta Theta / N)^t) (Y - f_0(X)) with the
        analytic NTK ``ntk_theory``. With ``from_init`` (default) f_0 is each network's own output
        at initialisation (``f_test`` at step 0 and ``f0_train``), so the prediction is per network
        (width, seed); otherwise f_0 = 0, the mean over initialisations.
        """
        need = ["ntk_theory", "y_train", "learning_rate"] + (["f0_train", "f_test"] if from_init else [])
        for name in need:
            if name not in self._ds:
                raise KeyError(f"the Dataset has no {name!r}; kernel regression needs it.")
        ds = self._ds[need].compute()  # Dask-backed (open_zarr): the solve needs whole kernels
        train = ds.split.values == "train"
        steps = ds["step"].values.astype(np.float64)
        y = ds["y_train"].values
        if from_init:
            f0_tr, f0_te = ds["f0_train"], ds["f_test"].isel(step=0, drop=True)
        else:
            f0_tr = xr.zeros_like(ds["learning_rate"]).expand_dims(train=int(train.sum())).transpose(..., "train")
            f0_te = xr.zeros_like(ds["learning_rate"]).expand_dims(test=int((~train).sum())).transpose(..., "test")
            f0_tr, f0_te = f0_tr.drop_vars("train", errors="ignore"), f0_te.drop_vars("test", errors="ignore")

        def predict(k: np.ndarray, eta: np.ndarray, f_tr: np.ndarray, f_te: np.ndarray) -> np.ndarray:
            shape = np.broadcast_shapes(k.shape[:-2], eta.shape, f_tr.shape[:-1], f_te.shape[:-1])
            k = np.broadcast_to(k, (*shape, *k.shape[-2:])).reshape(-1, *k.shape[-2:])
            eta = np.broadcast_to(eta, shape).reshape(-1)
            f_tr = np.broadcast_to(f_tr, (*shape, f_tr.shape[-1])).reshape(-1, f_tr.shape[-1])
            f_te = np.broadcast_to(f_te, (*shape, f_te.shape[-1])).reshape(-1, f_te.shape[-1])
            out = np.full((k.shape[0], steps.size, f_te.shape[-1]), np.nan)
            for i in range(k.shape[0]):
                m = k[i]
                if np.all(np.isfinite(m)) and np.isfinite(eta[i]) and np.all(np.isfinite(f_tr[i])):
                    out[i] = _metrics.kernel_regression_prediction(
                        m[np.ix_(~train, train)], m[np.ix_(train, train)], y, steps, learning_rate=float(eta[i]),
                        f0_test=f_te[i], f0_train=f_tr[i], time="discrete",
                    )
            return out.reshape(*shape, steps.size, f_te.shape[-1])

        out = xr.apply_ufunc(
            predict, ds["ntk_theory"], ds["learning_rate"], f0_tr, f0_te,
            input_core_dims=[list(KERNEL_DIMS), [], ["train"], ["test"]],
            output_core_dims=[["step", "test"]],
        )
        out = out.assign_coords(step=ds["step"])
        out.name = "f_kernel_regression"
        return out

    def kernel_regression_distance(self, step: int = -1) -> xr.DataArray:
        """Relative distance of each trained network from the infinite-width kernel regression.

        |f_net - f_kr| / |f_kr| on the test points at snapshot ``step`` (index), with the
        per-network prediction of :meth:`kernel_regression_prediction` (Lee et al. 2019,
        arXiv:1902.06720, Sec. 2.3-2.4: the gap closes as the width grows).
        """
        pred = self.kernel_regression_prediction().isel(step=step)
        net = self._ds["f_test"].isel(step=step)
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
                    out[f"{kind}_diagonal_relative_variance"] = self.diagonal_relative_variance(kind)
        if "ntk_change" in self._ds:
            out["ntk_change"] = self.kernel_change()
        if "lin_distance" in self._ds:
            out["lin_distance"] = self._ds["lin_distance"].isel(step=-1)
        if {"f0_train", "f_test", "learning_rate", "ntk_theory"} <= set(self._ds.variables):
            out["kernel_regression_distance"] = self.kernel_regression_distance()
        return xr.Dataset(out)
