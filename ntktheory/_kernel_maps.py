"""Kernel maps of the layers of :mod:`ntktheory.layers` on a spatial kernel state.

A :class:`KernelState` holds, for the pairs (x1_i, x2_j), the NNGP (second-moment) kernel and the
NTK accumulated so far, plus the NNGP of each input with itself (``self1``, ``self2``), which
gives the variances the nonlinearities need. Three spatial forms (chosen once per network by
:func:`spatial_form`):

========== ============================ ===================== =======================================
form       cross kernels ``nngp, ntk``  self kernels          used when
========== ============================ ===================== =======================================
"flat"     (n1, n2)                     (n, 1)                flat representations (after Flatten/GAP)
"diagonal" (H, W, n1, n2)               (H, W, n, 1)          images, same position p = p' only
"full"     (n1, H, W, n2, H, W)         (n, H, W, 1, H, W)    images, all pairs of positions (p, p')
========== ============================ ===================== =======================================

A convolution maps the diagonal p = p' to itself, so a network whose image part ends in Flatten
needs only the diagonal (O(n1 n2 H W) per layer); pooling mixes positions and needs the full form
(O(n1 n2 (H W)^2)). Self kernels are laid out as cross kernels with n2 = 1 (the column input being
the row input), so every position map serves both.

Elementwise maps (nonlinearities, LayerNorm, Dense) see every array as a batch of matrices
(B, R, C) with row variances (B, R) and column variances (B, C) (:func:`cross_batch`,
:func:`self_batch`). When
``symmetric`` (x2 is x1), each matrix of the batch is symmetric and only its upper triangle
(column >= row) is computed and valid; the lower triangle holds zeros or stale values and is
never read. Position maps preserve that triangle (a convolution shifts both positions by the same
offset, which keeps their order); pooling, which does not, first mirrors the diagonal blocks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys

import numpy as np
from numba import njit, prange

from . import _closed_forms, _quadrature
from . import layers as L
from .activations import Activation as ActivationFunction

__all__ = ["KernelState", "apply", "input_state", "mirror", "spatial_form"]

FORMS = ("flat", "diagonal", "full")


# ---------------------------------------------------------------------- state
@dataclasses.dataclass(frozen=True)
class KernelState:
    """Kernels of one layer's outputs for the pairs (x1_i, x2_j); layouts in the module docstring.

    Attributes
    ----------
    form
        "flat", "diagonal" or "full".
    nngp, ntk
        Cross kernels Sigma and Theta (the NTK accumulated by the layers so far).
    self1, self2
        Sigma of each x1 (x2) with itself; ``self2 is self1`` when ``symmetric``.
    symmetric
        x2 is x1: each batch matrix is symmetric and only its upper triangle is valid.
    shape
        Feature shape of the representation, (features,) or (channels, H, W); None entries for
        widths left unspecified.
    """

    form: str
    nngp: np.ndarray
    ntk: np.ndarray
    self1: np.ndarray
    self2: np.ndarray
    symmetric: bool
    shape: L.Shape

    @property
    def n1(self) -> int:
        return self.self1.shape[2] if self.form == "diagonal" else self.self1.shape[0]

    @property
    def n2(self) -> int:
        return self.self2.shape[2] if self.form == "diagonal" else self.self2.shape[0]

    def replace(self, **changes) -> KernelState:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class Context:
    """What the maps need besides the state: the parameterisation, a log of quadrature use, and a
    pool of kernel-sized arrays.

    :meth:`buffer` hands out an array of the requested shape that nothing else references any
    more (the previous layer's, once its state is dropped), so a network runs on two sets of
    arrays instead of faulting in fresh pages at every layer. Its contents are arbitrary (zeros
    when new): every map writes all the entries it is responsible for (the upper triangles when
    symmetric).
    """

    parameterization: str
    stats: list[dict] = dataclasses.field(default_factory=list)
    _pool: dict = dataclasses.field(default_factory=dict, repr=False)

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        shape = tuple(int(n) for n in shape)
        arrays = self._pool.setdefault(shape, [])
        for a in arrays:
            # referenced only by the pool's list, the loop variable and getrefcount's argument
            if sys.getrefcount(a) <= 3:
                return a
        a = np.zeros(shape)
        arrays.append(a)
        return a


def spatial_form(architecture: L.Layer, in_shape: L.Shape) -> str:
    """"flat" for flat inputs; for images "full" if any layer pools, else "diagonal"."""
    if len(in_shape) == 1:
        return "flat"
    pooling = any(isinstance(s.layer, (L.AvgPool, L.GlobalAvgPool)) for s in L.walk(architecture, in_shape))
    return "full" if pooling else "diagonal"


# ---------------------------------------------------------------------- batch views
def variances(self_kernel: np.ndarray, form: str) -> np.ndarray:
    """Per-input, per-position variances: (n,), (H, W, n) or (n, H, W)."""
    if form == "flat":
        return self_kernel[:, 0]
    if form == "diagonal":
        return self_kernel[..., 0]
    n, h, w = self_kernel.shape[:3]
    return np.diagonal(self_kernel.reshape(n, h * w, h * w), axis1=1, axis2=2).reshape(n, h, w)


def _cross_variance_views(state: KernelState) -> tuple[np.ndarray, np.ndarray]:
    """Row and column variances of the cross kernel's batch view."""
    v1, v2 = variances(state.self1, state.form), variances(state.self2, state.form)
    if state.form == "flat":
        return v1[None, :], v2[None, :]
    if state.form == "diagonal":
        h, w = v1.shape[:2]
        return v1.reshape(h * w, -1), v2.reshape(h * w, -1)
    return v1.reshape(1, -1), v2.reshape(1, -1)


def _self_variance_views(self_kernel: np.ndarray, form: str) -> np.ndarray:
    """Row (= column) variances of a self kernel's batch view."""
    v = variances(self_kernel, form)
    if form == "full":
        return v.reshape(v.shape[0], -1)
    return v.reshape(-1, 1)


# ---------------------------------------------------------------------- compiled elementwise maps
@njit(cache=True, inline="always")
def _rows(t, half, nrows, symmetric):
    """Rows handled by work item ``t``: (r, R - 1 - r) for symmetric batches (balanced triangles)."""
    r0 = t % half
    r1 = nrows - 1 - r0 if symmetric else -1
    return r0, (r1 if r1 != r0 else -1)


@njit(cache=True, inline="always")
def _closed_loop(kind, a, k, ntk, vr, vc, symmetric, with_ntk, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if symmetric else nr
    for tt in prange(nb * half):
        t = np.int64(tt)
        b = t // half
        r0, r1 = _rows(t, half, nr, symmetric)
        for r in (r0, r1):
            if r < 0:
                continue
            v1 = vr[b, r]
            c0 = r if symmetric else 0
            krow, trow, okrow, otrow, vcb = k[b, r], ntk[b, r], out_k[b, r], out_ntk[b, r], vc[b]
            for c in range(c0, nc):
                q12 = v1 if (symmetric and c == r) else krow[c]
                pp, dd = _closed_forms.pair(kind, a, v1, vcb[c], q12)
                okrow[c] = alpha * pp + beta
                if with_ntk:
                    otrow[c] = gamma * pp + delta + eps * dd * trow[c]


@njit(cache=True, parallel=True)
def _closed_batch(kind, a, k, ntk, vr, vc, symmetric, with_ntk, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    """Closed-form nonlinearity, optionally followed by an affine map, on a (B, R, C) batch.

    out_k = alpha E[phi phi] + beta;  out_ntk = gamma E[phi phi] + delta + eps E[phi' phi'] ntk.
    The diagonal of a symmetric matrix uses q12 = q1 exactly (correlation 1). Each kind gets its
    own copy of the loop (``kind`` a constant there), which lets the loops vectorise.
    """
    if kind == _closed_forms.RELU:
        _closed_loop(_closed_forms.RELU, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.LEAKY_RELU:
        _closed_loop(_closed_forms.LEAKY_RELU, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.ABS:
        _closed_loop(_closed_forms.ABS, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.STEP:
        _closed_loop(_closed_forms.STEP, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.ERF:
        _closed_loop(_closed_forms.ERF, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.SIN:
        _closed_loop(_closed_forms.SIN, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    elif kind == _closed_forms.IDENTITY:
        _closed_loop(_closed_forms.IDENTITY, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)
    else:
        _closed_loop(_closed_forms.GELU, a, k, ntk, vr, vc, symmetric, with_ntk,
                     alpha, beta, gamma, delta, eps, out_k, out_ntk)


@njit(cache=True, parallel=True)
def _affine_batch(k, ntk, symmetric, with_ntk, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    """out_k = alpha k + beta;  out_ntk = gamma k + delta + eps ntk (upper triangles if symmetric)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if symmetric else nr
    for tt in prange(nb * half):
        t = np.int64(tt)
        b = t // half
        r0, r1 = _rows(t, half, nr, symmetric)
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if symmetric else 0, nc):
                s = k[b, r, c]
                out_k[b, r, c] = alpha * s + beta
                if with_ntk:
                    out_ntk[b, r, c] = gamma * s + delta + eps * ntk[b, r, c]


@njit(cache=True, parallel=True)
def _normalise_batch(k, ntk, vr, vc, symmetric, with_ntk, out_k, out_ntk):
    """k / sqrt(vr vc) and ntk / sqrt(vr vc); 0 where a variance is 0 (the layer outputs 0 there)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if symmetric else nr
    for tt in prange(nb * half):
        t = np.int64(tt)
        b = t // half
        r0, r1 = _rows(t, half, nr, symmetric)
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if symmetric else 0, nc):
                d = math.sqrt(vr[b, r] * vc[b, c])
                inv = 1.0 / d if d > 0.0 else 0.0
                out_k[b, r, c] = (1.0 if (symmetric and c == r and d > 0.0) else k[b, r, c] * inv)
                if with_ntk:
                    out_ntk[b, r, c] = ntk[b, r, c] * inv


@njit(cache=True, parallel=True)
def _correlation_batch(k, vr, vc, symmetric, out):
    """c = k / sqrt(vr vc) clipped to [-1, 1]; 0 where a variance is 0 (c is then irrelevant)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if symmetric else nr
    for tt in prange(nb * half):
        t = np.int64(tt)
        b = t // half
        r0, r1 = _rows(t, half, nr, symmetric)
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if symmetric else 0, nc):
                d = math.sqrt(vr[b, r] * vc[b, c])
                v = k[b, r, c] / d if d > 0.0 else 0.0
                out[b, r, c] = min(1.0, max(-1.0, v))


@njit(cache=True, parallel=True)
def _multiply_batch(a, b_arr, symmetric, out):
    """out = a * b on the upper triangles (symmetric) or everywhere."""
    nb, nr, nc = a.shape
    half = (nr + 1) // 2 if symmetric else nr
    for tt in prange(nb * half):
        t = np.int64(tt)
        b = t // half
        r0, r1 = _rows(t, half, nr, symmetric)
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if symmetric else 0, nc):
                out[b, r, c] = a[b, r, c] * b_arr[b, r, c]


# ---------------------------------------------------------------------- compiled position maps
@njit(cache=True, inline="always")
def _tap_range(n_out, n_in, stride, pad, tap):
    """Output indices o with 0 <= o * stride - pad + tap < n_in, as [lo, hi)."""
    a = pad - tap
    lo = (a + stride - 1) // stride if a > 0 else 0
    b = n_in - 1 + pad - tap
    hi = b // stride + 1 if b >= 0 else 0
    return lo, min(hi, n_out)


@njit(cache=True, inline="always")
def _shifted_add(out_row, in_row, lo, hi, stride, offset):
    """out_row[q] += in_row[q * stride + offset] for q in [lo, hi)."""
    if stride == 1:
        for q in range(lo, hi):
            out_row[q] += in_row[q + offset]
    else:
        for q in range(lo, hi):
            out_row[q] += in_row[q * stride + offset]


@njit(cache=True, parallel=True)
def _conv_full(k, ntk, with_ntk, mode, kh, kw, sh, sw, pt, pl, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    """Convolution of the full spatial form: both positions shifted by the same filter offset.

    k, ntk: (n1, H, W, n2, H, W); out: (n1, Ho, Wo, n2, Ho, Wo) (any contents). With S the mean
    over the kh kw offsets (zero padding outside the image), out_k = alpha S(k) + beta and
    out_ntk = gamma S(k) + delta + eps S(ntk). ``mode``: 0 every column; 1 symmetric cross kernel
    (columns (j, q) >= (i, p) in row-major order); 2 self kernel (n2 = 1; columns q >= p). The
    entries read are then in the same triangle, since both positions move by the same offset.

    Each output row (i, p) is a sum of whole input rows (i, p + d), each shifted by the offset d
    and masked where q + d leaves the image; when the layer keeps the image size (stride 1,
    "same"), the shift is one constant in the flattened column index, so the inner loop runs over
    whole rows and vectorises. Other shapes take a per-position loop.
    """
    n1, h, w, n2 = k.shape[:4]
    ho, wo = out_k.shape[1], out_k.shape[2]
    p_in, p_out = h * w, ho * wo
    same_size = ho == h and wo == w and sh == 1 and sw == 1
    inv = 1.0 / (kh * kw)
    ncols = n2 * p_out
    # valid[tap, c]: whether column c = (j, qh, qw) reads inside the image at that tap
    valid = np.zeros((kh * kw, ncols), dtype=np.bool_)
    for dh in range(kh):
        for dw in range(kw):
            for c in range(ncols):
                qh = (c % p_out) // wo
                qw = c % wo
                jh = qh * sh - pt + dh
                jw = qw * sw - pl + dw
                valid[dh * kw + dw, c] = 0 <= jh < h and 0 <= jw < w
    kf = k.reshape(n1, p_in, n2 * p_in)
    tf = ntk.reshape(n1, p_in, n2 * p_in)
    okf = out_k.reshape(n1, p_out, ncols)
    otf = out_ntk.reshape(n1, p_out, ncols)
    for tt in prange(n1 * p_out):
        t = np.int64(tt)
        i = t // p_out
        p = t % p_out
        oh, ow = p // wo, p % wo
        c0 = i * p_out + p if mode == 1 else (p if mode == 2 else np.int64(0))
        orow, trow = okf[i, p], otf[i, p]
        orow[c0:] = 0.0
        if with_ntk:
            trow[c0:] = 0.0
        for dh in range(kh):
            ih = oh * sh - pt + dh
            if ih < 0 or ih >= h:
                continue
            for dw in range(kw):
                iw = ow * sw - pl + dw
                if iw < 0 or iw >= w:
                    continue
                irow, jrow, vrow = kf[i, ih * w + iw], tf[i, ih * w + iw], valid[dh * kw + dw]
                if same_size:
                    off = (dh - pt) * w + (dw - pl)
                    lo = max(c0, -off)
                    hi = min(ncols, ncols - off)
                    # slices, so that the loop index is the element index (no wraparound checks)
                    _masked_add(orow[lo:hi], irow[lo + off : hi + off], vrow[lo:hi])
                    if with_ntk:
                        _masked_add(trow[lo:hi], jrow[lo + off : hi + off], vrow[lo:hi])
                else:
                    for c in range(c0, ncols):
                        if vrow[c]:
                            j = c // p_out
                            q = c % p_out
                            src = j * p_in + ((q // wo) * sh - pt + dh) * w + (q % wo) * sw - pl + dw
                            orow[c] += irow[src]
                            if with_ntk:
                                trow[c] += jrow[src]
        _affine_row(orow[c0:], trow[c0:], with_ntk, alpha * inv, beta, gamma * inv, delta, eps * inv)


@njit(cache=True, inline="always")
def _masked_add(out, values, mask):
    """out += values where mask (same lengths)."""
    for c in range(out.size):
        out[c] += values[c] if mask[c] else 0.0


@njit(cache=True, inline="always")
def _affine_row(sk, st, with_ntk, alpha, beta, gamma, delta, eps):
    """sk -> alpha sk + beta and st -> gamma sk + delta + eps st, elementwise (the old sk)."""
    for c in range(sk.size):
        s = sk[c]
        sk[c] = alpha * s + beta
        if with_ntk:
            st[c] = gamma * s + delta + eps * st[c]


@njit(cache=True, parallel=True)
def _mirror_blocks(k, mode):
    """Fill the lower triangle of the diagonal position blocks from their upper triangle.

    mode 1: blocks (i, i) of a symmetric cross kernel (n, H, W, n, H, W); mode 2: every block of a
    self kernel (n, H, W, 1, H, W).
    """
    n, h, w = k.shape[:3]
    p = h * w
    for r in prange(n):
        i = np.int64(r)
        j = i if mode == 1 else np.int64(0)
        for a in range(p):
            for b in range(a):
                k[i, a // w, a % w, j, b // w, b % w] = k[i, b // w, b % w, j, a // w, a % w]


@njit(cache=True, parallel=True)
def _mirror(a):
    """Copy the upper triangle of a square matrix onto its lower triangle, in place."""
    n = a.shape[0]
    for i in prange(n):
        for j in range(i):
            a[i, j] = a[j, i]


def mirror(matrix: np.ndarray) -> np.ndarray:
    """A symmetric (n, n) flat kernel from its upper triangle (in place)."""
    _mirror(matrix)
    return matrix


# ---------------------------------------------------------------------- input
def input_state(x1: np.ndarray, x2: np.ndarray | None, form: str) -> KernelState:
    """The input covariance x.x'/(features) (flat) or x_p.x'_p'/C per pair of positions (images)."""
    symmetric = x2 is None
    xb = x1 if symmetric else x2
    if form == "flat":
        d = x1.shape[1]
        self1 = (np.einsum("ij,ij->i", x1, x1) / d)[:, None]
        self2 = self1 if symmetric else (np.einsum("ij,ij->i", xb, xb) / d)[:, None]
        cross = x1 @ xb.T / d
        return KernelState("flat", cross, np.zeros_like(cross), self1, self2, symmetric, (d,))
    n1, c, h, w = x1.shape
    if form == "diagonal":
        self1 = (np.einsum("ichw,ichw->hwi", x1, x1) / c)[..., None]
        self2 = self1 if symmetric else (np.einsum("ichw,ichw->hwi", xb, xb) / c)[..., None]
        cross = np.einsum("ichw,jchw->hwij", x1, xb, optimize=True) / c
    else:
        z1 = np.ascontiguousarray(x1.transpose(0, 2, 3, 1))  # (n, H, W, C)
        z2 = z1 if symmetric else np.ascontiguousarray(xb.transpose(0, 2, 3, 1))
        p = h * w

        def self_of(z):
            m = z.reshape(z.shape[0], p, c)
            return (np.matmul(m, m.transpose(0, 2, 1)) / c).reshape(z.shape[0], h, w, 1, h, w)

        self1 = self_of(z1)
        self2 = self1 if symmetric else self_of(z2)
        cross = (z1.reshape(n1 * p, c) @ z2.reshape(-1, c).T / c).reshape(n1, h, w, -1, h, w)
    return KernelState(form, cross, np.zeros_like(cross), self1, self2, symmetric, (c, h, w))


# ---------------------------------------------------------------------- batch views
def cross_batch(array: np.ndarray, form: str) -> np.ndarray:
    """(B, R, C) view of a cross kernel: (1, n1, n2), (H W, n1, n2) or (1, n1 H W, n2 H W)."""
    if form == "flat":
        return array.reshape(1, *array.shape)
    if form == "diagonal":
        h, w, n1, n2 = array.shape
        return array.reshape(h * w, n1, n2)
    n1, h, w, n2 = array.shape[:4]
    return array.reshape(1, n1 * h * w, n2 * h * w)


def self_batch(array: np.ndarray, form: str) -> np.ndarray:
    """(B, R, C) view of a self kernel: (n, 1, 1), (H W n, 1, 1) or (n, H W, H W)."""
    if form == "full":
        n, h, w = array.shape[:3]
        return array.reshape(n, h * w, h * w)
    return array.reshape(-1, 1, 1)


def _cross_variances(state: KernelState) -> tuple[np.ndarray, np.ndarray]:
    """Row and column variances (B, R), (B, C) of the cross kernel's batch view."""
    v1, v2 = variances(state.self1, state.form), variances(state.self2, state.form)
    if state.form == "flat":
        return v1[None, :], v2[None, :]
    if state.form == "diagonal":
        h, w = v1.shape[:2]
        return v1.reshape(h * w, -1), v2.reshape(h * w, -1)
    return v1.reshape(1, -1), v2.reshape(1, -1)


def _self_variances(self_kernel: np.ndarray, form: str) -> np.ndarray:
    """Row (= column) variances (B, R) of a self kernel's batch view."""
    v = variances(self_kernel, form)
    return v.reshape(v.shape[0], -1) if form == "full" else v.reshape(-1, 1)


def _on_selves(state: KernelState, func) -> tuple[np.ndarray, np.ndarray]:
    """``func(self_kernel)`` for self1 and (unless symmetric) self2."""
    s1 = func(state.self1)
    return s1, (s1 if state.symmetric else func(state.self2))


# ---------------------------------------------------------------------- elementwise maps
def _affine(state: KernelState, ctx: Context, alpha: float, beta: float, gamma: float, delta: float,
            eps: float) -> KernelState:
    """nngp -> alpha nngp + beta; ntk -> gamma nngp + delta + eps ntk; self -> alpha self + beta."""
    form = state.form
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    _affine_batch(cross_batch(state.nngp, form), cross_batch(state.ntk, form), state.symmetric, True,
                  alpha, beta, gamma, delta, eps, cross_batch(out_k, form), cross_batch(out_ntk, form))

    def on_self(s):
        out = np.zeros(s.shape)
        sb = self_batch(s, form)
        _affine_batch(sb, sb, True, False, alpha, beta, 0.0, 0.0, 0.0, self_batch(out, form), sb)
        return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=out_k, ntk=out_ntk, self1=self1, self2=self2)


def _weighted_coefficients(layer: L.Dense | L.Conv, state: KernelState, ctx: Context) -> tuple[float, ...]:
    """(alpha, beta, gamma, delta, eps) of a weighted layer, in terms of S = the mean over its taps.

    NTK parameterisation: Sigma' = sigma_w^2 S(Sigma) + sigma_b^2, Theta' = Sigma' + sigma_w^2 S(Theta).
    Standard: Theta' = fan_in S(Sigma) + 1 + sigma_w^2 S(Theta) with fan_in = C_in k_h k_w (the
    weights' and the bias's gradients; biases are trained even when sigma_b = 0).
    """
    sw2, sb2 = layer.sigma_w**2, layer.sigma_b**2
    if ctx.parameterization == "ntk":
        return sw2, sb2, sw2, sb2, sw2
    fan_in = state.shape[0] * (math.prod(layer.kernel_size) if isinstance(layer, L.Conv) else 1)
    return sw2, sb2, float(fan_in), 1.0, sw2


def _closed_kind(act: ActivationFunction) -> int:
    return _closed_forms.kind_of(act.closed_form)


def _activation_closed(act: ActivationFunction, state: KernelState, ctx: Context,
                       then: tuple[float, ...] | None) -> KernelState:
    """Closed-form nonlinearity, fused with the affine map ``then`` of a following Dense if given."""
    form, kind, a = state.form, _closed_kind(act), act.param_value
    alpha, beta, gamma, delta, eps = then if then is not None else (1.0, 0.0, 0.0, 0.0, 1.0)
    vr, vc = _cross_variances(state)
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    _closed_batch(kind, a, cross_batch(state.nngp, form), cross_batch(state.ntk, form), vr, vc, state.symmetric,
                  True, alpha, beta, gamma, delta, eps, cross_batch(out_k, form), cross_batch(out_ntk, form))

    def on_self(s):
        out = np.zeros(s.shape)
        sb = self_batch(s, form)
        v = _self_variances(s, form)
        _closed_batch(kind, a, sb, sb, v, v, True, False, alpha, beta, 0.0, 0.0, 0.0, self_batch(out, form), sb)
        return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=out_k, ntk=out_ntk, self1=self1, self2=self2)


def _quadrature_batch(act: ActivationFunction, k: np.ndarray, vr: np.ndarray, vc: np.ndarray, symmetric: bool,
                      want_dd: bool, stats: dict):
    """(E[phi phi], E[phi' phi'], E[phi^2] at the row variances, E[phi^2] at the column variances)
    on a (B, R, C) batch by quadrature; upper triangles if symmetric.

    Off-diagonal entries come from :func:`_quadrature.pair_expectations` (Mehler series with a
    rigorous tail bound, direct 2-D quadrature where it fails), one call per batch matrix;
    diagonals of symmetric matrices (correlation exactly 1) are its second moments (the
    univariate rule). Batches of 1 x 1 symmetric matrices need the univariate rule only.
    """
    nb, nr = k.shape[:2]
    pairs = [(act.phi, act.phi)] + ([(act.dphi, act.dphi)] if want_dd else [])
    if symmetric and nr == 1:
        m = _quadrature.second_moments([p[0] for p in pairs], vr.reshape(-1), act.kinks)
        pp = m[0].reshape(k.shape)
        return pp, (m[1].reshape(k.shape) if want_dd else None), m[0].reshape(vr.shape), m[0].reshape(vc.shape)
    c = np.zeros(k.shape)
    _correlation_batch(k, vr, vc, symmetric, c)
    pp = dd = None
    m_rows, m_cols = np.empty(vr.shape), np.empty(vc.shape)
    for b in range(nb):
        values, info = _quadrature.pair_expectations(pairs, vr[b], vc[b], c[b], symmetric=symmetric,
                                                     breakpoints=act.kinks, mirror=False, moments=True)
        if nb == 1:  # one large matrix: keep the arrays, no copy
            pp, dd = values[0][None], (values[1][None] if want_dd else None)
        else:
            if pp is None:
                pp = np.zeros(k.shape)
                dd = np.zeros(k.shape) if want_dd else None
            pp[b] = values[0]
            if want_dd:
                dd[b] = values[1]
        m1, m2 = info.pop("second_moment1"), info.pop("second_moment2")
        m_rows[b], m_cols[b] = m1[0], m2[0]
        if symmetric:
            idx = np.arange(nr)
            pp[b, idx, idx] = m1[0]
            if want_dd:
                dd[b, idx, idx] = m1[1]
        for key in ("per_pair", "direct"):
            stats[key] = stats.get(key, 0) + int(info[key])
        stats["kmax"] = max(stats.get("kmax", 0), int(info["kmax"]))
    return pp, dd, m_rows, m_cols


def _activation_quadrature(act: ActivationFunction, state: KernelState, ctx: Context) -> KernelState:
    form = state.form
    stats: dict = {"method": "quadrature"}
    vr, vc = _cross_variances(state)
    pp, dd, m_rows, m_cols = _quadrature_batch(act, cross_batch(state.nngp, form), vr, vc, state.symmetric, True,
                                               stats)
    _multiply_batch(dd, cross_batch(state.ntk, form), state.symmetric, dd)
    if form == "full":
        def on_self(s):
            v = _self_variances(s, form)
            out = _quadrature_batch(act, self_batch(s, form), v, v, True, False, stats)[0]
            return out.reshape(s.shape)

        self1, self2 = _on_selves(state, on_self)
    else:  # 1 x 1 self blocks: E[phi^2] at the cross kernel's own row / column variances
        self1 = m_rows.reshape(state.self1.shape)
        self2 = self1 if state.symmetric else m_cols.reshape(state.self2.shape)
    ctx.stats.append(stats)
    return state.replace(nngp=pp.reshape(state.nngp.shape), ntk=dd.reshape(state.ntk.shape), self1=self1,
                         self2=self2)


# ---------------------------------------------------------------------- position maps
@njit(cache=True, parallel=True)
def _conv_diagonal(k, ntk, with_ntk, symmetric, kh, kw, sh, sw, pt, pl, alpha, beta, gamma, delta, eps, out_k,
                   out_ntk):
    """Convolution of the diagonal form (H, W, n1, n2): out[p] = mean over offsets d of in[s p + d - pad].

    Zero padding outside the image; the affine map as in :func:`_conv_full`. Each output row
    (p, i) sums whole input rows (p', i), the upper triangle (j >= i) only when ``symmetric``.
    """
    h, w, n1 = k.shape[:3]
    ho, wo = out_k.shape[0], out_k.shape[1]
    inv = 1.0 / (kh * kw)
    for tt in prange(ho * wo * n1):
        t = np.int64(tt)
        i = t % n1
        oh = t // (n1 * wo)
        ow = (t // n1) % wo
        j0 = i if symmetric else np.int64(0)
        orow, trow = out_k[oh, ow, i, j0:], out_ntk[oh, ow, i, j0:]
        orow[:] = 0.0
        if with_ntk:
            trow[:] = 0.0
        for dh in range(kh):
            ih = oh * sh - pt + dh
            if ih < 0 or ih >= h:
                continue
            for dw in range(kw):
                iw = ow * sw - pl + dw
                if iw < 0 or iw >= w:
                    continue
                krow = k[ih, iw, i, j0:]
                for c in range(orow.size):
                    orow[c] += krow[c]
                if with_ntk:
                    nrow = ntk[ih, iw, i, j0:]
                    for c in range(trow.size):
                        trow[c] += nrow[c]
        _affine_row(orow, trow, with_ntk, alpha * inv, beta, gamma * inv, delta, eps * inv)


def _conv(layer: L.Conv, state: KernelState, ctx: Context) -> KernelState:
    pads = layer.padding_amounts(state.shape)
    out_shape = layer.out_shape(state.shape)
    alpha, beta, gamma, delta, eps = _weighted_coefficients(layer, state, ctx)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    (pt, _), (pl, _) = pads
    ho, wo = out_shape[1:]
    if state.form == "diagonal":
        n1, n2 = state.nngp.shape[2:]
        nngp = ctx.buffer((ho, wo, n1, n2))
        ntk = ctx.buffer((ho, wo, n1, n2))
        _conv_diagonal(state.nngp, state.ntk, True, state.symmetric, kh, kw, sh, sw, pt, pl, alpha, beta, gamma,
                       delta, eps, nngp, ntk)

        def on_self(s):
            out = np.zeros((ho, wo, s.shape[2], 1))
            _conv_diagonal(s, s, False, False, kh, kw, sh, sw, pt, pl, alpha, beta, 0.0, 0.0, 0.0, out, out)
            return out

    else:
        n1, n2 = state.nngp.shape[0], state.nngp.shape[3]
        nngp = ctx.buffer((n1, ho, wo, n2, ho, wo))
        ntk = ctx.buffer((n1, ho, wo, n2, ho, wo))
        _conv_full(state.nngp, state.ntk, True, 1 if state.symmetric else 0, kh, kw, sh, sw, pt, pl,
                   alpha, beta, gamma, delta, eps, nngp, ntk)

        def on_self(s):
            out = np.zeros((s.shape[0], ho, wo, 1, ho, wo))
            _conv_full(s, s, False, 2, kh, kw, sh, sw, pt, pl, alpha, beta, 0.0, 0.0, 0.0, out, out)
            return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=nngp, ntk=ntk, self1=self1, self2=self2, shape=out_shape)


def _mirrored(state: KernelState) -> KernelState:
    """A full-form state whose diagonal position blocks are complete (pooling reads them whole)."""
    nngp, ntk = state.nngp, state.ntk
    if state.symmetric:
        nngp, ntk = nngp.copy(), ntk.copy()
        _mirror_blocks(nngp, 1)
        _mirror_blocks(ntk, 1)

    def full_self(s):
        s = s.copy()
        _mirror_blocks(s, 2)
        return s

    self1, self2 = _on_selves(state, full_self)
    return state.replace(nngp=nngp, ntk=ntk, self1=self1, self2=self2)


def _pool_axes(array: np.ndarray, axes: tuple[int, int], window, stride, out_hw) -> np.ndarray:
    """Mean over windows along two spatial axes."""
    (wh, ww), (sh, sw), (ho, wo) = window, stride, out_hw
    out = None
    for ah in range(wh):
        for aw in range(ww):
            index = [slice(None)] * array.ndim
            index[axes[0]] = slice(ah, ah + (ho - 1) * sh + 1, sh)
            index[axes[1]] = slice(aw, aw + (wo - 1) * sw + 1, sw)
            part = array[tuple(index)]
            out = part.copy() if out is None else out + part
    return out / (wh * ww)


def _avg_pool(layer: L.AvgPool, state: KernelState, ctx: Context) -> KernelState:
    out_shape = layer.out_shape(state.shape)
    hw = out_shape[1:]
    state = _mirrored(state)

    def pool(a):
        return _pool_axes(_pool_axes(a, (1, 2), layer.window, layer.stride, hw), (4, 5), layer.window, layer.stride, hw)

    self1, self2 = _on_selves(state, pool)
    return state.replace(nngp=pool(state.nngp), ntk=pool(state.ntk), self1=self1, self2=self2, shape=out_shape)


def _to_flat(state: KernelState, reduce_cross, reduce_self, shape: L.Shape) -> KernelState:
    self1, self2 = _on_selves(state, reduce_self)
    return KernelState("flat", reduce_cross(state.nngp), reduce_cross(state.ntk), self1, self2, state.symmetric,
                       shape)


@njit(cache=True, parallel=True)
def _block_means(k, mode, out):
    """out[i, j] = mean over (p, p') of the position block (i, j) of a full-form array.

    mode 0: every block; 1: symmetric cross kernel, blocks j >= i, the diagonal blocks read from
    their upper triangle; 2: self kernel (n, H, W, 1, H, W), each block from its upper triangle.
    """
    n1, h, w, n2 = k.shape[:4]
    p = h * w
    kf = k.reshape(n1, p, n2, p)
    for r in prange(n1):
        i = np.int64(r)
        for j in range(i if mode == 1 else 0, n2):
            total = 0.0
            if mode == 0 or (mode == 1 and j != i):
                for a in range(p):
                    row = kf[i, a, j]
                    for b in range(p):
                        total += row[b]
            else:
                for a in range(p):
                    row = kf[i, a, j]
                    total += row[a]
                    for b in range(a + 1, p):
                        total += 2.0 * row[b]
            out[i, j] = total / (p * p)


def _global_avg_pool(layer: L.GlobalAvgPool, state: KernelState, ctx: Context) -> KernelState:
    def cross(a):
        out = np.zeros((a.shape[0], a.shape[3]))
        _block_means(a, 1 if state.symmetric else 0, out)
        return out

    def self_mean(s):
        out = np.zeros((s.shape[0], 1))
        _block_means(s, 2, out)
        return out

    return _to_flat(state, cross, self_mean, layer.out_shape(state.shape))


def _flatten(layer: L.Flatten, state: KernelState, ctx: Context) -> KernelState:
    shape = layer.out_shape(state.shape)
    if state.form == "diagonal":
        return _to_flat(state, lambda a: a.mean(axis=(0, 1)), lambda s: s.mean(axis=(0, 1)).reshape(-1, 1), shape)

    def diag_mean(a):
        n1, h, w, n2 = a.shape[:4]
        return np.einsum("ipjp->ij", a.reshape(n1, h * w, n2, h * w)) / (h * w)

    return _to_flat(state, diag_mean, diag_mean, shape)


def _layer_norm(layer: L.LayerNorm, state: KernelState, ctx: Context) -> KernelState:
    form = state.form
    vr, vc = _cross_variances(state)
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    _normalise_batch(cross_batch(state.nngp, form), cross_batch(state.ntk, form), vr, vc, state.symmetric, True,
                     cross_batch(out_k, form), cross_batch(out_ntk, form))

    def on_self(s):
        out = np.zeros(s.shape)
        v = _self_variances(s, form)
        sb = self_batch(s, form)
        _normalise_batch(sb, sb, v, v, True, False, self_batch(out, form), sb)
        return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=out_k, ntk=out_ntk, self1=self1, self2=self2)


# ---------------------------------------------------------------------- dispatch
@functools.singledispatch
def apply(layer: L.Layer, state: KernelState, ctx: Context) -> KernelState:
    """The kernel map of ``layer``: the state of its inputs to the state of its outputs."""
    raise NotImplementedError(f"no kernel map for {type(layer).__name__}")


@apply.register
def _(layer: L.Dense, state: KernelState, ctx: Context) -> KernelState:
    alpha, beta, gamma, delta, eps = _weighted_coefficients(layer, state, ctx)
    return _affine(state, ctx, alpha, beta, gamma, delta, eps).replace(shape=layer.out_shape(state.shape))


apply.register(L.Conv, _conv)
apply.register(L.AvgPool, _avg_pool)
apply.register(L.GlobalAvgPool, _global_avg_pool)
apply.register(L.Flatten, _flatten)
apply.register(L.LayerNorm, _layer_norm)


@apply.register
def _(layer: L.Activation, state: KernelState, ctx: Context) -> KernelState:
    act = layer.function
    if act.has_closed_form:
        ctx.stats.append({"method": "closed_form"})
        return _activation_closed(act, state, ctx, None)
    return _activation_quadrature(act, state, ctx)


@apply.register
def _(layer: L.Residual, state: KernelState, ctx: Context) -> KernelState:
    out = apply(layer.branch, state, ctx)
    self1 = out.self1 + state.self1
    self2 = self1 if state.symmetric else out.self2 + state.self2
    return out.replace(nngp=out.nngp + state.nngp, ntk=out.ntk + state.ntk, self1=self1, self2=self2)


@apply.register
def _(layer: L.Repeat, state: KernelState, ctx: Context) -> KernelState:
    return run_sequence(primitives(layer), state, ctx)


@apply.register
def _(layer: L.Serial, state: KernelState, ctx: Context) -> KernelState:
    return run_sequence(primitives(layer), state, ctx)


def primitives(layer: L.Layer) -> list[L.Layer]:
    """Serial and Repeat unrolled into the list of layers they apply (Residuals kept whole)."""
    if isinstance(layer, L.Serial):
        return [p for sub in layer.layers for p in primitives(sub)]
    if isinstance(layer, L.Repeat):
        return [p for _ in range(layer.times) for p in primitives(layer.block)]
    return [layer]


def run_sequence(layers: list[L.Layer], state: KernelState, ctx: Context) -> KernelState:
    """Apply layers in order; a closed-form Activation followed by Dense runs as one fused pass."""
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if (isinstance(layer, L.Activation) and isinstance(nxt, L.Dense) and layer.function.has_closed_form
                and state.form == "flat"):
            ctx.stats.append({"method": "closed_form_fused"})
            coef = _weighted_coefficients(nxt, state, ctx)
            state = _activation_closed(layer.function, state, ctx, coef).replace(shape=nxt.out_shape(state.shape))
            i += 2
            continue
        state = apply(layer, state, ctx)
        i += 1
    return state
