"""A plain numpy implementation of the convolutional kernel recursion, written independently.

The full spatial covariance of every pair of inputs, as dense arrays K[i, j, h, w, h', w'], with
convolutions as explicit sums over zero-padded shifts (np.pad), closed-form activations from the
textbook formulas (arccos for relu, arcsin for erf) and no symmetry, chunking or triangles. It
serves as the independent reference of tests/ntktheory/test_architectures.py and as the baseline
of bench/bench_architectures.py. Layers are given as the dicts of
data/reference/architecture_cases.json.
"""

from __future__ import annotations

import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _expectations(name, q1, q2, q12):
    """E[phi(u) phi(v)], E[phi'(u) phi'(v)] by the textbook closed forms."""
    if name == "relu":
        c = np.clip(q12 / np.sqrt(q1 * q2), -1.0, 1.0)
        theta = np.arccos(c)
        pp = np.sqrt(q1 * q2) / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * c)
        return pp, (np.pi - theta) / (2 * np.pi)
    if name == "erf":
        p = (1 + 2 * q1) * (1 + 2 * q2)
        return 2 / np.pi * np.arcsin(2 * q12 / np.sqrt(p)), 4 / np.pi / np.sqrt(p - 4 * q12**2)
    if name == "identity":
        return q12, np.ones_like(q12)
    raise ValueError(name)


class Kernel:
    """K[i, j, h, w, h', w'] for the cross kernel, plus the two self kernels S[i, h, w, h', w']."""

    def __init__(self, nngp, ntk, s1, s2, channels):
        self.nngp, self.ntk, self.s1, self.s2, self.channels = nngp, ntk, s1, s2, channels

    @classmethod
    def inputs(cls, x1, x2):
        c = x1.shape[1]
        if x1.ndim == 2:
            return cls(x1 @ x2.T / c, np.zeros((len(x1), len(x2))), np.einsum("ic,ic->i", x1, x1) / c,
                       np.einsum("ic,ic->i", x2, x2) / c, c)
        nngp = np.einsum("iahw,jabv->ijhwbv", x1, x2) / c
        s1 = np.einsum("iahw,iabv->ihwbv", x1, x1) / c
        s2 = np.einsum("iahw,iabv->ihwbv", x2, x2) / c
        return cls(nngp, np.zeros_like(nngp), s1, s2, c)

    @property
    def spatial(self):
        return self.nngp.ndim == 6


def _var(s):
    """Per-position variances of a self kernel: (n, h, w), or (n,) for flat."""
    if s.ndim == 1:
        return s
    n, h, w = s.shape[:3]
    return np.einsum("ipp->ip", s.reshape(n, h * w, h * w)).reshape(n, h, w)


def _conv_mean(a, kernel, stride, padding, batch):
    """mean over filter offsets d of a[..., p + d, ..., p' + d], zero padding; ``batch`` leading axes."""
    (kh, kw), (sh, sw) = kernel, stride
    h, w = a.shape[batch], a.shape[batch + 1]
    if padding == "same":
        (pt, pb), (pl, pr) = _same(h, kh, sh), _same(w, kw, sw)
    else:
        pt = pb = pl = pr = 0
    pad = [(0, 0)] * batch + [(pt, pb), (pl, pr), (pt, pb), (pl, pr)]
    ap = np.pad(a, pad)
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    out = 0.0
    for dh in range(kh):
        for dw in range(kw):
            idx = (Ellipsis, slice(dh, dh + (ho - 1) * sh + 1, sh), slice(dw, dw + (wo - 1) * sw + 1, sw),
                   slice(dh, dh + (ho - 1) * sh + 1, sh), slice(dw, dw + (wo - 1) * sw + 1, sw))
            out = out + ap[idx]
    return out / (kh * kw)


def _pool(a, window, stride, batch):
    (wh, ww), (sh, sw) = window, stride
    h, w = a.shape[batch], a.shape[batch + 1]
    ho, wo = (h - wh) // sh + 1, (w - ww) // sw + 1
    out = 0.0
    for a1 in range(wh):
        for b1 in range(ww):
            for a2 in range(wh):
                for b2 in range(ww):
                    idx = (Ellipsis, slice(a1, a1 + (ho - 1) * sh + 1, sh), slice(b1, b1 + (wo - 1) * sw + 1, sw),
                           slice(a2, a2 + (ho - 1) * sh + 1, sh), slice(b2, b2 + (wo - 1) * sw + 1, sw))
                    out = out + a[idx]
    return out / (wh * ww) ** 2


