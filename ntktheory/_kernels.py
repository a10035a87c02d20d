"""Infinite-width NNGP and NTK of a network described by :mod:`ntktheory.layers`.

The fully-connected call ``kernels(x, activation=..., depth=...)`` is the preset
``layers.mlp(...)``; every other network is passed as ``architecture=``. The recursion is the
sequence of the layers' kernel maps (:mod:`ntktheory._kernel_maps`) on a spatial kernel state whose
form (flat, diagonal or full spatial covariance) is chosen once from what the network needs.

Bivariate Gaussian expectations come from the activation's closed form when it has one (relu and
co, erf, gelu, sin, identity, step) and otherwise from :func:`ntktheory._quadrature.pair_expectations`
(Mehler series with a rigorous tail bound, direct 2-D quadrature where the bound fails); entries
with x = x' at the same position use the univariate rule or the closed form at c = 1. Symmetric
kernels (x2 None) are computed on upper triangles. Large problems are split into blocks of input
pairs, each an independent run of the maps, so that memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from typing import TYPE_CHECKING

import numpy as np

from . import _kernel_maps as maps
from . import layers as L
from ._provenance import ARCHITECTURE, FULLY_CONNECTED, provenance
from ._threads import threads_for
from ._validate import check_choice, check_inputs, check_int, check_nonnegative, check_positive
from .activations import ActivationSpec, get_activation

if TYPE_CHECKING:
    import xarray

__all__ = ["CONVENTIONS", "kernels"]

#: The ``conventions`` attr of the fully-connected preset and of ``architecture=`` networks
#: (defined once, in :mod:`ntktheory._provenance`).
CONVENTIONS = FULLY_CONNECTED
ARCHITECTURE_CONVENTIONS = ARCHITECTURE

#: Memory budget (bytes) for the arrays of one block of input pairs (about six kernel-sized arrays).
BLOCK_BYTES = 1 << 30
_ARRAYS_PER_ENTRY = 6


class _Unset:
    """Default of a preset argument, so that it can be told apart from a value passed explicitly."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


_PRESET_DEFAULTS = {"activation": _Unset("relu"), "depth": _Unset(3), "sigma_w": _Unset(1.0),
                    "sigma_b": _Unset(0.0)}


@dataclasses.dataclass(frozen=True)
class _Request:
    architecture: L.Layer
    parameterization: str
    all_depths: bool
    form: str
    attrs: dict


