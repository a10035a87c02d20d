"""The ntkgap dataset schema: names, conventions and provenance shared by every Dataset we write.

Layout (the README's "Conventions", data layout)
---------------------------------
* kernels live on dims ``("x1", "x2")``; the points are indexed by ``x1``/``x2`` integer coords;
* configuration dims are named after the parameter: ``activation``, ``init`` (a named
  (sigma_w^2, sigma_b^2) point, with ``sigma_w2`` / ``sigma_b2`` as coordinates on
  ``("activation", "init")``), ``width``, ``depth``, ``seed``, ``step``;
* analytic and finite-network quantities are told apart by name only: ``ntk_theory``,
  ``ntk_empirical``, ``nngp_theory``, ``nngp_empirical``, ...;
* a value that diverged is NaN and ``diverged`` is True for its configuration; a task that raised
  has ``failed`` True and its message in ``error``.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ntktheory._provenance import SWEEP, provenance

__all__ = [
    "CONFIG_DIMS",
    "CONVENTIONS",
    "KERNEL_DIMS",
    "VARIABLE_ATTRS",
    "describe_variables",
    "provenance_attrs",
    "theory_empirical_dataset",
    "to_json",
]

#: The mathematical conventions of sweeps and recipes, in words (the README's "Conventions"), attached to
#: their Datasets as ``conventions``; defined in :mod:`ntktheory._provenance` with the other families.
CONVENTIONS = SWEEP

#: ``long_name``, ``units`` and ``description`` of every variable and coordinate a sweep writes
#: (CF-style attrs; all quantities are dimensionless, units "1"; text variables have no units).
#: :func:`describe_variables` fills them in.
VARIABLE_ATTRS: dict[str, tuple[str, str, str]] = {
    "ntk_theory": ("analytic NTK", "1", "infinite-width neural tangent kernel Theta of the readout "
                   "(ntktheory.kernels)"),
    "nngp_theory": ("analytic NNGP kernel", "1", "infinite-width NNGP kernel Sigma of the readout (ntktheory.kernels)"),
    "ntk_empirical": ("empirical NTK", "1", "NTK of the finite network at initialisation (empirical.ntk, mean over "
                      "outputs)"),
    "nngp_empirical": ("empirical NNGP kernel", "1", "readout-layer NNGP of the finite network at initialisation "
                       "(empirical.nngp)"),
    "loss": ("training loss", "1", "(1/2N)|f(X) - Y|^2 on the training points"),
    "ntk_change": ("relative NTK change", "1", "|Theta_t - Theta_0|_F / |Theta_0|_F on the training points"),
    "f_test": ("network output on test points", "1", "network outputs on the test points"),
    "f_lin_test": ("linearised network output on test points", "1",
                   "linearised network (Taylor model at init) trained alongside, outputs on the test points"),
    "lin_distance": ("distance to the linearised network", "1",
                     "|f_test - f_lin_test| / |f_lin_test| on the test points"),
    "f0_train": ("network output on training points at init", "1",
                 "network outputs on the training points at initialisation"),
    "learning_rate": ("learning rate", "1", "gradient-descent step size eta"),
    "diverged": ("diverged", "1", "True where the finite network diverged (its values are NaN)"),
    "failed": ("empirical task failed", "1", "True where the finite-network task raised (message in `error`)"),
    "error": ("empirical task error", "", "the exception message of a failed finite-network task, else empty"),
    "theory_failed": ("theory task failed", "1", "True where the analytic task raised (message in `theory_error`)"),
    "theory_error": ("theory task error", "", "the exception message of a failed analytic task, else empty"),
    "x": ("inputs", "1", "inputs, train points first (norm sqrt(d))"),
    "y_train": ("training targets", "1", "training targets (+1 even label, -1 odd)"),
    "y_test": ("test targets", "1", "test targets (+1 even label, -1 odd)"),
    "sigma_w2": ("weight variance sigma_w^2", "1", "weight variance sigma_w^2 of each named initialisation"),
    "sigma_b2": ("bias variance sigma_b^2", "1", "bias variance sigma_b^2 of each named initialisation"),
    "width": ("hidden width n", "1", "hidden width n (channels for convolutional architectures)"),
    "depth": ("depth L", "1", "number of hidden nonlinearities L"),
    "seed": ("seed", "1", "seed of the finite network's initialisation"),
    "step": ("gradient-descent step", "1", "training step of the snapshot"),
    "split": ("split", "", "'train' or 'test' for each point"),
    "activation": ("activation", "", "the nonlinearity phi: a registry name or an expression in x"),
    "init": ("initialisation", "", "name of the (sigma_w^2, sigma_b^2) initialisation"),
    "architecture": ("architecture", "", "named architecture: fcn, cnn (Flatten readout) or cnn-gap"),
    "x1": ("first point", "1", "index of the first point of a kernel entry (train points first)"),
    "x2": ("second point", "1", "index of the second point of a kernel entry (train points first)"),
}

KERNEL_DIMS: tuple[str, str] = ("x1", "x2")
CONFIG_DIMS: tuple[str, ...] = ("activation", "init", "width", "depth", "seed", "step")


def to_json(obj: Any) -> str:
    """JSON text with sorted keys (stable across runs, so it can be compared and hashed)."""
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {obj!r} of type {type(obj).__name__} to JSON")


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in ("ntkgap", "numpy", "scipy", "xarray", "torch", "dask", "zarr", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance_attrs(
    config: Mapping[str, Any] | None = None,
    *,
    seeds: Any = None,
    device: str | None = None,
    dtype: str | None = None,
    created: str | None = None,
    conventions: str = "sweep",
) -> dict[str, str]:
    """The attrs every compare Dataset carries, as strings (NetCDF- and Zarr-safe).

    :func:`ntktheory._provenance.provenance` (the one schema of every ntkgap Dataset) plus the
    versions of the packages a sweep runs on.

    Parameters
    ----------
    config
        The full configuration; stored as JSON text under ``config``.
    seeds, device, dtype
        Provenance of empirical data (omitted when None).
    created
        ISO-8601 creation time; now (UTC) when None. A resumed sweep passes the time its store was
        created, so that the finished dataset does not depend on interruptions.
    conventions
        The family of conventions texts (a key of :data:`ntktheory._provenance.CONVENTIONS`);
        ``"sweep"`` (:data:`CONVENTIONS`) by default.

    Returns
    -------
    dict
        ``conventions``, ``ntkgap_version``, ``creation_time``, ``config`` (JSON) and, when given,
        ``seeds`` (JSON), ``device``, ``dtype``; then ``package_versions`` (JSON) and ``python``.
    """
    return {
        **provenance(config, conventions=conventions, seeds=seeds, device=device, dtype=dtype, created=created),
        "package_versions": to_json(_package_versions()),
        "python": platform.python_version(),
    }


def describe_variables(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with ``long_name``, ``units`` and ``description`` on every variable that
    :data:`VARIABLE_ATTRS` knows (attrs already set are kept).

    Examples
    --------
    >>> ds = describe_variables(xr.Dataset({"loss": ("step", [1.0, 0.5])}))
    >>> ds.loss.attrs["long_name"], ds.loss.attrs["units"]
    ('training loss', '1')
    """
    ds = ds.copy()
    for name in ds.variables:
        if name in VARIABLE_ATTRS:
            long_name, units, description = VARIABLE_ATTRS[name]
            attrs = {"long_name": long_name, "units": units, "description": description}
            ds[name].attrs = {**{k: v for k, v in attrs.items() if v}, **ds[name].attrs}
    return ds


