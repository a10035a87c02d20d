"""Analytic (infinite-width) kernels for the recipes.

:func:`analytic_kernels` returns ``ntktheory.kernels(...)`` when ntktheory provides it; until then
(and as an independent check) it evaluates the ReLU recursion of DESIGN.md in closed form
(Cho & Saul 2009 arc-cosine kernels), in both parameterisations. Only ReLU is covered by the
fallback; other activations need ``ntktheory.kernels``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["analytic_kernels", "relu_kernels"]


def relu_kernels(
    x1: np.ndarray,
    x2: np.ndarray | None = None,
    *,
    depth: int,
    sigma_w: float,
    sigma_b: float,
    parameterization: str = "ntk",
    width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""NNGP and NTK of a ReLU network of ``depth`` hidden layers (DESIGN.md recursion, closed form).

    E[phi(u) phi(v)] = sqrt(q1 q2) / (2 pi) (sin theta + (pi - theta) cos theta) and
    E[phi'(u) phi'(v)] = (pi - theta) / (2 pi), theta the angle between u and v.

    Returns
    -------
    tuple
        (nngp, ntk) of the readout, each (N1, N2).

    Examples
    --------
    >>> x = np.array([[1.0, 1.0], [1.0, 1.0]]) * 1.0  # |x|^2 = d, identical points
    >>> nngp, ntk = relu_kernels(x, depth=2, sigma_w=math.sqrt(2.0), sigma_b=0.0)
    >>> np.round(np.diag(ntk), 12).tolist()  # Theta(x, x) = 2 (L + 1) at sigma_w^2 = 2
    [6.0, 6.0]
    """
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"`parameterization` must be 'ntk' or 'standard'; got {parameterization!r}.")
    if parameterization == "standard" and width is None:
        raise ValueError("`width` is required for parameterization='standard'.")
    a = np.asarray(x1, dtype=np.float64)
    b = a if x2 is None else np.asarray(x2, dtype=np.float64)
    d = a.shape[1]
    sw2, sb2 = sigma_w**2, sigma_b**2
    dot = a @ b.T / d
    qa = np.sum(a * a, axis=1) / d
    qb = np.sum(b * b, axis=1) / d
    s12, s1, s2 = sw2 * dot + sb2, sw2 * qa + sb2, sw2 * qb + sb2
    if parameterization == "ntk":
        t12 = s12.copy()
    else:
        t12 = a @ b.T + 1.0
    for _ in range(depth):
        root = np.sqrt(np.outer(s1, s2))
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = np.arctan2(np.sqrt(np.clip(np.outer(s1, s2) - s12**2, 0.0, None)), s12)
        pp = root / (2 * math.pi) * (np.sin(theta) + (math.pi - theta) * np.cos(theta))
        dd = (math.pi - theta) / (2 * math.pi)
        s12 = sw2 * pp + sb2
        s1, s2 = sw2 * s1 / 2 + sb2, sw2 * s2 / 2 + sb2
        if parameterization == "ntk":
            t12 = s12 + sw2 * dd * t12
        else:
            t12 = width * pp + 1.0 + sw2 * dd * t12
    return s12, t12


def analytic_kernels(
    x1: np.ndarray,
    x2: np.ndarray | None = None,
    *,
    activation: str,
    depth: int,
    sigma_w: float,
    sigma_b: float,
    parameterization: str = "ntk",
    width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(nngp, ntk) from ``ntktheory.kernels`` when available, else :func:`relu_kernels` for ReLU."""
    import ntktheory

    kernels = getattr(ntktheory, "kernels", None)
    if kernels is not None:
        kw = {"width": width} if parameterization == "standard" else {}
        ds = kernels(x1, x2, activation=activation, depth=depth, sigma_w=sigma_w, sigma_b=sigma_b,
                     parameterization=parameterization, **kw)
        return np.asarray(ds["nngp"].values, dtype=np.float64), np.asarray(ds["ntk"].values, dtype=np.float64)
    if activation != "relu":
        raise NotImplementedError(
            f"analytic kernels for activation {activation!r} need ntktheory.kernels; only 'relu' has a fallback."
        )
    return relu_kernels(x1, x2, depth=depth, sigma_w=sigma_w, sigma_b=sigma_b,
                        parameterization=parameterization, width=width)