# ---------------------------------------------------------------------- public entry point
def kernels(
    x1: object,
    x2: object | None = None,
    *,
    activation: ActivationSpec = _PRESET_DEFAULTS["activation"],
    depth: int = _PRESET_DEFAULTS["depth"],
    sigma_w: float = _PRESET_DEFAULTS["sigma_w"],
    sigma_b: float = _PRESET_DEFAULTS["sigma_b"],
    parameterization: str = "ntk",
    width: int | None = None,
    all_depths: bool = False,
    architecture: L.Layer | None = None,
) -> xarray.Dataset:
    """Infinite-width NNGP and NTK of a network's output.

    Either a fully-connected network (``activation``, ``depth``, ``sigma_w``, ``sigma_b``: the
    preset :func:`ntktheory.layers.mlp`) or any network of :mod:`ntktheory.layers`
    (``architecture=``: convolutions, pooling, Flatten, residual blocks, LayerNorm).

    Parameters
    ----------
    x1
        Inputs, shape (N1, d), or images (N1, C, H, W) for an architecture; finite.
    x2
        Second inputs of the same shape after the batch axis, or None for x2 = x1 (the kernels
        are then symmetric, computed on upper triangles, with exact x = x' diagonals).
    activation
        Registry name, :class:`~ntktheory.activations.Activation` or expression in ``x``
        (fully-connected preset).
    depth
        Number of hidden nonlinearities L >= 0 (0: the linear model Sigma^1, Theta^1).
    sigma_w, sigma_b
        Weight (> 0) and bias (>= 0) standard deviations of every layer of the preset.
    parameterization
        ``"ntk"`` (default) or ``"standard"``, whose NTK grows with the widths.
    width
        Hidden width n of the preset: required (positive integer) for ``"standard"``; must be
        None for ``"ntk"``, whose kernels do not depend on it (passing it raises, so that a sweep
        over width with the wrong parameterisation does not silently repeat one result). With
        ``architecture``, the widths are the layers' ``features`` / ``channels``.
    all_depths
        Return every depth 1..L (dim ``depth``) from one pass. For an architecture, it must be
        ``serial(prefix..., Repeat(block, times=L), suffix...)``: depth d is the network with the
        block repeated d times.
    architecture
        A layer of :mod:`ntktheory.layers` (usually ``layers.serial(...)``); excludes the preset
        arguments ``activation``, ``depth``, ``sigma_w``, ``sigma_b`` and ``width``.

    Returns
    -------
    xarray.Dataset
        ``nngp`` (Sigma) and ``ntk`` (Theta) of the output, float64, dims ("x1", "x2"), or
        ("depth", "x1", "x2") with ``all_depths``; attrs: the provenance of
        :func:`ntktheory._provenance.provenance` (``conventions``, ``ntkgap_version``,
        ``creation_time``, ``config``: all arguments as JSON), the configuration again as flat attrs
        (``activation``, ``depth``, ``sigma_w``, ... for the preset; ``architecture`` and
        ``spatial_form`` otherwise) and ``quadrature`` (per nonlinearity:
        method, Mehler degree, pairs sent to per-pair series and to direct 2-D quadrature).

    Raises
    ------
    TypeError, ValueError
        For an invalid argument or an architecture that does not fit the inputs; the message
        names the argument (or the layer) and says what is allowed.

    References
    ----------
    Lee et al. 2018, arXiv:1711.00165, eq. (4) (NNGP); Jacot et al. 2018, arXiv:1806.07572,
    Thm. 1 (NTK); Arora et al. 2019, arXiv:1904.11955, eq. (7)-(9) and Sec. 4 (convolutional
    NTK); Novak et al. 2019, arXiv:1810.05148 (CNN-GP); Novak et al. 2020, arXiv:1912.02803
    (neural-tangents).

    Examples
    --------
    >>> import numpy as np, ntktheory
    >>> from ntktheory import layers as L
    >>> x = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 2.0]])
    >>> ds = ntktheory.kernels(x, activation="relu", depth=1, sigma_w=np.sqrt(2.0))
    >>> ds.nngp.dims, ds.ntk.shape
    (('x1', 'x2'), (3, 3))
    >>> round(float(ds.ntk[0, 0]), 12)   # Theta(x, x) = 2 (L + 1) |x|^2/d at sigma_w^2 = 2
    4.0
    >>> ds2 = ntktheory.kernels(x, activation="tanh", depth=3, sigma_w=1.5, all_depths=True)
    >>> ds2.ntk.dims
    ('depth', 'x1', 'x2')
    >>> images = np.random.default_rng(0).standard_normal((4, 1, 6, 6))
    >>> cnn = L.serial(L.Conv(kernel_size=3), L.Activation("erf"), L.GlobalAvgPool(), L.Dense())
    >>> ntktheory.kernels(images, architecture=cnn).attrs["spatial_form"]
    'full'
    """
    request, a1, a2 = _validate(x1, x2, activation, depth, sigma_w, sigma_b, parameterization, width, all_depths,
                                architecture)
    nngp, ntk, stats = _compute(request, a1, a2)
    return _to_dataset(nngp, ntk, request, stats, a1, a2)


# ---------------------------------------------------------------------- validation
def _validate(x1, x2, activation, depth, sigma_w, sigma_b, parameterization, width, all_depths, architecture):
    parameterization = check_choice("parameterization", parameterization, ("ntk", "standard"))
    if not isinstance(all_depths, (bool, np.bool_)):
        raise TypeError(f"`all_depths` must be True or False, got {all_depths!r}.")
    preset = {"activation": activation, "depth": depth, "sigma_w": sigma_w, "sigma_b": sigma_b}
    if architecture is None:
        a1 = check_inputs("x1", x1)
        a2 = None if x2 is None else check_inputs("x2", x2, features=a1.shape[1])
        values = {k: (v.value if isinstance(v, _Unset) else v) for k, v in preset.items()}
        arch, attrs = _preset(parameterization, width, all_depths, **values)
    else:
        given = sorted(k for k, v in preset.items() if not isinstance(v, _Unset)) + (["width"] if width else [])
        if given:
            raise TypeError(
                f"`architecture` describes the whole network; do not also pass {', '.join(given)} (put them in "
                "the layers, e.g. layers.Dense(features=..., sigma_w=...), layers.Activation(...))."
            )
        if not isinstance(architecture, L.Layer):
            raise TypeError(
                f"`architecture` must be a layer from ntktheory.layers (e.g. layers.serial(...)); got "
                f"{architecture!r} of type {type(architecture).__name__}."
            )
        a1 = check_inputs("x1", x1, images=True)
        a2 = None if x2 is None else check_inputs("x2", x2, sample_shape=a1.shape[1:], images=True)
        arch = architecture
        attrs = {"architecture": arch.describe()}
    in_shape = a1.shape[1:]
    L.check(arch, in_shape)
    if parameterization == "standard":
        _check_standard_widths(arch, in_shape)
    if all_depths:
        _split_repeat(arch)
    form = maps.spatial_form(arch, in_shape)
    attrs.update({"parameterization": parameterization, "spatial_form": form, "in_shape": json.dumps(list(in_shape))})
    return _Request(arch, parameterization, bool(all_depths), form, attrs), a1, a2