def apply(layers, k: Kernel, parameterization="ntk") -> Kernel:
    for d in layers:
        k = _apply_one(d, k, parameterization)
    return k


def _apply_one(d, k, parameterization):
    t = d["type"]
    if t in ("conv", "dense"):
        sw2, sb2 = d["sigma_w"] ** 2, d["sigma_b"] ** 2
        if t == "conv":
            kern, stride = _pair(d["kernel_size"]), _pair(d.get("stride", 1))
            pad = d.get("padding", "same")

            def lin(a, batch):
                return _conv_mean(a, kern, stride, pad, batch)

            fan_in = k.channels * kern[0] * kern[1]
            channels = d["channels"]
        else:
            def lin(a, batch):
                return a

            fan_in = k.channels
            channels = d["features"]
        sk = lin(k.nngp, 2)
        nngp = sw2 * sk + sb2
        if parameterization == "ntk":
            ntk = nngp + sw2 * lin(k.ntk, 2)
        else:
            ntk = fan_in * sk + 1.0 + sw2 * lin(k.ntk, 2)
        return Kernel(nngp, ntk, sw2 * lin(k.s1, 1) + sb2, sw2 * lin(k.s2, 1) + sb2, channels)
    if t == "act":
        v1, v2 = _var(k.s1), _var(k.s2)
        if k.spatial:
            q1 = v1[:, None, :, :, None, None]
            q2 = v2[None, :, None, None, :, :]
            s1q = (v1[:, :, :, None, None], v1[:, None, None, :, :])
            s2q = (v2[:, :, :, None, None], v2[:, None, None, :, :])
        else:
            q1, q2 = v1[:, None], v2[None, :]
            s1q, s2q = (v1, v1), (v2, v2)
        pp, dd = _expectations(d["name"], q1, q2, k.nngp)
        p1, _ = _expectations(d["name"], *s1q, k.s1)
        p2, _ = _expectations(d["name"], *s2q, k.s2)
        return Kernel(pp, dd * k.ntk, p1, p2, k.channels)
    if t == "avgpool":
        win = _pair(d["window"])
        st = _pair(d.get("stride", d["window"]))
        return Kernel(_pool(k.nngp, win, st, 2), _pool(k.ntk, win, st, 2), _pool(k.s1, win, st, 1),
                      _pool(k.s2, win, st, 1), k.channels)
    if t == "gap":
        return Kernel(k.nngp.mean(axis=(2, 3, 4, 5)), k.ntk.mean(axis=(2, 3, 4, 5)), k.s1.mean(axis=(1, 2, 3, 4)),
                      k.s2.mean(axis=(1, 2, 3, 4)), k.channels)
    if t == "flatten":
        def diag(a, batch):
            sh = a.shape
            m = a.reshape(*sh[:batch], sh[batch] * sh[batch + 1], -1)
            return np.einsum("...pp->...", m) / m.shape[-1]

        h, w = k.nngp.shape[2:4]
        return Kernel(diag(k.nngp, 2), diag(k.ntk, 2), diag(k.s1, 1), diag(k.s2, 1), k.channels * h * w)
    if t == "layernorm":
        v1, v2 = _var(k.s1), _var(k.s2)
        if k.spatial:
            norm = np.sqrt(v1[:, None, :, :, None, None] * v2[None, :, None, None, :, :])
            n1 = np.sqrt(v1[:, :, :, None, None] * v1[:, None, None, :, :])
            n2 = np.sqrt(v2[:, :, :, None, None] * v2[:, None, None, :, :])
        else:
            norm, n1, n2 = np.sqrt(v1[:, None] * v2[None, :]), v1, v2
        return Kernel(k.nngp / norm, k.ntk / norm, k.s1 / n1, k.s2 / n2, k.channels)
    if t == "residual":
        b = apply(d["branch"], k, parameterization)
        return Kernel(b.nngp + k.nngp, b.ntk + k.ntk, b.s1 + k.s1, b.s2 + k.s2, k.channels)
    raise ValueError(t)


def kernels(layers, x1, x2=None, parameterization="ntk"):
    """(nngp, ntk) of the network's flat output for (x1, x2) (x2 None: x1)."""
    x2 = x1 if x2 is None else x2
    out = apply(layers, Kernel.inputs(x1, x2), parameterization)
    return out.nngp, out.ntk


__all__ = ["kernels"]

