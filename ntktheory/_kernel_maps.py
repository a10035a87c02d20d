"""Kernel maps of the layers of :mod:`ntktheory.layers` on a spatial kernel state.

A :class:`KernelState` holds, for the pairs (x1_i, x2_j), the NNGP (second-moment) kernel and the
NTK accumulated so far, plus the NNGP of each input with itself (``self1``, ``self2``), which
gives the variances the nonlinearities need. Three spatial forms (chosen once per network by
:func:`spatial_form`):

========== ============================ ======================= =====================================
form       cross kernels ``nngp, ntk``  self kernels            used when
========== ============================ ======================= =====================================
"flat"     (n1, n2)                     (n, 1)                  flat representations
"diagonal" (H, W, n1, n2)               (H, W, n, 1)            images, same position p = p' only
"full"     (n1, n2, H, W, H, W)         (n, 1, H, W, H, W)      images, all pairs of positions (p, p')
========== ============================ ======================= =====================================

A convolution maps the diagonal p = p' to itself, so a network whose image part ends in Flatten
needs only the diagonal (O(n1 n2 H W) per layer); pooling mixes positions and needs the full form
(O(n1 n2 (H W)^2)), stored as one contiguous (H W) x (H W) block per pair of inputs. Self kernels
are laid out as cross kernels with n2 = 1 (the column input being the row input), so every
position map serves both.

Elementwise maps (nonlinearities, LayerNorm, Dense) see every array as a batch of matrices
(B, R, C) (:class:`Batch`): an (n1, n2) matrix (flat), H W matrices (n1, n2) (diagonal) or n1 n2
blocks (H W, H W) (full), with row and column variances looked up per batch matrix. When
``symmetric`` (x2 is x1) only half is computed and valid: the upper triangle (column >= row) of
each matrix in the flat and diagonal forms, the blocks (i, j) with j >= i (each block whole) in
the full form; the rest holds zeros or stale values and is never read. Position maps preserve that
(a convolution shifts both positions by the same offset).

Networks of convolutions and closed-form activations ending in global average pooling (the
CNN-GAP of Xiao et al. 2020) have a fused path (:func:`fused_prefix`): chunks of ``CHUNK`` pairs
of inputs run through all those layers in buffers laid out (H, H', Wp, Wp, pair), which stay in
a core's cache and put the pairs innermost, so that every loop runs over long contiguous rows.
The columns are zero-padded for the next convolution (pitch Wp), so a convolution is one pass of
shifted runs (nine for a 3x3 filter) with no boundary cases, and the border stays zero from
layer to layer. The variances come from a pass over the self kernels, and no full-form cross
kernel is ever stored.

The compiled loops use ``error_model="numpy"``: a float division by zero gives inf or nan instead
of raising, which lets loops containing divisions vectorise (every division here has a nonzero
denominator or a select around it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys

import numba
import numpy as np
from numba import njit, prange

from . import _closed_forms, _kernel_kinds, _quadrature
from . import layers as L
from .activations import Activation as ActivationFunction

__all__ = ["KernelState", "apply", "fused_prefix", "input_state", "mirror", "run_sequence", "spatial_form"]

FORMS = ("flat", "diagonal", "full")
#: ``mode`` codes of the batch kernels: every entry; upper triangles; blocks j >= i (whole).
ALL, TRIANGLE, BLOCKS = 0, 1, 2


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
        x2 is x1: only half of the cross kernels is valid (see the module docstring).
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

    def replace(self, **changes) -> KernelState:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class Context:
    """What the maps need besides the state: the parameterisation, a log of quadrature use, and a
    pool of kernel-sized arrays.

    :meth:`buffer` hands out an array of the requested shape that nothing else references any
    more (the previous layer's, once its state is dropped), so a network runs on two sets of
    arrays instead of faulting in fresh pages at every layer. Its contents are arbitrary (zeros
    when new): every map writes all the entries it is responsible for.
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
@dataclasses.dataclass(frozen=True)
class Batch:
    """A kernel array as a batch of matrices (B, R, C), with its row and column variances.

    Matrix b has row variances ``vr[(b // rdiv) % rmod]`` and column variances
    ``vc[(b // cdiv) % cmod]``; ``mode`` says which entries are computed (ALL, TRIANGLE, BLOCKS).
    """

    array: np.ndarray
    vr: np.ndarray
    vc: np.ndarray
    index: tuple[int, int, int, int]
    mode: int

    def like(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(self.array.shape)


def variances(self_kernel: np.ndarray, form: str) -> np.ndarray:
    """Per-input, per-position variances: (n,), (H, W, n) or (n, H, W)."""
    if form == "flat":
        return self_kernel[:, 0]
    if form == "diagonal":
        return self_kernel[..., 0]
    n, _, h, w = self_kernel.shape[:4]
    return np.diagonal(self_kernel.reshape(n, h * w, h * w), axis1=1, axis2=2).reshape(n, h, w)


def cross_batch(state: KernelState, array: np.ndarray | None = None) -> Batch:
    """The batch view of a cross kernel array of ``state`` (its nngp by default)."""
    array = state.nngp if array is None else array
    v1, v2 = variances(state.self1, state.form), variances(state.self2, state.form)
    sym = state.symmetric
    if state.form == "flat":
        return Batch(array.reshape(1, *array.shape), v1[None], v2[None], (1, 1, 1, 1), TRIANGLE if sym else ALL)
    if state.form == "diagonal":
        h, w, n1, n2 = array.shape
        p = h * w
        return Batch(array.reshape(p, n1, n2), v1.reshape(p, n1), v2.reshape(p, n2), (1, p, 1, p),
                     TRIANGLE if sym else ALL)
    n1, n2, h, w = array.shape[:4]
    p = h * w
    return Batch(array.reshape(n1 * n2, p, p), v1.reshape(-1, p), v2.reshape(-1, p), (max(n2, 1), n1, 1, max(n2, 1)),
                 BLOCKS if sym else ALL)


def self_batch(self_kernel: np.ndarray, form: str, array: np.ndarray | None = None) -> Batch:
    """The batch view of a self kernel (or of ``array`` laid out like it)."""
    array = self_kernel if array is None else array
    v = variances(self_kernel, form)
    if form == "full":
        n, _, h, w = self_kernel.shape[:4]
        return Batch(array.reshape(n, h * w, h * w), v.reshape(n, h * w), v.reshape(n, h * w), (1, n, 1, n), BLOCKS)
    vv = v.reshape(-1, 1)
    return Batch(array.reshape(-1, 1, 1), vv, vv, (1, vv.shape[0], 1, vv.shape[0]), TRIANGLE)


def _on_selves(state: KernelState, func) -> tuple[np.ndarray, np.ndarray]:
    """``func(self_kernel)`` for self1 and (unless symmetric) self2."""
    s1 = func(state.self1)
    return s1, (s1 if state.symmetric else func(state.self2))


# ---------------------------------------------------------------------- compiled elementwise maps
@njit(cache=True, inline="always", error_model="numpy")
def _items(t, nr, half, mode, rdiv, rmod, cdiv, cmod):
    """Work item t -> (batch b, rows r0, r1 (-1: none), whether to skip, whether the batch matrix
    is a diagonal block (same input on both sides)). TRIANGLE pairs rows (r, R - 1 - r)."""
    b = t // half
    r0 = t % half
    r1 = np.int64(-1)
    if mode == TRIANGLE:
        r1 = nr - 1 - r0
        if r1 == r0:
            r1 = np.int64(-1)
    i = (b // rdiv) % rmod
    j = (b // cdiv) % cmod
    skip = mode == BLOCKS and j < i
    return b, i, j, r0, r1, skip, mode == BLOCKS and j == i


@njit(cache=True, parallel=True, error_model="numpy")
def _affine_batch(k, ntk, mode, rdiv, rmod, cdiv, cmod, with_ntk, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    """out_k = alpha k + beta;  out_ntk = gamma k + delta + eps ntk (the computed part, see ``mode``)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if mode == TRIANGLE else nr
    for tt in prange(nb * half):
        b, _i, _j, r0, r1, skip, _same = _items(np.int64(tt), nr, half, mode, rdiv, rmod, cdiv, cmod)
        if skip:
            continue
        for r in (r0, r1):
            if r < 0:
                continue
            krow, trow, okrow, otrow = k[b, r], ntk[b, r], out_k[b, r], out_ntk[b, r]
            for c in range(r if mode == TRIANGLE else 0, nc):
                s = krow[c]
                okrow[c] = alpha * s + beta
                if with_ntk:
                    otrow[c] = gamma * s + delta + eps * trow[c]


@njit(cache=True, parallel=True, error_model="numpy")
def _normalise_batch(k, ntk, vr, vc, mode, rdiv, rmod, cdiv, cmod, with_ntk, out_k, out_ntk):
    """k / sqrt(vr vc) and ntk / sqrt(vr vc); 0 where a variance is 0 (the layer outputs 0 there)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if mode == TRIANGLE else nr
    for tt in prange(nb * half):
        b, i, j, r0, r1, skip, same = _items(np.int64(tt), nr, half, mode, rdiv, rmod, cdiv, cmod)
        if skip:
            continue
        for r in (r0, r1):
            if r < 0:
                continue
            diag = mode == TRIANGLE or same
            for c in range(r if mode == TRIANGLE else 0, nc):
                d = math.sqrt(vr[i, r] * vc[j, c])
                inv = 1.0 / d if d > 0.0 else 0.0
                out_k[b, r, c] = 1.0 if (diag and c == r and d > 0.0) else k[b, r, c] * inv
                if with_ntk:
                    out_ntk[b, r, c] = ntk[b, r, c] * inv


@njit(cache=True, parallel=True, error_model="numpy")
def _correlation_batch(k, vr, vc, mode, rdiv, rmod, cdiv, cmod, out):
    """c = k / sqrt(vr vc) clipped to [-1, 1]; 0 where a variance is 0 (c is then irrelevant)."""
    nb, nr, nc = k.shape
    half = (nr + 1) // 2 if mode == TRIANGLE else nr
    for tt in prange(nb * half):
        b, i, j, r0, r1, skip, _same = _items(np.int64(tt), nr, half, mode, rdiv, rmod, cdiv, cmod)
        if skip:
            continue
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if mode == TRIANGLE else 0, nc):
                d = math.sqrt(vr[i, r] * vc[j, c])
                v = k[b, r, c] / d if d > 0.0 else 0.0
                out[b, r, c] = min(1.0, max(-1.0, v))


@njit(cache=True, parallel=True, error_model="numpy")
def _multiply_batch(x, y, mode, rdiv, rmod, cdiv, cmod, out):
    """out = x * y on the computed part (see ``mode``)."""
    nb, nr, nc = x.shape
    half = (nr + 1) // 2 if mode == TRIANGLE else nr
    for tt in prange(nb * half):
        b, _i, _j, r0, r1, skip, _same = _items(np.int64(tt), nr, half, mode, rdiv, rmod, cdiv, cmod)
        if skip:
            continue
        for r in (r0, r1):
            if r < 0:
                continue
            for c in range(r if mode == TRIANGLE else 0, nc):
                out[b, r, c] = x[b, r, c] * y[b, r, c]


# ---------------------------------------------------------------------- compiled position maps
@njit(cache=True, inline="always", error_model="numpy")
def _tap_range(n_out, n_in, stride, pad, tap):
    """Output indices o with 0 <= o * stride - pad + tap < n_in, as [lo, hi)."""
    a = pad - tap
    lo = (a + stride - 1) // stride if a > 0 else 0
    b = n_in - 1 + pad - tap
    hi = b // stride + 1 if b >= 0 else 0
    return lo, min(hi, n_out)


@njit(cache=True, error_model="numpy")
def conv_taps(h, w, ho, wo, kh, kw, sh, sw, pt, pl):
    """For each filter offset (dh, dw): which output positions q read inside the image,
    valid[tap, q], and the input position they read, source[tap, q] (-1 outside)."""
    valid = np.zeros((kh * kw, ho * wo), dtype=np.bool_)
    source = np.full((kh * kw, ho * wo), -1, dtype=np.int64)
    for dh in range(kh):
        for dw in range(kw):
            for q in range(ho * wo):
                ih = (q // wo) * sh - pt + dh
                iw = (q % wo) * sw - pl + dw
                if 0 <= ih < h and 0 <= iw < w:
                    valid[dh * kw + dw, q] = True
                    source[dh * kw + dw, q] = ih * w + iw
    return valid, source


@njit(cache=True, error_model="numpy")
def _conv_block(src, dst, valid, source, same_size, offsets):
    """dst[q, q'] = sum over taps of src[source(q), source(q')] (both positions shifted by the same
    filter offset; taps outside the image contribute 0). src (P_in, P_in), dst (P_out, P_out).

    When the layer keeps the image (stride 1, 'same'), source(q) = q + offset(tap), so each row is
    a masked shifted copy of a whole source row and the inner loop vectorises."""
    p_out = dst.shape[0]
    ntaps = valid.shape[0]
    for q in range(p_out):
        row = dst[q]
        row[:] = 0.0
        for t in range(ntaps):
            if not valid[t, q]:
                continue
            srow = src[source[t, q]]
            vrow = valid[t]
            if same_size:
                off = offsets[t]
                lo = max(0, -off)
                hi = min(p_out, p_out - off)
                part = srow[lo + off : hi + off]
                mask = vrow[lo:hi]
                out = row[lo:hi]
                for c in range(out.size):
                    out[c] += part[c] if mask[c] else 0.0
            else:
                stab = source[t]
                for c in range(p_out):
                    if vrow[c]:
                        row[c] += srow[stab[c]]


@njit(cache=True, error_model="numpy")
def _shift_rows(src, dst, mask, step, pad):
    """dst[q] = sum over taps d of src[q + (d - pad) step], masked where the shifted position leaves
    the image (``mask[d, q]``), both row and column positions shifted (one axis of a separable
    'same' stride-1 convolution; src and dst (P, P))."""
    p = dst.shape[0]
    for q in range(p):
        row = dst[q]
        row[:] = 0.0
        for d in range(mask.shape[0]):
            if not mask[d, q]:
                continue
            off = (d - pad) * step
            srow = src[q + off]
            lo = max(0, -off)
            hi = min(p, p - off)
            part = srow[lo + off : hi + off]
            m = mask[d, lo:hi]
            out = row[lo:hi]
            for c in range(out.size):
                out[c] += part[c] if m[c] else 0.0


@njit(cache=True, error_model="numpy")
def _conv_block_separable(src, dst, tmp, mask_h, mask_w, pt, pl, w):
    """The sum over the kh x kw offsets of a 'same' stride-1 convolution as two passes of kh and
    kw taps (the zero padding makes a tap valid iff it is valid along each axis)."""
    _shift_rows(src, tmp, mask_w, 1, pl)
    _shift_rows(tmp, dst, mask_h, w, pt)


@njit(cache=True, inline="always", error_model="numpy")
def _affine_row(sk, st, with_ntk, alpha, beta, gamma, delta, eps):
    """sk -> alpha sk + beta and st -> gamma sk + delta + eps st, elementwise on 1-D rows."""
    for c in range(sk.size):
        s = sk[c]
        sk[c] = alpha * s + beta
        if with_ntk:
            st[c] = gamma * s + delta + eps * st[c]


@njit(cache=True, error_model="numpy")
def _affine_block(sk, st, with_ntk, alpha, beta, gamma, delta, eps):
    """:func:`_affine_row` on every row of 2-D blocks (views of larger buffers allowed)."""
    for r in range(sk.shape[0]):
        _affine_row(sk[r], st[r], with_ntk, alpha, beta, gamma, delta, eps)


@njit(cache=True, error_model="numpy")
def _conv_any(src, dst, tmp, valid, source, same_size, offsets, mask_h, mask_w, pt, pl, w):
    """The sum over filter offsets of one block: separable passes when the image keeps its size."""
    if same_size:
        _conv_block_separable(src, dst, tmp, mask_h, mask_w, pt, pl, w)
    else:
        _conv_block(src, dst, valid, source, same_size, offsets)


@njit(cache=True, parallel=True, error_model="numpy")
def _conv_blocks(k, ntk, with_ntk, skip_lower, n2, valid, source, same_size, offsets, mask_h, mask_w, pt, pl, w,
                 inv, alpha, beta, gamma, delta, eps, out_k, out_ntk):
    """Convolution of every position block of a full-form array (B = n1 n2 blocks).

    out_k = alpha S(k) + beta and out_ntk = gamma S(k) + delta + eps S(ntk), S the mean over the
    filter offsets; blocks with j < i are skipped when ``skip_lower``."""
    p = out_k.shape[1]
    for bb in prange(k.shape[0]):
        b = np.int64(bb)
        if skip_lower and (b % n2) < (b // n2):
            continue
        tmp = np.empty((p, p))
        _conv_any(k[b], out_k[b], tmp, valid, source, same_size, offsets, mask_h, mask_w, pt, pl, w)
        if with_ntk:
            _conv_any(ntk[b], out_ntk[b], tmp, valid, source, same_size, offsets, mask_h, mask_w, pt, pl, w)
        _affine_block(out_k[b], out_ntk[b], with_ntk, alpha * inv, beta, gamma * inv, delta, eps * inv)


@njit(cache=True, parallel=True, error_model="numpy")
def _conv_diagonal(k, ntk, with_ntk, symmetric, kh, kw, sh, sw, pt, pl, alpha, beta, gamma, delta, eps, out_k,
                   out_ntk):
    """Convolution of the diagonal form (H, W, n1, n2): out[p] = mean over offsets d of in[s p + d - pad].

    Zero padding outside the image; the affine map as in :func:`_conv_blocks`. Each output row
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


@njit(cache=True, parallel=True, error_model="numpy")
def _block_reduce(k, skip_lower, n2, diagonal_only, out):
    """out[b] = mean over the block (all (p, p') pairs, or the diagonal p = p' only)."""
    for bb in prange(k.shape[0]):
        b = np.int64(bb)
        if skip_lower and (b % n2) < (b // n2):
            continue
        blk = k[b]
        total = 0.0
        if diagonal_only:
            for a in range(blk.shape[0]):
                total += blk[a, a]
            out[b] = total / blk.shape[0]
        else:
            for a in range(blk.shape[0]):
                for c in range(blk.shape[1]):
                    total += blk[a, c]
            out[b] = total / blk.size


@njit(cache=True, parallel=True, error_model="numpy")
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
def input_state(x1: np.ndarray, x2: np.ndarray | None, form: str, cross: bool = True) -> KernelState:
    """The input covariance x.x'/(features) (flat) or x_p.x'_p'/C per pair of positions (images).

    ``cross=False`` (full form only) leaves the cross kernels empty (n1, 0, H, W, H, W): the self
    kernels alone, for the fused path, which builds the cross input chunk by chunk."""
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
        p = h * w
        z1 = np.ascontiguousarray(x1.reshape(n1, c, p).transpose(0, 2, 1))  # (n, P, C)
        z2 = z1 if symmetric else np.ascontiguousarray(xb.reshape(len(xb), c, p).transpose(0, 2, 1))

        def self_of(z):
            return (np.matmul(z, z.transpose(0, 2, 1)) / c).reshape(z.shape[0], 1, h, w, h, w)

        self1 = self_of(z1)
        self2 = self1 if symmetric else self_of(z2)
        if not cross:
            empty = np.zeros((n1, 0, h, w, h, w))
            return KernelState(form, empty, empty, self1, self2, symmetric, (c, h, w))
        cross = (np.einsum("ipc,jqc->ijpq", z1, z2, optimize=True) / c).reshape(n1, len(z2), h, w, h, w)
    return KernelState(form, cross, np.zeros_like(cross), self1, self2, symmetric, (c, h, w))


# ---------------------------------------------------------------------- elementwise maps
def _affine(state: KernelState, ctx: Context, alpha: float, beta: float, gamma: float, delta: float,
            eps: float) -> KernelState:
    """nngp -> alpha nngp + beta; ntk -> gamma nngp + delta + eps ntk; self -> alpha self + beta."""
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    cb = cross_batch(state)
    _affine_batch(cb.array, cb.like(state.ntk), cb.mode, *cb.index, True, alpha, beta, gamma, delta, eps,
                  cb.like(out_k), cb.like(out_ntk))

    def on_self(s):
        out = np.zeros(s.shape)
        sb = self_batch(s, state.form)
        _affine_batch(sb.array, sb.array, sb.mode, *sb.index, False, alpha, beta, 0.0, 0.0, 0.0, sb.like(out),
                      sb.array)
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
    kind, a = _closed_kind(act), act.param_value
    alpha, beta, gamma, delta, eps = then if then is not None else (1.0, 0.0, 0.0, 0.0, 1.0)
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    cb = cross_batch(state)
    closed_batch = _kernel_kinds.for_kind(kind).closed_batch
    closed_batch(a, cb.array, cb.like(state.ntk), cb.vr, cb.vc, cb.mode, *cb.index, True, alpha, beta, gamma, delta,
                 eps, cb.like(out_k), cb.like(out_ntk))

    def on_self(s):
        out = np.zeros(s.shape)
        sb = self_batch(s, state.form)
        closed_batch(a, sb.array, sb.array, sb.vr, sb.vc, sb.mode, *sb.index, False, alpha, beta, 0.0, 0.0, 0.0,
                     sb.like(out), sb.array)
        return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=out_k, ntk=out_ntk, self1=self1, self2=self2)


def _quadrature_matrix(act: ActivationFunction, c: np.ndarray, v_rows: np.ndarray, v_cols: np.ndarray,
                       symmetric: bool, want_dd: bool, stats: dict):
    """(E[phi phi], E[phi' phi'] or None, E[phi^2] at v_rows, E[phi^2] at v_cols) of one correlation
    matrix by :func:`_quadrature.pair_expectations` (Mehler series with a rigorous tail bound,
    direct 2-D quadrature where it fails); with ``symmetric`` the upper triangle, diagonal included
    (the univariate rule's second moments)."""
    pairs = [(act.phi, act.phi)] + ([(act.dphi, act.dphi)] if want_dd else [])
    values, info = _quadrature.pair_expectations(pairs, v_rows, v_cols, c, symmetric=symmetric,
                                                 breakpoints=act.kinks, mirror=False, moments=True,
                                                 evaluate=act.phi_and_dphi if want_dd else None)
    m1, m2 = info.pop("second_moment1"), info.pop("second_moment2")
    if symmetric:
        idx = np.arange(len(v_rows))
        for p in range(len(pairs)):
            values[p][idx, idx] = m1[p]
    for key in ("per_pair", "direct"):
        stats[key] = stats.get(key, 0) + int(info[key])
    stats["kmax"] = max(stats.get("kmax", 0), int(info["kmax"]))
    return values[0], (values[1] if want_dd else None), m1[0], m2[0]


def _correlations(batch: Batch) -> np.ndarray:
    c = np.zeros(batch.array.shape)
    _correlation_batch(batch.array, batch.vr, batch.vc, batch.mode, *batch.index, c)
    return c


def _activation_quadrature(act: ActivationFunction, state: KernelState, ctx: Context) -> KernelState:
    """A nonlinearity without closed form: quadrature on every entry.

    Flat and diagonal forms: one correlation matrix per batch matrix (one, or one per position).
    Full form: the n1 H W x n2 H W matrix of all (input, position) pairs at once, its diagonal
    position blocks mirrored afterwards (the quadrature fills upper triangles). The 1 x 1 self
    kernels of the flat and diagonal forms are the second moments of the same calls."""
    form, stats = state.form, {"method": "quadrature"}
    cb = cross_batch(state)
    if form == "full":
        n1, n2, h, w = state.nngp.shape[:4]
        p = h * w
        c = _correlations(cb).reshape(n1, n2, p, p).transpose(0, 2, 1, 3).reshape(n1 * p, n2 * p)
        pp, dd, _, _ = _quadrature_matrix(act, np.ascontiguousarray(c), cb.vr.reshape(-1), cb.vc.reshape(-1),
                                          state.symmetric, True, stats)
        del c
        pp = np.ascontiguousarray(pp.reshape(n1, p, n2, p).transpose(0, 2, 1, 3))
        dd = np.ascontiguousarray(dd.reshape(n1, p, n2, p).transpose(0, 2, 1, 3))
        if state.symmetric:  # diagonal blocks: lower triangle from the upper one
            for x in (pp, dd):
                d = x[np.arange(n1), np.arange(n1)]
                x[np.arange(n1), np.arange(n1)] = np.triu(d) + np.transpose(np.triu(d, 1), (0, 2, 1))

        def on_self(s):
            out = np.zeros(s.shape)
            sb = self_batch(s, form)
            for b in range(sb.array.shape[0]):
                corr = np.zeros((p, p))
                _correlation_batch(sb.array[b : b + 1], sb.vr[b : b + 1], sb.vc[b : b + 1], TRIANGLE, 1, 1, 1, 1,
                                   corr[None])
                blk, _, _, _ = _quadrature_matrix(act, corr, sb.vr[b], sb.vc[b], True, False, stats)
                out.reshape(-1, p, p)[b] = np.triu(blk) + np.triu(blk, 1).T
            return out

        self1, self2 = _on_selves(state, on_self)
    else:
        c = _correlations(cb)
        pp, dd = np.zeros(c.shape), np.zeros(c.shape)
        m_rows, m_cols = np.empty(cb.vr.shape), np.empty(cb.vc.shape)
        for b in range(c.shape[0]):
            pp[b], dd[b], m_rows[b], m_cols[b] = _quadrature_matrix(act, c[b], cb.vr[b], cb.vc[b], state.symmetric,
                                                                    True, stats)
        self1 = m_rows.reshape(state.self1.shape)
        self2 = self1 if state.symmetric else m_cols.reshape(state.self2.shape)
    pp, dd = cb.like(pp), cb.like(dd)
    _multiply_batch(dd, cb.like(state.ntk), cb.mode, *cb.index, dd)
    ctx.stats.append(stats)
    return state.replace(nngp=pp.reshape(state.nngp.shape), ntk=dd.reshape(state.ntk.shape), self1=self1,
                         self2=self2)


# ---------------------------------------------------------------------- position maps
@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Which input positions each output position reads, per filter offset (see :func:`conv_taps`),
    and for size-preserving convolutions the per-axis masks of the separable passes."""

    valid: np.ndarray
    source: np.ndarray
    same_size: bool
    offsets: np.ndarray
    mask_h: np.ndarray
    mask_w: np.ndarray
    pt: int
    pl: int
    w: int
    out_shape: L.Shape

    def args(self) -> tuple:
        return (self.valid, self.source, self.same_size, self.offsets, self.mask_h, self.mask_w, self.pt, self.pl,
                self.w)


def _conv_geometry(layer: L.Conv, in_shape: L.Shape) -> ConvGeometry:
    (pt, _), (pl, _) = layer.padding_amounts(in_shape)
    out_shape = layer.out_shape(in_shape)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    h, w = in_shape[1:]
    ho, wo = out_shape[1:]
    valid, source = conv_taps(h, w, ho, wo, kh, kw, sh, sw, pt, pl)
    same_size = (ho, wo) == (h, w) and (sh, sw) == (1, 1)
    offsets = np.array([(dh - pt) * w + (dw - pl) for dh in range(kh) for dw in range(kw)], dtype=np.int64)
    q = np.arange(ho * wo)
    mask_h = np.array([((q // wo) + dh - pt >= 0) & ((q // wo) + dh - pt < h) for dh in range(kh)])
    mask_w = np.array([((q % wo) + dw - pl >= 0) & ((q % wo) + dw - pl < w) for dw in range(kw)])
    return ConvGeometry(valid, source, same_size, offsets, mask_h, mask_w, pt, pl, w, out_shape)


def _conv(layer: L.Conv, state: KernelState, ctx: Context) -> KernelState:
    alpha, beta, gamma, delta, eps = _weighted_coefficients(layer, state, ctx)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    inv = 1.0 / (kh * kw)
    if state.form == "diagonal":
        (pt, _), (pl, _) = layer.padding_amounts(state.shape)
        out_shape = layer.out_shape(state.shape)
        ho, wo = out_shape[1:]
        n1, n2 = state.nngp.shape[2:]
        nngp, ntk = ctx.buffer((ho, wo, n1, n2)), ctx.buffer((ho, wo, n1, n2))
        _conv_diagonal(state.nngp, state.ntk, True, state.symmetric, kh, kw, sh, sw, pt, pl, alpha, beta, gamma,
                       delta, eps, nngp, ntk)

        def on_self(s):
            out = np.zeros((ho, wo, s.shape[2], 1))
            _conv_diagonal(s, s, False, False, kh, kw, sh, sw, pt, pl, alpha, beta, 0.0, 0.0, 0.0, out, out)
            return out

    else:
        geom = _conv_geometry(layer, state.shape)
        out_shape = geom.out_shape
        ho, wo = out_shape[1:]
        po = ho * wo
        n1, n2 = state.nngp.shape[:2]
        nngp, ntk = ctx.buffer((n1, n2, ho, wo, ho, wo)), ctx.buffer((n1, n2, ho, wo, ho, wo))
        p_in = state.shape[1] * state.shape[2]
        _conv_blocks(state.nngp.reshape(-1, p_in, p_in), state.ntk.reshape(-1, p_in, p_in), True, state.symmetric,
                     max(n2, 1), *geom.args(), inv, alpha, beta, gamma, delta, eps, nngp.reshape(-1, po, po),
                     ntk.reshape(-1, po, po))

        def on_self(s):
            out = np.zeros((s.shape[0], 1, ho, wo, ho, wo))
            flat_out = out.reshape(-1, po, po)
            _conv_blocks(s.reshape(-1, p_in, p_in), s.reshape(-1, p_in, p_in), False, False, 1, *geom.args(), inv,
                         alpha, beta, 0.0, 0.0, 0.0, flat_out, flat_out)
            return out

    self1, self2 = _on_selves(state, on_self)
    return state.replace(nngp=nngp, ntk=ntk, self1=self1, self2=self2, shape=out_shape)


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

    def pool(a):
        return _pool_axes(_pool_axes(a, (2, 3), layer.window, layer.stride, hw), (4, 5), layer.window, layer.stride, hw)

    self1, self2 = _on_selves(state, pool)
    return state.replace(nngp=pool(state.nngp), ntk=pool(state.ntk), self1=self1, self2=self2, shape=out_shape)


def _to_flat(state: KernelState, reduce_cross, reduce_self, shape: L.Shape) -> KernelState:
    self1, self2 = _on_selves(state, reduce_self)
    return KernelState("flat", reduce_cross(state.nngp), reduce_cross(state.ntk), self1, self2, state.symmetric,
                       shape)


def _full_reduce(state: KernelState, shape: L.Shape, diagonal_only: bool) -> KernelState:
    """Mean over every block (GlobalAvgPool) or over its diagonal (Flatten) of a full-form state."""

    def cross(a):
        n1, m2, h, w = a.shape[:4]
        out = np.zeros((n1, m2))
        _block_reduce(a.reshape(n1 * m2, h * w, h * w), state.symmetric, m2, diagonal_only, out.reshape(-1))
        return out

    def self_mean(s):
        n, _, h, w = s.shape[:4]
        out = np.zeros((n, 1))
        _block_reduce(s.reshape(n, h * w, h * w), False, 1, diagonal_only, out.reshape(-1))
        return out

    return _to_flat(state, cross, self_mean, shape)


def _global_avg_pool(layer: L.GlobalAvgPool, state: KernelState, ctx: Context) -> KernelState:
    return _full_reduce(state, layer.out_shape(state.shape), diagonal_only=False)


def _flatten(layer: L.Flatten, state: KernelState, ctx: Context) -> KernelState:
    shape = layer.out_shape(state.shape)
    if state.form == "diagonal":
        return _to_flat(state, lambda a: a.mean(axis=(0, 1)), lambda s: s.mean(axis=(0, 1)).reshape(-1, 1), shape)
    return _full_reduce(state, shape, diagonal_only=True)


def _layer_norm(layer: L.LayerNorm, state: KernelState, ctx: Context) -> KernelState:
    out_k, out_ntk = ctx.buffer(state.nngp.shape), ctx.buffer(state.ntk.shape)
    cb = cross_batch(state)
    _normalise_batch(cb.array, cb.like(state.ntk), cb.vr, cb.vc, cb.mode, *cb.index, True, cb.like(out_k),
                     cb.like(out_ntk))

    def on_self(s):
        out = np.zeros(s.shape)
        sb = self_batch(s, state.form)
        _normalise_batch(sb.array, sb.array, sb.vr, sb.vc, sb.mode, *sb.index, False, sb.like(out), sb.array)
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


# ---------------------------------------------------------------------- fused CNN path
#: Op codes of the fused chunk program (``_kernel_kinds``).
_CONV, _ACT = 0, 1
#: Input pairs per chunk of the fused path: the pair index is the innermost (contiguous) axis of
#: its buffers, (H, H', Wp, Wp, CHUNK) for positions (h, w) and (h', w'). Eight pairs keep a
#: chunk's four buffers (1.6 MiB for 8x8 images padded to 10 columns) in a core's L2 cache; 4
#: was slower, 16 and 32 no different within this host's noise (bench/README.md).
CHUNK = 8


@njit(cache=True, inline="always", error_model="numpy")
def _add_run(dst, src):
    """dst += src, elementwise on 1-D runs (slices, so that the loop vectorises)."""
    for e in range(dst.size):
        dst[e] += src[e]


@njit(cache=True, inline="always", error_model="numpy")
def _copy_run(dst, src):
    """dst[:] = src on 1-D runs (an explicit loop: numba's slice assignment is several times slower)."""
    for e in range(dst.size):
        dst[e] = src[e]


@njit(cache=True, inline="always", error_model="numpy")
def _fill_run(dst, value):
    for e in range(dst.size):
        dst[e] = value


@njit(cache=True, inline="always", error_model="numpy")
def _run_at(h1, h2, w1, h, wp, pl, c):
    """Offset of the run of positions (h1, w1), (h2, 0..) in a chunk buffer of layout
    (h, h, wp, wp, c): rows of pitch wp with the image at column offset pl on both w axes."""
    return (((h1 * h + h2) * wp + w1 + pl) * wp + pl) * c


@njit(cache=True, inline="always", error_model="numpy")
def _sum_taps(out, src, offs, ntaps, n):
    """out[:n] = sum over the first ntaps offsets of src[off : off + n] (0 when none).

    Three terms per sweep (out = a + b + c, then out += d + e + f, ...): a third of the memory
    traffic of a zero-and-add loop for 3-wide filters. Straight-line cases, so that each loop
    vectorises."""
    out = out[:n]
    if ntaps == 0:
        _fill_run(out, 0.0)
    for g in range(0, ntaps, 3):
        left = ntaps - g
        a = src[offs[g] : offs[g] + n]
        if left == 1:
            if g == 0:
                _copy_run(out, a)
            else:
                _add_run(out, a)
            continue
        b = src[offs[g + 1] : offs[g + 1] + n]
        if left == 2:
            if g == 0:
                for e in range(n):
                    out[e] = a[e] + b[e]
            else:
                for e in range(n):
                    out[e] += a[e] + b[e]
            continue
        d = src[offs[g + 2] : offs[g + 2] + n]
        if g == 0:
            for e in range(n):
                out[e] = a[e] + b[e] + d[e]
        else:
            for e in range(n):
                out[e] += a[e] + b[e] + d[e]


@njit(cache=True, inline="always", error_model="numpy")
def _conv_run(k, t, ok, ot, offs, ntaps, o, n, t_zero, fp):
    """One run of a Conv: S = the sum over the taps (offsets offs[:ntaps] into k and t) of n
    entries, written at o: ok = alpha S(k) + beta, ot = gamma S(k) + delta + eps S(t). Nine, six
    and three taps (a 3x3 filter at inner and border rows) are one straight-line sweep, other
    counts three taps per sweep."""
    rk, rt = ok[o : o + n], ot[o : o + n]
    alpha, beta, gamma, delta, eps = fp[0], fp[1], fp[2], fp[3], fp[4]
    if ntaps == 9 and not t_zero:
        k0, k1, k2 = k[offs[0] : offs[0] + n], k[offs[1] : offs[1] + n], k[offs[2] : offs[2] + n]
        k3, k4, k5 = k[offs[3] : offs[3] + n], k[offs[4] : offs[4] + n], k[offs[5] : offs[5] + n]
        k6, k7, k8 = k[offs[6] : offs[6] + n], k[offs[7] : offs[7] + n], k[offs[8] : offs[8] + n]
        t0, t1, t2 = t[offs[0] : offs[0] + n], t[offs[1] : offs[1] + n], t[offs[2] : offs[2] + n]
        t3, t4, t5 = t[offs[3] : offs[3] + n], t[offs[4] : offs[4] + n], t[offs[5] : offs[5] + n]
        t6, t7, t8 = t[offs[6] : offs[6] + n], t[offs[7] : offs[7] + n], t[offs[8] : offs[8] + n]
        for e in range(n):
            s = (k0[e] + k1[e] + k2[e]) + (k3[e] + k4[e] + k5[e]) + (k6[e] + k7[e] + k8[e])
            st = (t0[e] + t1[e] + t2[e]) + (t3[e] + t4[e] + t5[e]) + (t6[e] + t7[e] + t8[e])
            rk[e] = alpha * s + beta
            rt[e] = gamma * s + delta + eps * st
        return
    if ntaps == 6 and not t_zero:
        k0, k1, k2 = k[offs[0] : offs[0] + n], k[offs[1] : offs[1] + n], k[offs[2] : offs[2] + n]
        k3, k4, k5 = k[offs[3] : offs[3] + n], k[offs[4] : offs[4] + n], k[offs[5] : offs[5] + n]
        t0, t1, t2 = t[offs[0] : offs[0] + n], t[offs[1] : offs[1] + n], t[offs[2] : offs[2] + n]
        t3, t4, t5 = t[offs[3] : offs[3] + n], t[offs[4] : offs[4] + n], t[offs[5] : offs[5] + n]
        for e in range(n):
            s = (k0[e] + k1[e] + k2[e]) + (k3[e] + k4[e] + k5[e])
            st = (t0[e] + t1[e] + t2[e]) + (t3[e] + t4[e] + t5[e])
            rk[e] = alpha * s + beta
            rt[e] = gamma * s + delta + eps * st
        return
    _sum_taps(rk, k, offs, ntaps, n)
    if t_zero:
        for e in range(n):
            s = rk[e]
            rk[e] = alpha * s + beta
            rt[e] = gamma * s + delta
    else:
        _sum_taps(rt, t, offs, ntaps, n)
        for e in range(n):
            s = rk[e]
            rk[e] = alpha * s + beta
            rt[e] = gamma * s + delta + eps * rt[e]


@njit(cache=True, error_model="numpy")
def chunk_conv(op, fp, h, k, t, ok, ot, t_zero, c):
    """A Conv layer on one chunk: (k, t) in the layout of its input (pitch wp, offset pl, zero
    border) -> (ok, ot) in the layout of its output (pitch wpo, offset plo, whose border the
    caller has zeroed). Each output entry is the sum over the filter offsets (a, b) of
    k[h sh - pt + a, h' sh - pt + a, w sw + b, w' sw + b] (rows outside the image skipped,
    columns read through the zero border), then nngp -> alpha S(k) + beta and
    ntk -> gamma S(k) + delta + eps S(t) (alpha, gamma, eps carry the 1 / (kh kw) of the mean).
    ``t_zero``: t is still all zero (its sums are skipped).

    With stride 1 and equal pitches an output (h, h') block is one run over all its rows (the
    input is then at a constant offset from the output for each tap); the columns between rows
    get garbage there and are zeroed afterwards."""
    ho, wo, kh, kw, sh, sw, pt = op[1], op[2], op[3], op[4], op[5], op[6], op[7]
    wp, wpo, plo = op[9], op[10], op[11]
    offs = np.empty(kh * kw, np.int64)
    rows = np.empty(kh, np.int64)
    long_run = sw == 1 and wpo == wp
    for h1 in range(ho):
        for h2 in range(ho):
            nr = 0
            for a in range(kh):
                r1, r2 = h1 * sh - pt + a, h2 * sh - pt + a
                if 0 <= r1 < h and 0 <= r2 < h:
                    rows[nr] = (r1 * h + r2) * wp * wp * c
                    nr += 1
            ntaps = nr * kw
            if long_run:
                for a in range(nr):
                    for b in range(kw):
                        offs[a * kw + b] = rows[a] + b * (wp + 1) * c
                o = _run_at(h1, h2, 0, ho, wpo, plo, c)
                _conv_run(k, t, ok, ot, offs, ntaps, o, ((wo - 1) * wpo + wo) * c, t_zero, fp)
                gap = (wpo - wo) * c
                for w1 in range(wo - 1):
                    g = o + (w1 * wpo + wo) * c
                    _fill_run(ok[g : g + gap], 0.0)
                    _fill_run(ot[g : g + gap], 0.0)
            elif sw == 1:
                for w1 in range(wo):
                    for a in range(nr):
                        for b in range(kw):
                            offs[a * kw + b] = rows[a] + ((w1 + b) * wp + b) * c
                    _conv_run(k, t, ok, ot, offs, ntaps, _run_at(h1, h2, w1, ho, wpo, plo, c), wo * c, t_zero, fp)
            else:
                for w1 in range(wo):
                    for w2 in range(wo):
                        for a in range(nr):
                            for b in range(kw):
                                offs[a * kw + b] = rows[a] + ((w1 * sw + b) * wp + w2 * sw + b) * c
                        _conv_run(k, t, ok, ot, offs, ntaps, _run_at(h1, h2, w1, ho, wpo, plo, c) + w2 * c, c,
                                  t_zero, fp)


@njit(cache=True, error_model="numpy")
def chunk_input(z1, z2, ii, jj, h, w, wp, pl, k, rep):
    """k[h, h', w, w', c] = z1[ii[c], (h, w)] . z2[jj[c], (h', w')] / channels, for one chunk, in
    the layout (h, h, wp, wp, c) at column offset pl (z (n, H W, channels); rep scratch of W c
    entries; the border of k is left as it is)."""
    c, cin = ii.size, z1.shape[2]
    run = w * c
    for h1 in range(h):
        for w1 in range(w):
            p1 = h1 * w + w1
            for h2 in range(h):
                o = _run_at(h1, h2, w1, h, wp, pl, c)
                out = k[o : o + run]
                _fill_run(out, 0.0)
                for a in range(cin):
                    for w2 in range(w):
                        for b in range(c):
                            rep[w2 * c + b] = z1[ii[b], p1, a] * z2[jj[b], h2 * w + w2, a]
                    _add_run(out, rep[:run])
                for e in range(run):
                    out[e] = out[e] / cin


@njit(cache=True, error_model="numpy")
def chunk_variances(var1, var2, ii, jj, p, vr, vc):
    """vr[q, c] = var1[ii[c], q] and vc[q, c] = var2[jj[c], q] for the p positions."""
    c = ii.size
    for q in range(p):
        for b in range(c):
            vr[q * c + b] = var1[ii[b], q]
            vc[q * c + b] = var2[jj[b], q]


@njit(cache=True, error_model="numpy")
def chunk_readout(k, t, size, p2, m, ii, jj, n2, out_k, out_t, acc, acct):
    """out[ii[c] n2 + jj[c]] = the mean over the p2 position pairs, for the chunk's first m pairs:
    the sum over the first ``size`` entries of the buffers (their borders are zero)."""
    c = ii.size
    acc[:] = 0.0
    acct[:] = 0.0
    for e in range(size // c):
        _add_run(acc, k[e * c : (e + 1) * c])
        _add_run(acct, t[e * c : (e + 1) * c])
    for b in range(m):
        out_k[ii[b] * n2 + jj[b]] = acc[b] / p2
        out_t[ii[b] * n2 + jj[b]] = acct[b] / p2


def fusable(layers: list[L.Layer]) -> int:
    """Length of the leading run of Conv and closed-form Activation layers of one kind (the fused part)."""
    n, kinds = 0, set()
    for layer in layers:
        if isinstance(layer, L.Activation) and layer.function.has_closed_form:
            kinds.add(_closed_kind(layer.function))
            if len(kinds) > 1:
                break
        elif not isinstance(layer, L.Conv):
            break
        n += 1
    return n


def fused_prefix(layers: list[L.Layer], x1: np.ndarray, x2: np.ndarray | None, ctx: Context,
                 readout_after: list[int]) -> list:
    """Run the leading Conv / closed-form Activation layers of ``layers`` and a GlobalAvgPool on
    image inputs, chunk by chunk in cache, without materialising any full-form cross kernel.

    ``readout_after`` lists op positions after which the global average pool is taken (the last
    one must be the end of the fused run). The self kernels go through the ordinary maps first,
    which gives every nonlinearity's variances. Returns one flat state (after GlobalAvgPool) per
    readout position.
    """
    n = len(layers)
    state = input_state(x1, x2, "full", cross=False)
    # one row per layer: Conv (code, out_h, out_w, k_h, k_w, s_h, s_w, pad_top, pad_left, Wp of its
    # input); Activation (code, ..., index of its variances in var1/var2 in column 9); both with
    # the layout of their output (Wp, pad_left) in columns 10 and 11
    ops = np.zeros((n, 12), dtype=np.int64)
    fparams = np.zeros((n, 5))
    kind = 0
    var1, var2, selves = [], [], []
    shapes = [state.shape]
    s = state
    for r, layer in enumerate(layers):
        if isinstance(layer, L.Conv):
            out_shape = layer.out_shape(s.shape)
            (pt, _), (pl, _) = layer.padding_amounts(s.shape)
            alpha, beta, gamma, delta, eps = _weighted_coefficients(layer, s, ctx)
            inv = 1.0 / math.prod(layer.kernel_size)
            fparams[r] = (alpha * inv, beta, gamma * inv, delta, eps * inv)
            # the padded width Wp: every column the filter reads (up to (out_w - 1) s_w + k_w) and the
            # image at column offset pl
            wp = max((out_shape[2] - 1) * layer.stride[1] + layer.kernel_size[1], s.shape[2] + pl)
            ops[r, :10] = (_CONV, *out_shape[1:], *layer.kernel_size, *layer.stride, pt, pl, wp)
        else:
            act = layer.function
            kind = _closed_kind(act)
            fparams[r, 0] = act.param_value
            ops[r, 0], ops[r, 9] = _ACT, len(var1)
            var1.append(variances(s.self1, "full").reshape(s.self1.shape[0], -1))
            var2.append(variances(s.self2, "full").reshape(s.self2.shape[0], -1))
        s = apply(layer, s, ctx)
        shapes.append(s.shape)
        if r + 1 in readout_after:
            selves.append(s)
    # the layout of the state before op r (r = n: the end): that of the next Conv's input; with no
    # Conv ahead, the layout before it when the image still fits there (so that a stride-1 Conv
    # keeps its pitch), else unpadded
    layouts, ahead = [None] * (n + 1), None
    for r in range(n - 1, -1, -1):
        if ops[r, 0] == _CONV:
            ahead = (int(ops[r, 9]), int(ops[r, 8]))
        layouts[r] = ahead
    tail = layouts.index(None)  # the states after the last Conv (all of them with none): one width
    before, w_end = (layouts[tail - 1] if tail > 0 else None), shapes[n][2]
    fits = before is not None and before[1] + w_end <= before[0]
    layouts[tail:] = [before if fits else (w_end, 0)] * (n + 1 - tail)
    for r in range(n):
        ops[r, 10:12] = layouts[r + 1]
    padded = max(shape[1] ** 2 * lay[0] ** 2 for shape, lay in zip(shapes, layouts))
    _, h, w = state.shape
    p = h * w

    def stack(vs, n_in):
        out = np.zeros((max(len(vs), 1), n_in, p))
        for a, v in enumerate(vs):
            out[a, :, : v.shape[1]] = v
        return out

    def positions_last(x):
        return np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], p).transpose(0, 2, 1))  # (n, P, channels)

    n1 = x1.shape[0]
    z1 = positions_last(x1)
    z2 = z1 if x2 is None else positions_last(x2)
    n2 = z2.shape[0]
    i, j = np.triu_indices(n1) if x2 is None else np.indices((n1, n2)).reshape(2, -1)
    pairs = np.stack([i, j, (i == j) & (x2 is None)], axis=1).astype(np.int64)
    readouts = np.full(n, -1, dtype=np.int64)
    for slot, r in enumerate(readout_after):
        readouts[r - 1] = slot
    out_k = np.zeros((len(readout_after), n1 * n2))
    out_t = np.zeros((len(readout_after), n1 * n2))
    fused_chunks = _kernel_kinds.for_kind(kind).fused_chunks
    fused_chunks(ops, fparams, stack(var1, n1), stack(var2, n2), z1, z2, pairs, h, w, *layouts[0], padded, n2,
                 readouts, out_k, out_t, numba.get_num_threads())
    ctx.stats.extend({"method": "closed_form_fused_blocks"} for layer in layers if isinstance(layer, L.Activation))
    flats = []
    for slot, sself in enumerate(selves):
        gap = _global_avg_pool(L.GlobalAvgPool(), sself, ctx)
        flats.append(gap.replace(nngp=out_k[slot].reshape(n1, n2), ntk=out_t[slot].reshape(n1, n2),
                                 symmetric=x2 is None))
    return flats
