"""Kernel regression straight from a blocked kernel-matrix store, without loading it.

The t = inf limit of kernel regression (the mean prediction of the infinitely wide network trained
to convergence on the MSE loss, Lee et al. 2019, arXiv:1902.06720, Eq. 16 at t = inf, for
``kernel="ntk"``; the NNGP posterior mean for ``kernel="nngp"``):

    mean(x) = K(x, X) alpha,   (K(X, X) + r I) alpha = Y,

with r = diag_reg tr(K)/N (neural-tangents' convention: relative to the mean diagonal) or
r = diag_reg (``diag_reg_absolute``). The argument names (``kernel``, ``diag_reg``,
``diag_reg_absolute``) and the output dims (``test``, ``output``) are those of
``ntktheory.predict_from_kernels``.

Solvers. ``"cg"``: conjugate gradients, one independent recursion per output column sharing each
matrix-vector product; every product streams the train kernel's blocks on and above the diagonal
from Zarr (Dask tasks, a block K_ij contributing K_ij p_j and K_ij^T p_i), so memory stays at a few
blocks and each product reads half the store. The recursion stops when its residual falls below
``rtol`` |y|; the true residual |y - (K + r I) alpha| / |y| is then recomputed and, if rounding made
it larger than ``rtol``, CG restarts from alpha on the true residual (at most a few times). The
reported ``relative_residual`` is that true residual. ``"cholesky"``: the train kernel loaded into
memory (N^2 float64) and factorised with LAPACK; for stores that fit.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ntktheory._provenance import KERNEL_REGRESSION

from ._kernel_matrix import _inputs, input_hash, network_config
from ._schema import provenance_attrs
from ._store import KERNEL_MATRIX, StoreMismatchError, _diff, check_identity

__all__ = ["predict_from_store"]

KERNEL_CHOICES = ("ntk", "nngp")
SOLVER_CHOICES = ("cg", "cholesky")
#: CG restarts on the true residual when rounding left it above rtol.
MAX_RESTARTS = 3

#: The ``conventions`` attr of :func:`predict_from_store`'s Datasets (defined in :mod:`ntktheory._provenance`).
CONVENTIONS = KERNEL_REGRESSION


def predict_from_store(
    store: str | Path,
    y_train: Any,
    *,
    test_store: str | Path | None = None,
    x_test: Any = None,
    x_train: Any = None,
    kernel: str = "ntk",
    diag_reg: float = 0.0,
    diag_reg_absolute: bool = False,
    solver: str = "cg",
    rtol: float = 1e-10,
    max_iterations: int | None = None,
    **network: Any,
) -> xr.Dataset:
    r"""Kernel-regression (t = inf) predictions from a blocked train kernel, never loaded whole.

    Parameters
    ----------
    store
        A complete store of the symmetric train kernel K(X, X), written by
        :func:`compare.kernel_matrix` with ``x2=None`` (or ``ntkgap kernel --out K.zarr``).
    y_train
        Targets Y, shape (N,) or (N, k).
    test_store
        A complete store of the cross kernel K(test, X) (``kernel_matrix(x_test, x_train)``), for
        ``mean``. Checked against ``store``: same training inputs (hash) and network.
    x_test
        Instead of ``test_store``: test inputs (M, ...), whose cross kernel is computed here block
        by block (``ntktheory.kernels(x_test[rows], x_train[cols], **network)``, the store's block
        size) and never held whole. Needs ``x_train`` and the network arguments of ``store``,
        which are checked against it.
    x_train
        The training inputs of ``store`` (with ``x_test`` only).
    kernel
        ``"ntk"`` or ``"nngp"``.
    diag_reg
        Diagonal regulariser r >= 0, relative to the mean diagonal of the train kernel
        (K + diag_reg tr(K)/N I, neural-tangents' convention) unless ``diag_reg_absolute``.
    diag_reg_absolute
        Read ``diag_reg`` in the kernel's own units (K + diag_reg I).
    solver
        ``"cg"`` (default; out of core) or ``"cholesky"`` (loads the N x N train kernel).
    rtol
        CG: stop when ``|Y - (K + r I) alpha| <= rtol |Y|`` for every output column.
    max_iterations
        CG: most iterations (default max(N, 100): N is CG's exact-arithmetic bound, which rounding
        can stretch on small problems); a solve that stops there above ``rtol`` warns.
    **network
        With ``x_test``: the arguments of :func:`ntktheory.kernels` the store was computed with.

    Returns
    -------
    xarray.Dataset
        ``alpha`` (``train``, ``output``): (K + r I)^-1 Y; ``mean`` (``test``, ``output``) when
        test points are given; ``relative_residual`` (``output``). attrs: ``conventions``,
        ``ntkgap_version``, ``creation_time``, ``config``, ``kernel``, ``diag_reg``,
        ``diag_reg_absolute``, ``diag_reg_value`` (the absolute r), ``solver``, ``iterations``
        (CG steps, restarts included; 0 for Cholesky), ``relative_residual`` (the largest), ``rtol``,
        ``n_train``, ``n_test``, ``n_outputs``, ``store``, and the network configuration of the store
        (``activation``, ``depth``, ...).

    Raises
    ------
    TypeError, ValueError
        For an invalid argument, an incomplete or non-symmetric train store, or a train kernel
        plus r I that is not positive definite (the message suggests ``diag_reg``).
    StoreMismatchError
        When ``store`` or ``test_store`` is not a kernel-matrix store, or the test kernel, the
        training inputs or the network do not belong to ``store`` (the message says what differs).

    Warns
    -----
    RuntimeWarning
        When CG stops at ``max_iterations`` with a residual above ``rtol``.

    References
    ----------
    Lee et al. 2019, arXiv:1902.06720, Eq. 16 (t = inf); Rasmussen & Williams 2006, Eq. 2.25 and
    Alg. 2.1; Hestenes & Stiefel 1952 (conjugate gradients).

    Examples
    --------
    >>> import numpy as np, tempfile, compare
    >>> x = np.random.default_rng(0).standard_normal((8, 3)); y = x[:, 0]
    >>> path = tempfile.mkdtemp() + "/K.zarr"
    >>> _ = compare.kernel_matrix(x, store=path, block_size=3, scheduler="threads", n_workers=1,
    ...                           progress=False, depth=2)
    >>> fit = predict_from_store(path, y, x_test=x[:2], x_train=x, depth=2)
    >>> fit["mean"].dims, bool(fit.attrs["relative_residual"] <= 1e-10)
    (('test', 'output'), True)
    >>> np.allclose(fit["mean"][:, 0], y[:2])     # no regulariser: interpolates the training points
    True
    """
    kernel = _choice("kernel", kernel, KERNEL_CHOICES)
    solver = _choice("solver", solver, SOLVER_CHOICES)
    diag_reg = _nonnegative("diag_reg", diag_reg)
    if not isinstance(diag_reg_absolute, (bool, np.bool_)):
        raise TypeError(f"`diag_reg_absolute` must be True or False; got {diag_reg_absolute!r}.")
    rtol = _nonnegative("rtol", rtol)
    if test_store is not None and x_test is not None:
        raise ValueError("pass `test_store` or `x_test`, not both: the test kernel is read from a store or computed.")
    if x_test is None and (x_train is not None or network):
        given = ["x_train"] * (x_train is not None) + sorted(network)
        raise ValueError(f"{', '.join(map(repr, given))} are only used to compute the test kernel from `x_test`; "
                         "pass x_test too, or drop them.")
    train, config = _open_complete(store, "store")
    if config["x2_sha256"] is not None:
        raise ValueError(
            f"`store` {str(store)!r} holds a cross kernel K(x1, x2); the train kernel must be symmetric: write it "
            "with kernel_matrix(x_train) (x2=None) or ntkgap kernel without --inputs2."
        )
    n = config["n1"]
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"`y_train` must have shape (N,) or (N, k) with N = {n} (the store's training points); "
                         f"got shape {y.shape!r}.")
    y2 = y.reshape(n, -1)
    if max_iterations is None:
        max_iterations = max(n, 100)
    if isinstance(max_iterations, (bool, np.bool_)) or not isinstance(max_iterations, (int, np.integer)) \
            or max_iterations < 1:
        raise ValueError(f"`max_iterations` must be a positive integer or None; got {max_iterations!r}.")
    k_train = train[kernel].data
    trace = _diagonal_blocks_trace(k_train)
    reg = 0.0 if diag_reg == 0 else diag_reg if diag_reg_absolute else diag_reg * trace / n
    if solver == "cg":
        alpha, residual, iterations = _cg(k_train, y2, reg, rtol, int(max_iterations))
    else:
        alpha, iterations = _cholesky(k_train, y2, reg), 0
        residual = _relative_residual(y2, y2 - _symmetric_operator(k_train)(alpha) - reg * alpha)
    data: dict[str, Any] = {
        "alpha": (("train", "output"), alpha, {"long_name": "dual coefficients (K + r I)^-1 Y"}),
        "relative_residual": (("output",), residual, {"long_name": "|Y - (K + r I) alpha| / |Y|"}),
    }
    n_test = 0
    if test_store is not None:
        mean = _mean_from_store(test_store, store, config, kernel, alpha)
    elif x_test is not None:
        mean = _mean_on_the_fly(x_test, x_train, network, config, store, kernel, alpha)
    else:
        mean = None
    if mean is not None:
        n_test = mean.shape[0]
        data["mean"] = (("test", "output"), mean, {"long_name": f"t = inf kernel-regression mean, {kernel}"})
    settings = {"kernel": kernel, "diag_reg": diag_reg, "diag_reg_absolute": int(bool(diag_reg_absolute)),
                "solver": solver, "rtol": rtol, "max_iterations": int(max_iterations)}
    network_attrs = {k: v for k, v in train.attrs.items()
                     if k in ("activation", "activation_expression", "activation_params", "depth", "sigma_w",
                              "sigma_b", "sigma_w2", "sigma_b2", "parameterization", "width", "n_features")}
    out = xr.Dataset(data, coords={"train": np.arange(n), "output": np.arange(y2.shape[1]),
                                   **({"test": np.arange(n_test)} if mean is not None else {})})
    out.attrs = {
        **provenance_attrs({**settings, "store": str(store), "test_store": None if test_store is None
                            else str(test_store), "store_config": config}, conventions="kernel_regression"),
        **network_attrs,
        **settings,
        "diag_reg_value": reg,
        "iterations": iterations,
        "relative_residual": float(np.max(residual)),
        "n_train": n,
        "n_test": n_test,
        "n_outputs": y2.shape[1],
        "store": str(store),
    }
    return out


def _open_complete(path: str | Path, argument: str) -> tuple[xr.Dataset, dict]:
    """Open a finished kernel-matrix store lazily; its configuration from the identity attr."""
    shown = str(path)
    identity = check_identity(Path(path), None, KERNEL_MATRIX, f"pass as `{argument}` a store written by "
                              "compare.kernel_matrix")
    if identity is None:
        raise ValueError(f"`{argument}` {shown!r} holds no kernel matrix; write one with compare.kernel_matrix "
                         "or `ntkgap kernel --out K.zarr`.")
    ds = xr.open_zarr(shown)
    if ds.attrs.get("complete") != 1:
        done, total = _block_count(ds, json.loads(identity)["config"])
        raise ValueError(f"`{argument}` {shown!r} is incomplete ({done} of {total} blocks written); rerun the "
                         "kernel_matrix call (or ntkgap kernel command) that wrote it to finish it.")
    return ds, json.loads(identity)["config"]


def _block_count(ds: xr.Dataset, config: Mapping[str, Any]) -> tuple[int, int]:
    flags = ds.block_done.values
    if config["x2_sha256"] is None:  # symmetric: the blocks on and above the diagonal are the tasks
        flags = np.triu(flags)
        return int(flags.sum()), flags.shape[0] * (flags.shape[0] + 1) // 2
    return int(flags.sum()), flags.size


def _network_keys(config: Mapping[str, Any]) -> list[str]:
    return [k for k in config if k not in ("n1", "n2", "block_size", "x1_sha256", "x2_sha256")]


def _check_belongs(expected: Mapping[str, Any], given: Mapping[str, Any], what: str, labels: tuple[str, str]) -> None:
    """Refuse a test kernel (or its inputs and network) that does not go with the train store."""
    if expected != given:
        diff = _diff(json.dumps({"config": expected}), json.dumps({"config": given}), labels)
        raise StoreMismatchError(f"{what} ({diff}).")


def _mean_from_store(test_store: str | Path, store: str | Path, config: Mapping[str, Any], kernel: str,
                     alpha: np.ndarray) -> np.ndarray:
    test, test_config = _open_complete(test_store, "test_store")
    expected = {**{k: config[k] for k in _network_keys(config)}, "training inputs (sha256)": config["x1_sha256"]}
    given = {**{k: test_config[k] for k in _network_keys(test_config)},
             "training inputs (sha256)": test_config["x2_sha256"] or test_config["x1_sha256"]}
    _check_belongs(expected, given, f"`test_store` {str(test_store)!r} must hold K(test, X) of the training inputs "
                   f"and network of `store` {str(store)!r}", ("store has", "test_store has"))
    return (test[kernel].data @ alpha).compute()


def _mean_on_the_fly(x_test: Any, x_train: Any, network: Mapping[str, Any], config: Mapping[str, Any],
                     store: str | Path, kernel: str, alpha: np.ndarray) -> np.ndarray:
    import ntktheory

    if x_train is None:
        raise ValueError("`x_test` needs `x_train` (the store's training inputs) and the network arguments of the "
                         "store, to compute the test kernel K(x_test, x_train) block by block.")
    a_test, a_train = _inputs("x_test", x_test), _inputs("x_train", x_train)
    expected = {**{k: config[k] for k in _network_keys(config)}, "x_train (sha256)": config["x1_sha256"]}
    given = {**network_config(network), "x_train (sha256)": input_hash(a_train)}
    _check_belongs(expected, given, f"`x_train` and the network arguments must be those `store` {str(store)!r} was "
                   "computed with", ("store has", "given"))
    b = config["block_size"]
    mean = np.zeros((a_test.shape[0], alpha.shape[1]))
    for r0 in range(0, a_test.shape[0], b):
        for c0 in range(0, a_train.shape[0], b):
            block = ntktheory.kernels(a_test[r0:r0 + b], a_train[c0:c0 + b], **network)[kernel].values
            mean[r0:r0 + b] += block @ alpha[c0:c0 + b]
    return mean


def _symmetric_operator(k: Any) -> Callable[[np.ndarray], np.ndarray]:
    """p -> K p for a symmetric K stored whole (a Dask array), reading only its blocks on and above the
    diagonal: one Dask task per block, contributing K_ij p_j to rows i and K_ij^T p_i to rows j."""
    import dask

    starts = np.concatenate([[0], np.cumsum(k.chunks[0])])
    blocks = k.to_delayed()
    ij = [(i, j) for i in range(blocks.shape[0]) for j in range(i, blocks.shape[1])]

    def matvec(p: np.ndarray) -> np.ndarray:
        parts = [dask.delayed(_block_products)(blocks[i, j], p[starts[i]:starts[i + 1]], p[starts[j]:starts[j + 1]],
                                               i != j) for i, j in ij]
        out = np.zeros_like(p)
        for (i, j), (upper, lower) in zip(ij, dask.compute(*parts)):
            out[starts[i]:starts[i + 1]] += upper
            if lower is not None:
                out[starts[j]:starts[j + 1]] += lower
        return out

    return matvec


def _block_products(block: np.ndarray, pi: np.ndarray, pj: np.ndarray, off_diagonal: bool):
    return block @ pj, (block.T @ pi if off_diagonal else None)


def _diagonal_blocks_trace(k: Any) -> float:
    import dask

    blocks = k.to_delayed()
    return float(sum(dask.compute(*[dask.delayed(np.trace)(blocks[i, i]) for i in range(blocks.shape[0])])))


def _relative_residual(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    ynorm = np.linalg.norm(y, axis=0)
    rnorm = np.linalg.norm(r, axis=0)
    return np.where(ynorm > 0, rnorm / np.where(ynorm > 0, ynorm, 1.0), rnorm)


def _cg(k: Any, y: np.ndarray, reg: float, rtol: float, max_iterations: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Conjugate gradients on (K + reg I) X = Y, one recursion per column, restarted on the true residual."""

    matvec = _symmetric_operator(k)

    def apply(p: np.ndarray) -> np.ndarray:
        return matvec(p) + reg * p

    ynorm = np.linalg.norm(y, axis=0)
    x = np.zeros_like(y)
    r = y.copy()
    iterations = 0
    for _ in range(MAX_RESTARTS + 1):
        active = np.linalg.norm(r, axis=0) > rtol * ynorm
        p = np.where(active, r, 0.0)
        rs = np.sum(r * r, axis=0)
        while active.any() and iterations < max_iterations:
            ap = apply(p)
            iterations += 1
            pap = np.sum(p * ap, axis=0)
            if np.any(pap[active] <= 0):
                raise ValueError(
                    f"the train kernel plus r I (r = {reg!r}) is not positive definite (p^T (K + r I) p = "
                    f"{float(np.min(pap[active])):.3g} at CG iteration {iterations}); pass diag_reg > 0 (e.g. "
                    "diag_reg=1e-6, relative to the mean diagonal) or a larger one."
                )
            step = np.where(active, rs / np.where(active, pap, 1.0), 0.0)
            x += step * p
            r -= step * ap
            rs_new = np.sum(r * r, axis=0)
            active = active & (np.sqrt(rs_new) > rtol * ynorm)
            p = np.where(active, r + (rs_new / np.where(rs > 0, rs, 1.0)) * p, 0.0)
            rs = rs_new
        r = y - apply(x)  # the true residual: the recursion's drifts with rounding
        residual = _relative_residual(y, r)
        if np.all(residual <= rtol) or iterations >= max_iterations:
            break
    if np.any(residual > rtol):
        warnings.warn(
            f"CG stopped after {iterations} iterations (max_iterations={max_iterations!r}) with a "
            f"relative residual of {float(np.max(residual)):.3g} > rtol={rtol!r}; raise max_iterations, or "
            "diag_reg to improve the conditioning.",
            RuntimeWarning,
            stacklevel=3,
        )
    return x, residual, iterations


def _cholesky(k: Any, y: np.ndarray, reg: float) -> np.ndarray:
    import scipy.linalg

    a = np.asarray(k.compute())
    a[np.diag_indices_from(a)] += reg
    try:
        factor = scipy.linalg.cho_factor(a, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"the train kernel plus r I (r = {reg!r}) is not positive definite ({err}); pass "
                         "diag_reg > 0 (e.g. diag_reg=1e-6, relative to the mean diagonal) or a larger one.") from err
    return scipy.linalg.cho_solve(factor, y, check_finite=False)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def _nonnegative(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number >= 0; got {value!r}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; got {value!r}.")
    return float(value)
