"""Tolerances of the top-level tests (tests/test_*.py): one table keyed by (dtype, quantity), read
with ``tol``, the same shape as tests/<package>/tolerances_<package>.py.

Every entry is ``(value, why)``: the value and the reason for it. Values are relative to the
kernel's largest entry unless the reason says otherwise. The module name is unique across the test
folders (pytest's rootdir import puts each on sys.path, so equal names would clash).
"""

from __future__ import annotations

FLOAT64 = "float64"

TOLERANCES: dict[tuple[str, str], tuple[float, str]] = {
    (FLOAT64, "symmetry"): (1e-13, "relative to max |K|: K(x, x') vs K(x', x) and a permutation of the inputs: "
                                   "the same recursion with the pair's roles swapped, rounding of up to 3 layers."),
    (FLOAT64, "permutation"): (1e-12, "relative: kernels of permuted inputs vs the permuted kernel (entries near "
                                      "0 are covered by the symmetry bound above, absolute)."),
    (FLOAT64, "psd"): (1e-10, "relative to max |K|: the smallest eigenvalue of the symmetrised kernel of up to a "
                              "few dozen hypothesis-drawn points (rounding of an eigensolve near rank deficiency)."),
    (FLOAT64, "relu_homogeneity"): (1e-8, "relative, and absolute relative to max |K|: antipodal points: the step "
                                          "kernel (pi - theta) / (2 pi) has theta = pi - sqrt(2 delta) at c = -1 + "
                                          "delta, so rounding the scaled inputs (delta ~ 1e-16) moves it by up to "
                                          "sqrt(4.4e-16) / (2 pi) ~ 3.4e-9 of its range."),
}


def tol(quantity: str, dtype: str = FLOAT64) -> float:
    """The tolerance of ``quantity`` for ``dtype`` (its reason: ``TOLERANCES[dtype, quantity][1]``)."""
    return TOLERANCES[dtype, quantity][0]