def _preset(parameterization, width, all_depths, *, activation, depth, sigma_w, sigma_b):
    act = get_activation(activation)
    depth = check_int("depth", depth, minimum=0)
    sigma_w = check_positive("sigma_w", sigma_w)
    sigma_b = check_nonnegative("sigma_b", sigma_b)
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
    if all_depths and depth == 0:
        raise ValueError("`all_depths=True` returns depths 1..depth and needs depth >= 1; got depth=0.")
    arch = L.mlp(depth=depth, width=width, activation=act, sigma_w=sigma_w, sigma_b=sigma_b)
    attrs = {
        "activation": act.name,
        "activation_expression": str(act.expression),
        "activation_params": json.dumps(dict(act.params)),
        "depth": depth,
        "sigma_w": sigma_w,
        "sigma_b": sigma_b,
        "sigma_w2": sigma_w**2,
        "sigma_b2": sigma_b**2,
        "width": "infinite (ntk parameterisation)" if width is None else width,
    }
    return arch, attrs


def _check_standard_widths(arch: L.Layer, in_shape) -> None:
    for step in L.walk(arch, in_shape):
        if step.layer.weighted and not isinstance(step.layer, L.Residual) and step.in_shape[0] is None:
            raise ValueError(
                f"parameterization='standard' needs the width feeding layer {step.path}, {step.layer.describe()} "
                "(its NTK grows with it); give every Dense `features` and every Conv `channels` (the readout's may "
                "stay None)."
            )


def _split_repeat(arch: L.Layer) -> tuple[list[L.Layer], L.Repeat, list[L.Layer]]:
    """(prefix, the Repeat, suffix) of ``serial(prefix..., Repeat(...), suffix...)``."""
    layers = arch.layers if isinstance(arch, L.Serial) else (arch,)
    repeats = [i for i, layer in enumerate(layers) if isinstance(layer, L.Repeat)]
    if len(repeats) != 1:
        raise ValueError(
            "`all_depths=True` with an architecture needs exactly one top-level Repeat(block, times=L) "
            f"(depth d repeats the block d times); found {len(repeats)} in {arch.describe()}."
        )
    i = repeats[0]
    if layers[i].times < 1:
        raise ValueError("`all_depths=True` returns depths 1..times and needs Repeat(times >= 1); got times=0.")
    return list(layers[:i]), layers[i], list(layers[i + 1 :])


# ---------------------------------------------------------------------- computation
def _entries_per_pair(form: str, in_shape) -> int:
    """Kernel entries per pair of inputs in the widest state of the network."""
    if form == "flat":
        return 1
    positions = in_shape[1] * in_shape[2]
    return positions * positions if form == "full" else positions


def _blocks(n: int, size: int) -> list[slice]:
    count = max(1, math.ceil(n / size))
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _compute(request: _Request, a1: np.ndarray, a2: np.ndarray | None):
    """Run the maps on blocks of input pairs; assemble the (depths, N1, N2) output kernels."""
    n1 = a1.shape[0]
    n2 = n1 if a2 is None else a2.shape[0]
    n_depths = _split_repeat(request.architecture)[1].times if request.all_depths else 1
    if _fused_plan(request) is None:
        per_pair = _entries_per_pair(request.form, a1.shape[1:]) * _ARRAYS_PER_ENTRY * 8
    else:  # the fused path keeps only a pair's outputs and its index
        per_pair = (2 * n_depths + 3) * 8
    size = max(1, int(math.sqrt(BLOCK_BYTES / per_pair)))
    rows, cols = _blocks(n1, size), _blocks(n2, size)
    nngp = np.zeros((n_depths, n1, n2))
    ntk = np.zeros((n_depths, n1, n2))
    stats: list[dict] | None = None
    work = n1 * n2 * _entries_per_pair(request.form, a1.shape[1:]) * len(maps.primitives(request.architecture))
    with threads_for(work):
        for bi, bj in itertools.product(range(len(rows)), range(len(cols))):
            if a2 is None and bj < bi:
                continue
            stats = _block_into(request, a1, a2, rows, cols, bi, bj, nngp, ntk, stats)
    return nngp, ntk, stats or []


def _block_into(request, a1, a2, rows, cols, bi, bj, nngp, ntk, stats):
    """Compute block (bi, bj) of input pairs into the output kernels (and its mirror); merged stats."""
    rs, cs = rows[bi], cols[bj]
    diagonal = a2 is None and bi == bj
    xb = None if diagonal else (a1 if a2 is None else a2)[cs]
    outputs, block_stats = _run_block(request, a1[rs], xb)
    for d, (k, t) in enumerate(outputs):
        if diagonal:
            k, t = maps.mirror(k), maps.mirror(t)
        nngp[d, rs, cs] = k
        ntk[d, rs, cs] = t
        if a2 is None and not diagonal:
            nngp[d, cs, rs] = k.T
            ntk[d, cs, rs] = t.T
    return block_stats if stats is None else _merge_stats(stats, block_stats)


