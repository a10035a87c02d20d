"""Tolerances of the kernel and quadrature tests, in one place (float64 throughout).

Errors of expectations are measured relative to the Cauchy-Schwarz scale
sqrt(E[f(u)^2] E[g(v)^2]) (odd products can have E ~ 0, where a plain relative error is
meaningless); kernel entries relative to max |K|.

| key                | value  | why                                                                  |
| ------------------ | ------ | -------------------------------------------------------------------- |
| closed_vs_quad     | 1e-12  | both sides are ~1e-14 accurate (rigorous series bound 1e-13, graded  |
|                    |        | 16-point panels exact to ~1e-16 each); 100x margin for rounding.     |
| quad_vs_scipy      | 1e-11  | scipy's nested adaptive quad at epsrel 1e-13/1e-12 is itself good to |
|                    |        | ~1e-12 only (roundoff warnings at q = 100); the contract is 1e-10.   |
| polynomial         | 1e-12  | Isserlis moments are exact; the rule integrates them to rounding.    |
| reference_values   | 1e-10  | THEORY.md values are given to 12-13 digits.                          |
| kernel_paths       | 1e-11  | two numerical paths (closed form / series / generic closed form)     |
|                    |        | through 3-5 layers; errors of ~1e-13 per layer compound mildly.      |
| exact_identity     | 1e-12  | algebraic identities (standard vs ntk, all_depths, cross blocks).    |
| psd                | 1e-10  | smallest eigenvalue >= -1e-10 max eigenvalue (rounding of N=60).     |
| mc_standard_errors | 4.0    | Monte Carlo: |mean - theory| <= 4 SE + 2/width relative (the O(1/n) |
|                    |        | finite-width bias); 4 SE fail with prob. 6e-5 per entry.             |
| predict_nt         | 1e-9   | ntktheory.predict vs neural-tangents' predict (max |a-b| / max |b|   |
|                    |        | per array); measured <= 1e-14 on the well-conditioned reference      |
|                    |        | cases; the issue's contract is 1e-7.                                 |
| predict_exact      | 1e-12  | closed forms (one point, diagonal kernels), t = 0, time arrays vs    |
|                    |        | single times, marginal vs full covariance: the same arithmetic.      |
| predict_reference  | 1e-10  | against a separately written reference (scipy.linalg.expm / explicit |
|                    |        | gradient-descent iteration) on kernels with condition number ~1e2-1e3|
|                    |        | (expm's own error is ~1e-13 relative times the condition number).    |
"""

CLOSED_VS_QUAD = 1e-12
QUAD_VS_SCIPY = 1e-11
POLYNOMIAL = 1e-12
REFERENCE_VALUES = 1e-10
KERNEL_PATHS = 1e-11
EXACT_IDENTITY = 1e-12
PSD = 1e-10
MC_STANDARD_ERRORS = 4.0
PREDICT_NT = 1e-9
PREDICT_EXACT = 1e-12
PREDICT_REFERENCE = 1e-10