def _as_kernel(name: str, value: Any) -> xr.DataArray:
    if isinstance(value, xr.DataArray):
        if value.dims[-2:] != KERNEL_DIMS:
            raise ValueError(f"`{name}` must have trailing dims {KERNEL_DIMS!r}; got dims {value.dims!r}.")
        return value.astype(np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D kernel matrix; got shape {arr.shape!r}.")
    return xr.DataArray(arr, dims=KERNEL_DIMS)


def theory_empirical_dataset(
    *,
    ntk_theory: Any = None,
    ntk_empirical: Any = None,
    nngp_theory: Any = None,
    nngp_empirical: Any = None,
    config: Mapping[str, Any] | None = None,
    seeds: Any = None,
    device: str | None = None,
    dtype: str | None = None,
    diverged: Any = None,
) -> xr.Dataset:
    """Put analytic and empirical kernels into one Dataset with the project's variable names and attrs.

    Parameters
    ----------
    ntk_theory, nngp_theory
        Infinite-width kernels: arrays (N1, N2) or DataArrays with trailing dims ``("x1", "x2")``
        (e.g. ``ntktheory.kernels(...)["ntk"]``).
    ntk_empirical, nngp_empirical
        Finite-network kernels, arrays (N1, N2) or DataArrays with leading configuration dims such
        as ``seed`` or ``width`` and trailing ``("x1", "x2")``.
    config, seeds, device, dtype
        Provenance, see :func:`provenance_attrs`.
    diverged
        Optional boolean flags broadcastable to the empirical kernels' configuration dims. Where
        True (or where an empirical kernel is not finite), the empirical values are set to NaN and
        the ``diverged`` variable says so.

    Returns
    -------
    xarray.Dataset
        The given variables (float64) plus ``diverged`` (bool), with ``x1``/``x2`` integer coords.

    Examples
    --------
    >>> ds = theory_empirical_dataset(ntk_theory=np.eye(2), ntk_empirical=np.eye(2) * 1.1)
    >>> sorted(ds.data_vars)
    ['diverged', 'ntk_empirical', 'ntk_theory']
    >>> round(float(ds.ntkgap.relative_frobenius("ntk")), 6)
    0.1
    """
    given = {
        "ntk_theory": ntk_theory,
        "ntk_empirical": ntk_empirical,
        "nngp_theory": nngp_theory,
        "nngp_empirical": nngp_empirical,
    }
    variables = {k: _as_kernel(k, v) for k, v in given.items() if v is not None}
    if not variables:
        raise ValueError("pass at least one of `ntk_theory`, `ntk_empirical`, `nngp_theory`, `nngp_empirical`.")
    ds = xr.Dataset(variables)
    ds = ds.assign_coords({d: np.arange(ds.sizes[d]) for d in KERNEL_DIMS if d in ds.dims})
    emp = [v for v in ("ntk_empirical", "nngp_empirical") if v in ds]
    if emp:
        config_dims = [d for d in ds[emp[0]].dims if d not in KERNEL_DIMS]
        bad = xr.zeros_like(ds[emp[0]].isel({d: 0 for d in KERNEL_DIMS}, drop=True), dtype=bool)
        for v in emp:
            bad = bad | ~np.isfinite(ds[v]).all(KERNEL_DIMS)
        if diverged is not None:
            flags = diverged if isinstance(diverged, xr.DataArray) else xr.DataArray(
                np.asarray(diverged, dtype=bool), dims=config_dims[: np.ndim(diverged)]
            )
            bad = bad | flags.astype(bool)
        for v in emp:
            ds[v] = ds[v].where(~bad)
        ds["diverged"] = bad
        ds["diverged"].attrs["description"] = "True where the finite network diverged; its values are NaN."
    ds.attrs.update(provenance_attrs(config, seeds=seeds, device=device, dtype=dtype))
    return ds