def _run_block(request: _Request, x1: np.ndarray, x2: np.ndarray | None):
    """The output kernels of one block of input pairs: [(nngp, ntk)] per reported depth."""
    ctx = maps.Context(request.parameterization)
    plan = _fused_plan(request)
    if plan is not None:
        fused, ends, rest = plan
        flats = maps.fused_prefix(fused, x1, x2, ctx, ends)
        outs = [maps.run_sequence(rest, flat, ctx) for flat in flats]
        return [(o.nngp, o.ntk) for o in outs], ctx.stats
    state = maps.input_state(x1, x2, request.form)
    if not request.all_depths:
        final = maps.run_sequence(maps.primitives(request.architecture), state, ctx)
        return [(final.nngp, final.ntk)], ctx.stats
    prefix, repeat, suffix = _split_repeat(request.architecture)
    tail = [p for layer in suffix for p in maps.primitives(layer)]
    state = maps.run_sequence([p for layer in prefix for p in maps.primitives(layer)], state, ctx)
    outputs = []
    for _ in range(repeat.times):
        state = maps.run_sequence(maps.primitives(repeat.block), state, ctx)
        out = maps.run_sequence(tail, state, ctx)
        outputs.append((out.nngp, out.ntk))
    return outputs, ctx.stats


def _fused_plan(request: _Request) -> tuple[list, list[int], list] | None:
    """How the network runs on the fused path, if it does: (the fused Conv / closed-form Activation
    layers, the positions after which their global average pool is read out (one per reported
    depth), the layers after the GlobalAvgPool); None when it does not."""
    if request.form != "full":
        return None
    if not request.all_depths:
        layers = maps.primitives(request.architecture)
        n = _fused_length(layers)
        return (layers[:n], [n], layers[n + 1 :]) if n else None
    prefix, repeat, suffix = _split_repeat(request.architecture)
    head = [p for layer in prefix for p in maps.primitives(layer)]
    block = maps.primitives(repeat.block)
    tail = [p for layer in suffix for p in maps.primitives(layer)]
    unrolled = head + block * repeat.times
    if _fused_length(unrolled + tail) != len(unrolled):
        return None
    return unrolled, [len(head) + (d + 1) * len(block) for d in range(repeat.times)], tail[1:]


def _fused_length(layers: list) -> int:
    """How many leading layers run fused (0: none): a run of Conv and closed-form Activation
    layers directly followed by GlobalAvgPool."""
    n = maps.fusable(layers)
    return n if n and n < len(layers) and isinstance(layers[n], L.GlobalAvgPool) else 0


def _merge_stats(a: list[dict], b: list[dict]) -> list[dict]:
    merged = []
    for x, y in zip(a, b):
        z = dict(x)
        for key in ("per_pair", "direct"):
            if key in y:
                z[key] = z.get(key, 0) + y[key]
        if "kmax" in y:
            z["kmax"] = max(z.get("kmax", 0), y["kmax"])
        merged.append(z)
    return merged


def _to_dataset(nngp, ntk, request: _Request, stats, a1, a2) -> xarray.Dataset:
    import xarray as xr  # lazily: keeps `import ntktheory` fast

    dims = ("x1", "x2")
    n1, n2 = nngp.shape[1:]
    coords = {"x1": np.arange(n1), "x2": np.arange(n2)}
    if request.all_depths:
        dims = ("depth", *dims)
        coords["depth"] = np.arange(1, nngp.shape[0] + 1)
    else:
        nngp, ntk = nngp[0], ntk[0]
    preset = "architecture" not in request.attrs
    config = {**request.attrs, "in_shape": list(a1.shape[1:]), "all_depths": request.all_depths}
    if preset:
        config["activation_params"] = json.loads(request.attrs["activation_params"])
    attrs = {
        **provenance(config, conventions="fully_connected" if preset else "architecture"),
        **request.attrs,
        "all_depths": int(request.all_depths),
        "x2_is_x1": int(a2 is None),
        "n_features": int(np.prod(a1.shape[1:])),
        "quadrature": json.dumps(stats),
    }
    names = ("Sigma^{L+1} (readout)", "Theta^{L+1} (readout)") if preset else ("Sigma of the output",
                                                                               "Theta of the output")
    return xr.Dataset(
        {
            "nngp": (dims, nngp, {"long_name": f"NNGP kernel {names[0]}"}),
            "ntk": (dims, ntk, {"long_name": f"neural tangent kernel {names[1]}"}),
        },
        coords=coords,
        attrs=attrs,
    )
