"""Infinite-width NNGP and NTK kernels of fully-connected networks (DESIGN.md conventions).

The recursion is a sequence of kernel maps acting on a frozen :class:`KernelState`, as in
neural-tangents' ``stax``: ``_input`` (x.x'/d) -> ``_dense`` -> (``_nonlinearity`` -> ``_dense``)
x depth, the last ``_dense`` being the readout. Convolution or pooling layers can join later as
further maps on the same state.

Bivariate Gaussian expectations come from the activation's closed form when it has one (relu and
co, erf, gelu, sin, identity, step), evaluated on the upper triangle only when x2 is None, and
otherwise from :func:`ntktheory._quadrature.pair_expectations` (Mehler series with a rigorous tail
bound, direct 2-D quadrature where the bound fails). Diagonals (x = x') always use the univariate
rule or the closed form at c = 1.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange

from . import _closed_forms, _gauss, _quadrature
from ._validate import check_choice, check_inputs, check_int, check_nonnegative, check_positive
from .activations import Activation, ActivationSpec, get_activation

if TYPE_CHECKING:
    import xarray

__all__ = ["KernelState", "kernels"]

CONVENTIONS = (
    "Fully-connected network, `depth` hidden layers of width n, readout included. "
    "NTK parameterisation: h^1 = (sigma_w/sqrt(d)) W^1 x + sigma_b b^1, "
    "h^{l+1} = (sigma_w/sqrt(n)) W^{l+1} phi(h^l) + sigma_b b^{l+1}, all W, b ~ N(0, 1). "
    "Standard parameterisation: same forward function, trained parameters W ~ N(0, sigma_w^2/fan_in), "
    "b ~ N(0, sigma_b^2) (biases always trained). NNGP: Sigma^1 = sigma_w^2 x.x'/d + sigma_b^2, "
    "Sigma^{l+1} = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2 with (u, v) ~ N(0, Sigma^l on {x, x'}). "
    "NTK (ntk): Theta^1 = Sigma^1, Theta^{l+1} = Sigma^{l+1} + sigma_w^2 E[phi'(u) phi'(v)] Theta^l. "
    "NTK (standard, width n): Theta^1 = x.x' + 1, Theta^{l+1} = n E[phi phi] + 1 + "
    "sigma_w^2 E[phi' phi'] Theta^l. Reported: the readout's Sigma^{L+1}, Theta^{L+1} (depth L); "
    "depth 0 is the linear model. Infinite width; float64."
)


@dataclasses.dataclass(frozen=True)
class KernelState:
    """Kernels of one layer's inputs (or pre-activations) for the pairs (x1_i, x2_j).

    Attributes
    ----------
    nngp
        (N1, N2) second-moment kernel: x.x'/d for the input, E[phi(u) phi(v)] after a
        nonlinearity, Sigma^l after a dense layer.
    ntk
        (N1, N2) tangent kernel accumulated so far (0 for the input).
    var1
        (N1,) the diagonal nngp(x1_i, x1_i).
    var2
        (N2,) the diagonal nngp(x2_j, x2_j); the same object as ``var1`` when ``symmetric``.
    fan_in
        Width of the layer these kernels feed (d for the input, n after a nonlinearity).
    symmetric
        True when x2 is x1 (then nngp and ntk are symmetric and their diagonals are the
        x = x' values).
    """

    nngp: np.ndarray
    ntk: np.ndarray
    var1: np.ndarray
    var2: np.ndarray
    fan_in: int
    symmetric: bool

    def __post_init__(self) -> None:
        n1, n2 = self.nngp.shape
        if self.ntk.shape != (n1, n2) or self.var1.shape != (n1,) or self.var2.shape != (n2,):
            raise ValueError(
                f"inconsistent KernelState shapes: nngp {self.nngp.shape}, ntk {self.ntk.shape}, "
                f"var1 {self.var1.shape}, var2 {self.var2.shape}."
            )


@dataclasses.dataclass(frozen=True)
class _Config:
    activation: Activation
    depth: int
    sigma_w: float
    sigma_b: float
    parameterization: str
    width: int | None


# ---------------------------------------------------------------------- kernel maps
def _input(x1: np.ndarray, x2: np.ndarray | None) -> KernelState:
    d = x1.shape[1]
    var1 = np.einsum("ij,ij->i", x1, x1) / d
    if x2 is None:
        gram = x1 @ x1.T / d
        np.fill_diagonal(gram, var1)
        return KernelState(gram, np.zeros_like(gram), var1, var1, d, True)
    var2 = np.einsum("ij,ij->i", x2, x2) / d
    gram = x1 @ x2.T / d
    return KernelState(gram, np.zeros_like(gram), var1, var2, d, False)


@njit(cache=True, parallel=True)
def _dense_update(nngp, ntk, a_nngp, a_ntk, bias, w_ntk, symmetric, out_nngp, out_ntk):
    """out_nngp = a_nngp nngp + bias; out_ntk = a_ntk nngp + w_ntk + ntk (see _dense).

    When ``symmetric`` only the upper triangle (j >= i) is read and written: the recursion keeps
    symmetric kernels as upper triangles and :func:`_mirror` fills the rest once, at the end."""
    n1, n2 = nngp.shape
    for r in prange(n1):
        i = np.int64(r)
        j0 = i if symmetric else np.int64(0)
        for j in range(j0, n2):
            s = nngp[i, j]
            out_nngp[i, j] = a_nngp * s + bias
            out_ntk[i, j] = a_ntk * s + w_ntk + ntk[i, j]


def _dense(state: KernelState, cfg: _Config) -> KernelState:
    """Affine layer: Sigma' = sigma_w^2 nngp + sigma_b^2 and the tangent kernel's update.

    NTK parameterisation: Theta' = Sigma' + sigma_w^2 ntk. Standard: Theta' = fan_in nngp + 1 +
    sigma_w^2 ntk (the weights' and the bias's gradients; the previous layers' NTK enters through
    ``ntk``, which the nonlinearity already multiplied by E[phi' phi']).
    """
    sw2, sb2 = cfg.sigma_w**2, cfg.sigma_b**2
    if cfg.parameterization == "ntk":
        a_ntk, w_ntk = sw2, sb2
    else:
        a_ntk, w_ntk = float(state.fan_in), 1.0
    # the ntk term sigma_w^2 * ntk is folded in by pre-scaling (state.ntk already holds Dhat * Theta)
    nngp = np.empty_like(state.nngp)
    ntk = np.empty_like(state.ntk)
    _dense_update(state.nngp, sw2 * state.ntk, sw2, a_ntk, sb2, w_ntk, state.symmetric, nngp, ntk)
    var1 = sw2 * state.var1 + sb2
    var2 = var1 if state.symmetric else sw2 * state.var2 + sb2
    return KernelState(nngp, ntk, var1, var2, state.fan_in, state.symmetric)


@njit(cache=True, parallel=True)
def _pack_upper(nngp, var1, var2, offsets, symmetric, q1, q2, q12):
    """Flatten the entries the closed form needs (upper triangle incl. diagonal when symmetric);
    row i starts at ``offsets[i]``."""
    n1, n2 = nngp.shape
    for r in prange(n1):
        i = np.int64(r)
        j0 = i if symmetric else np.int64(0)
        for j in range(j0, n2):
            e = offsets[i] + (j - j0)
            q1[e] = var1[i]
            q2[e] = var2[j]
            q12[e] = var1[i] if (symmetric and j == i) else nngp[i, j]  # c = 1 exactly on the diagonal


@njit(cache=True, parallel=True)
def _unpack_upper(pp, dd, ntk, offsets, symmetric, out_nngp, out_ntk):
    n1, n2 = out_nngp.shape
    for r in prange(n1):
        i = np.int64(r)
        j0 = i if symmetric else np.int64(0)
        for j in range(j0, n2):
            e = offsets[i] + (j - j0)
            out_nngp[i, j] = pp[e]
            out_ntk[i, j] = dd[e] * ntk[i, j]


@njit(cache=True, parallel=True)
def _mirror(a):
    """Copy the upper triangle of a square matrix onto its lower triangle, in place."""
    n = a.shape[0]
    for i in prange(n):
        for j in range(i):
            a[i, j] = a[j, i]


_ARCCOS_KINDS = {
    "relu": _closed_forms.RELU,
    "leaky_relu": _closed_forms.LEAKY_RELU,
    "abs": _closed_forms.ABS,
    "step": _closed_forms.STEP,
}


@njit(cache=True, parallel=True)
def _arccos_layer(nngp, ntk, var1, var2, kind, slope, sw2, sb2, a_ntk, w_ntk, symmetric, out_nngp, out_ntk):
    """Fused nonlinearity + dense layer for the arc-cosine family (``_closed_forms.arccos_family``).

    out_nngp = sw2 pp + sb2, out_ntk = a_ntk pp + w_ntk + sw2 dd ntk, in one pass over the pairs
    (upper triangle only when symmetric).
    """
    n1, n2 = nngp.shape
    for r in prange(n1):
        i = np.int64(r)
        j0 = i if symmetric else np.int64(0)
        for j in range(j0, n2):
            q12 = var1[i] if (symmetric and j == i) else nngp[i, j]  # c = 1 exactly on the diagonal
            pp, dd = _closed_forms.arccos_family(kind, slope, var1[i], var2[j], q12)
            out_nngp[i, j] = sw2 * pp + sb2
            out_ntk[i, j] = a_ntk * pp + w_ntk + sw2 * dd * ntk[i, j]


def _nonlinearity(state: KernelState, cfg: _Config, stats: list[dict]) -> KernelState:
    """phi: nngp -> E[phi(u) phi(v)], ntk -> E[phi'(u) phi'(v)] * ntk, var -> E[phi(u)^2]."""
    act = cfg.activation
    width = cfg.width if cfg.parameterization == "standard" else 0
    nngp = np.empty_like(state.nngp)
    ntk = np.empty_like(state.ntk)
    n1, n2 = state.nngp.shape
    if act.has_closed_form:
        lengths = n2 - np.arange(n1) if state.symmetric else np.full(n1, n2)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        size = int(lengths.sum())
        q1, q2, q12 = np.empty(size), np.empty(size), np.empty(size)
        _pack_upper(state.nngp, state.var1, state.var2, offsets, state.symmetric, q1, q2, q12)
        pp, dd = np.empty(size), np.empty(size)
        act.closed_form(q1, q2, q12, act.param_value, pp, dd)
        del q1, q2, q12
        _unpack_upper(pp, dd, state.ntk, offsets, state.symmetric, nngp, ntk)
        var1 = _closed_diagonal(act, state.var1)
        var2 = var1 if state.symmetric else _closed_diagonal(act, state.var2)
        stats.append({"method": "closed_form"})
    else:
        c = _quadrature._correlation(state.var1[:, None], state.var2[None, :], state.nngp)
        pairs = [(act.phi, act.phi), (act.dphi, act.dphi)]
        values, info = _quadrature.pair_expectations(
            pairs, state.var1, state.var2, c, symmetric=state.symmetric, breakpoints=act.kinks
        )
        moments1, moments2 = info.pop("second_moment1", None), info.pop("second_moment2", None)
        if moments1 is None:  # the all-direct path (kinks off zero): univariate rule
            moments1, moments2 = (
                np.stack([_gauss.expect([f, f], v, breakpoints=act.kinks) for f in (act.phi, act.dphi)])
                for v in (state.var1, state.var2)
            )
        var1 = moments1[0]
        var2 = var1 if state.symmetric else moments2[0]
        nngp = values[0]
        dd = values[1]
        if state.symmetric:
            np.fill_diagonal(nngp, var1)
            np.fill_diagonal(dd, moments1[1])
        np.multiply(dd, state.ntk, out=ntk)
        stats.append({"method": "quadrature", **info})
    return KernelState(nngp, ntk, var1, var2, width, state.symmetric)


def _arccos_step(state: KernelState, cfg: _Config, stats: list[dict]) -> KernelState:
    """Nonlinearity and dense layer in one pass, for relu, leaky_relu, abs and step."""
    act = cfg.activation
    sw2, sb2 = cfg.sigma_w**2, cfg.sigma_b**2
    a_ntk, w_ntk = (sw2, sb2) if cfg.parameterization == "ntk" else (float(cfg.width), 1.0)
    nngp = np.empty_like(state.nngp)
    ntk = np.empty_like(state.ntk)
    _arccos_layer(state.nngp, state.ntk, state.var1, state.var2, _ARCCOS_KINDS[act.name], act.param_value,
                  sw2, sb2, a_ntk, w_ntk, state.symmetric, nngp, ntk)
    var1 = sw2 * _closed_diagonal(act, state.var1) + sb2
    var2 = var1 if state.symmetric else sw2 * _closed_diagonal(act, state.var2) + sb2
    stats.append({"method": "closed_form_fused"})
    return KernelState(nngp, ntk, var1, var2, cfg.width or 0, state.symmetric)


def _uses_arccos_fast_path(act: Activation) -> bool:
    fused = {"relu": _closed_forms.relu, "leaky_relu": _closed_forms.leaky_relu, "abs": _closed_forms.abs_,
             "step": _closed_forms.step}
    return act.name in fused and act.closed_form is fused[act.name]


def _closed_diagonal(act: Activation, var: np.ndarray) -> np.ndarray:
    return act.gaussian_expectations(var, var, var)[0]


# ---------------------------------------------------------------------- public entry point
def kernels(
    x1: object,
    x2: object | None = None,
    *,
    activation: ActivationSpec = "relu",
    depth: int = 3,
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    parameterization: str = "ntk",
    width: int | None = None,
    all_depths: bool = False,
) -> xarray.Dataset:
    """Infinite-width NNGP and NTK of a fully-connected network (readout layer included).

    Parameters
    ----------
    x1
        Inputs, shape (N1, d), finite.
    x2
        Second inputs, shape (N2, d), or None for x2 = x1 (the kernels are then symmetric,
        computed on the upper triangle, with exact x = x' diagonals).
    activation
        Registry name, :class:`~ntktheory.activations.Activation` or expression in ``x``.
    depth
        Number of hidden nonlinearities L >= 0 (0: the linear model Sigma^1, Theta^1).
    sigma_w, sigma_b
        Weight (> 0) and bias (>= 0) standard deviations.
    parameterization
        ``"ntk"`` (default) or ``"standard"`` (DESIGN.md).
    width
        Hidden width n: required (positive integer) for ``"standard"``, whose NTK depends on it;
        must be None for ``"ntk"``, whose kernels do not (passing it raises, so that a sweep over
        width with the wrong parameterisation does not silently repeat one result).
    all_depths
        Return every depth 1..L (dim ``depth``) from one pass; needs depth >= 1.

    Returns
    -------
    xarray.Dataset
        ``nngp`` (Sigma^{L+1}) and ``ntk`` (Theta^{L+1}), float64, dims ("x1", "x2"), or
        ("depth", "x1", "x2") with ``all_depths``; attrs ``conventions``, ``ntkgap_version``,
        ``created``, the configuration (``activation``, ``depth``, ``sigma_w``, ...) and
        ``quadrature`` (per layer: method, Mehler degree, pairs sent to per-pair series and to
        direct 2-D quadrature).

    Raises
    ------
    TypeError, ValueError
        For an invalid argument; the message names it and says what is allowed.

    References
    ----------
    Lee et al. 2018, arXiv:1711.00165, eq. (4) (NNGP); Jacot et al. 2018, arXiv:1806.07572,
    Thm. 1 (NTK); Arora et al. 2019, arXiv:1904.11955, eq. (7)-(9).

    Examples
    --------
    >>> import numpy as np, ntktheory
    >>> x = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 2.0]])
    >>> ds = ntktheory.kernels(x, activation="relu", depth=1, sigma_w=np.sqrt(2.0))
    >>> ds.nngp.dims, ds.ntk.shape
    (('x1', 'x2'), (3, 3))
    >>> round(float(ds.ntk[0, 0]), 12)   # Theta(x, x) = 2 (L + 1) |x|^2/d at sigma_w^2 = 2
    4.0
    >>> ds2 = ntktheory.kernels(x, activation="tanh", depth=3, sigma_w=1.5, all_depths=True)
    >>> ds2.ntk.dims
    ('depth', 'x1', 'x2')
    """
    cfg, a1, a2 = _validate(x1, x2, activation, depth, sigma_w, sigma_b, parameterization, width, all_depths)
    stats: list[dict] = []
    state = _dense(_input(a1, a2), cfg)
    per_depth = []
    fused = _uses_arccos_fast_path(cfg.activation)
    for _ in range(cfg.depth):
        if fused:
            state = _arccos_step(state, cfg, stats)
        else:
            state = _dense(_nonlinearity(state, cfg, stats), cfg)
        if all_depths:
            per_depth.append(state)
    for s in per_depth if all_depths else [state]:
        if s.symmetric:
            _mirror(s.nngp)
            _mirror(s.ntk)
    return _to_dataset(per_depth if all_depths else [state], cfg, all_depths, stats, a1, a2)


def _validate(x1, x2, activation, depth, sigma_w, sigma_b, parameterization, width, all_depths):
    a1 = check_inputs("x1", x1)
    a2 = None if x2 is None else check_inputs("x2", x2, features=a1.shape[1])
    act = get_activation(activation)
    depth = check_int("depth", depth, minimum=0)
    sigma_w = check_positive("sigma_w", sigma_w)
    sigma_b = check_nonnegative("sigma_b", sigma_b)
    parameterization = check_choice("parameterization", parameterization, ("ntk", "standard"))
    if parameterization == "standard":
        if width is None:
            raise ValueError(
                "`width` is required with parameterization='standard' (its NTK grows with the hidden "
                "width n); pass width=<positive integer>."
            )
        width = check_int("width", width, minimum=1)
    elif width is not None:
        raise ValueError(
            f"`width` must be None with parameterization='ntk' (the NTK-parameterised kernels do not "
            f"depend on it); got width={width!r}. Use parameterization='standard' for width dependence."
        )
    if not isinstance(all_depths, (bool, np.bool_)):
        raise TypeError(f"`all_depths` must be True or False, got {all_depths!r}.")
    if all_depths and depth == 0:
        raise ValueError("`all_depths=True` returns depths 1..depth and needs depth >= 1; got depth=0.")
    cfg = _Config(act, depth, sigma_w, sigma_b, parameterization, width)
    return cfg, a1, a2


def _to_dataset(states, cfg: _Config, all_depths: bool, stats, a1, a2) -> xarray.Dataset:
    import xarray as xr  # lazily: keeps `import ntktheory` fast

    dims = ("x1", "x2")
    n1 = a1.shape[0]
    n2 = n1 if a2 is None else a2.shape[0]
    coords = {"x1": np.arange(n1), "x2": np.arange(n2)}
    if all_depths:
        nngp = np.stack([s.nngp for s in states])
        ntk = np.stack([s.ntk for s in states])
        dims = ("depth", *dims)
        coords["depth"] = np.arange(1, len(states) + 1)
    else:
        nngp, ntk = states[0].nngp, states[0].ntk
    from . import __version__

    attrs = {
        "conventions": CONVENTIONS,
        "ntkgap_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "activation": cfg.activation.name,
        "activation_expression": str(cfg.activation.expression),
        "activation_params": json.dumps(dict(cfg.activation.params)),
        "depth": cfg.depth,
        "sigma_w": cfg.sigma_w,
        "sigma_b": cfg.sigma_b,
        "sigma_w2": cfg.sigma_w**2,
        "sigma_b2": cfg.sigma_b**2,
        "parameterization": cfg.parameterization,
        "width": "infinite (ntk parameterisation)" if cfg.width is None else cfg.width,
        "all_depths": int(all_depths),
        "x2_is_x1": int(a2 is None),
        "n_features": a1.shape[1],
        "quadrature": json.dumps(stats),
    }
    return xr.Dataset(
        {
            "nngp": (dims, nngp, {"long_name": "NNGP kernel Sigma^{L+1} (readout)"}),
            "ntk": (dims, ntk, {"long_name": "neural tangent kernel Theta^{L+1} (readout)"}),
        },
        coords=coords,
        attrs=attrs,
    )
