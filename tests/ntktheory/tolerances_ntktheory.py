"""Tolerances of the ntktheory tests: one table keyed by (dtype, quantity), read with ``tol``.

Every entry is ``(value, why)``: the value and the reason for it (the reference's own accuracy,
the rounding of the arithmetic compared, or a Monte Carlo error). Test files write
``tol("closed_vs_quad")`` instead of a literal, so each tolerance is stated and explained once.
Values are relative unless the reason says otherwise.

Errors of expectations are measured relative to the Cauchy-Schwarz scale
sqrt(E[f(u)^2] E[g(v)^2]) (odd products can have E ~ 0, where a plain relative error is
meaningless); kernel entries relative to max |K|.

The module name is unique across the test packages (tests/<package>/tolerances_<package>.py):
pytest's rootdir import puts each test folder on sys.path, so equal names would clash.
"""

from __future__ import annotations

FLOAT64 = "float64"

TOLERANCES: dict[tuple[str, str], tuple[float, str]] = {
    # -- expectations and quadrature -------------------------------------------------------------
    (FLOAT64, "atan2_ulps"): (2.0, "in units of eps, relative: the branch-free atan2's polynomial is exact to "
                                   "3e-17 on the reduced interval, and the reduction (one division, one "
                                   "subtraction of pi/4 or from pi/2 or pi) adds ~1 ulp."),
    (FLOAT64, "closed_vs_quad"): (1e-12, "both sides are ~1e-14 accurate (rigorous series bound 1e-13, graded "
                                         "16-point panels exact to ~1e-16 each); 100x margin for rounding."),
    (FLOAT64, "quad_vs_scipy"): (1e-11, "scipy's nested adaptive quad at epsrel 1e-13/1e-12 is itself good to "
                                        "~1e-12 only (roundoff warnings at q = 100); the contract is 1e-10."),
    (FLOAT64, "gauss_vs_scipy"): (1e-12, "univariate rule vs scipy.integrate.quad at epsrel 1e-13 with breakpoints "
                                         "at the activation's features (itself good to ~1e-13), relative to the "
                                         "Cauchy-Schwarz scale."),
    (FLOAT64, "polynomial"): (1e-12, "Isserlis moments are exact; the bivariate rule integrates them to rounding."),
    (FLOAT64, "gauss_polynomial"): (1e-13, "polynomial moments (Gaussian powers, Legendre monomials up to degree 30, "
                                           "a kink at a breakpoint) are exact in the univariate rule up to rounding "
                                           "of a few hundred terms."),
    (FLOAT64, "quadrature_paths"): (1e-13, "absolute, entries O(1): two paths through the same rule (row series vs "
                                           "per-element series, tiled vs untiled, q = 0 vs univariate, cross vs "
                                           "symmetric) differ by summation order only."),
    (FLOAT64, "quadrature_fallback"): (1e-12, "absolute, entries O(1): the matrix paths include near-duplicates "
                                              "(c ~ 1 - 1e-7) sent to direct quadrature; series and direct rule "
                                              "are each ~1e-14 accurate; 100x margin."),
    (FLOAT64, "quadrature_degenerate"): (1e-12, "c = 1 with q1 = q2 through the bivariate rule vs the univariate "
                                                "rule: both ~1e-14 accurate; 100x margin."),
    (FLOAT64, "tail_bound_rounding"): (1e-14, "absolute slack added to the rigorous truncation bound: the rounding "
                                              "of the cumulative sums of O(1) terms that the bound ignores."),
    # -- kernels ---------------------------------------------------------------------------------
    (FLOAT64, "reference_values"): (1e-10, "THEORY.md values are given to 12-13 digits."),
    (FLOAT64, "kernel_paths"): (1e-11, "two numerical paths (closed form / series / generic closed form) through "
                                       "3-5 layers; errors of ~1e-13 per layer compound mildly."),
    (FLOAT64, "exact_identity"): (1e-12, "algebraic identities (standard vs ntk, all_depths, cross blocks, "
                                         "xi = -1/rate)."),
    (FLOAT64, "same_arithmetic"): (1e-15, "the same floating-point operations up to an exact scaling or a batch "
                                          "shape (hand-computed linear kernels, batched vs single q, standard vs "
                                          "ntk NNGP): a few ulp."),
    (FLOAT64, "few_operations"): (1e-14, "one or two extra roundings per entry (residual sums, LayerNorm's division, "
                                         "relu's closed-form moments, depth sweeps vs separate calls)."),
    (FLOAT64, "reordered_arithmetic"): (1e-13, "equivalent computations in another order or code path (1x1 convs vs "
                                               "dense layers, the arccos fast path vs the generic closed forms, "
                                               "parallel vs serial threads): rounding compounds over 3-5 layers."),
    (FLOAT64, "fused_phi"): (8e-15, "phi_and_dphi vs phi and phi' evaluated separately (numpy vs the fused numba "
                                    "loop): a few ulp of O(1)-O(30) values, relative and absolute."),
    (FLOAT64, "stax_off_diagonal"): (1e-10, "relative to max |K|: neural-tangents' stax kernels off the x = x' "
                                            "diagonal and cross kernels; stax's LayerNorm adds eps = 1e-12 to the "
                                            "variances (~1e-12 relative)."),
    (FLOAT64, "stax_diagonal"): (1e-7, "relative to max |K|: stax's arccos at c = 1 - rounding is ~sqrt(2 eps) ~ 1e-8 "
                                       "off for kinked activations (the 1 - theta/pi term); ntktheory uses c = 1 "
                                       "exactly there."),
    (FLOAT64, "psd"): (1e-10, "smallest eigenvalue >= -1e-10 max eigenvalue (rounding of N=60)."),
    # -- mean field ------------------------------------------------------------------------------
    (FLOAT64, "meanfield_vs_scipy"): (1e-9, "absolute (xi's relative to max(1, |xi|)): q*, c*, chi's and depth "
                                            "scales vs scipy adaptive quadrature + brentq (_meanfield_reference.py); "
                                            "the issue's target, observed ~1e-13."),
    (FLOAT64, "meanfield_closed_form"): (1e-13, "closed forms (identity, relu, the arccos map, brentq on chi_1 at "
                                                "4 eps): a fixed point or root to ~1e-15 plus a few operations."),
    (FLOAT64, "erf_chi_1"): (1e-12, "erf's chi_1 from its closed form at the computed q*: the root solve's error "
                                    "in q* enters chi_1."),
    (FLOAT64, "sigmoid_vs_tanh_q"): (1e-11, "sigmoid = (1 + tanh(x/2))/2: q* = 4 q*_tanh by two separate root "
                                            "solves on different integrands."),
    (FLOAT64, "sigmoid_vs_tanh"): (1e-10, "relative: c*, chi's and xi's of the rescaled pair, derived from the two "
                                          "q*'s above (xi amplifies the error in log chi)."),
    (FLOAT64, "sigmoid_vs_tanh_abs"): (1e-12, "absolute floor for the same comparison, where c* or chi ~ 0."),
    (FLOAT64, "meanfield_zero_length"): (1e-12, "odd activations without bias: q* = 0 is the attracting fixed point, "
                                                "reached to the length solver's accuracy; chi_1 = sigma_w^2 "
                                                "phi'(0)^2 and c* there are exact up to that."),
    (FLOAT64, "critical_chi_1"): (1e-9, "absolute: chi_1 = 1 at a critical point found with critical_tol=1e-9, the "
                                        "tolerance the test passes to mean_field."),
    (FLOAT64, "critical_vectorised"): (1e-11, "absolute: chi_1 = 1 at critical_sigma_w2's root (Illinois regula "
                                              "falsi, 1e-13 relative to brentq) evaluated again by mean_field."),
    (FLOAT64, "critical_exact"): (1e-10, "absolute: critical sigma_w^2 with a known exact value (tanh, erf, relu) "
                                         "or against scipy brentq at xtol 1e-13."),
    (FLOAT64, "critical_theory_md"): (5e-8, "absolute: THEORY.md quotes this critical sigma_w^2 (tanh, "
                                            "sigma_b^2 = 0.05) to 8 digits."),
    (FLOAT64, "critical_sigmoid_rough"): (0.5, "absolute: sigmoid's critical sigma_w^2 at sigma_b^2 = 0 is quoted "
                                               "as ~103 (a rough value, only the order is checked)."),
    (FLOAT64, "finite_difference"): (1e-8, "exp(-1/xi_q) vs a central difference of the length map with h = 1e-5 q: "
                                           "truncation O(h^2) ~ 1e-10 plus rounding eps/h ~ 1e-11 of the map."),
    (FLOAT64, "critical_power_law"): (0.03, "absolute: ratio to the asymptotic power law of the relu correlation at "
                                            "criticality at a finite depth (next-order corrections ~1/depth)."),
    (FLOAT64, "trajectory_converged"): (1e-9, "absolute: q after the trajectory's last layer vs q* (geometric "
                                              "convergence at rate chi < 1 over the depth used)."),
    (FLOAT64, "fitted_rate"): (1e-2, "a least-squares slope of log |c - c*| over layers 40.. vs log chi_c: the "
                                     "fit sees next-order corrections of the asymptotic rate."),
    (FLOAT64, "trajectory_vs_scipy"): (1e-10, "absolute: the tanh correlation and length maps iterated vs the scipy "
                                              "reference (quad at epsrel 1e-13) iterated: per-layer quadrature errors "
                                              "accumulate over the layers."),
    (FLOAT64, "correlation_paths"): (1e-13, "direct and tabulated Hermite coefficients go through one fixed-point "
                                            "solve, the rest of the series treated one way: agree to rounding even "
                                            "near the critical line (absolute for c*, chi_c of O(1))."),
    (FLOAT64, "correlation_bound"): (1e-6, "the truncation bound ~ c*^33 / (1 - c*) amplifies the table's "
                                           "interpolation rounding in c* ~1e7-fold."),
    # -- large depth and phase diagrams -------------------------------------------------------------
    (FLOAT64, "rate_band"): (0.05, "fitted large-depth slopes (spectrum, condition number, predictor) within 5% "
                                   "of the mean-field prediction: depth 80 sees next-order corrections."),
    (FLOAT64, "phase_vs_scipy"): (1e-9, "absolute (xi's relative to max(1, |xi|)): phase-diagram entries vs the "
                                        "scipy mean-field reference; the same contract as meanfield_vs_scipy."),
    # -- finite width ----------------------------------------------------------------------------
    (FLOAT64, "closed_formula"): (1e-15, "a closed formula (Hanin & Nica's beta and exp(5 beta)) evaluated by "
                                         "the library and by the test: a few ulp."),
    (FLOAT64, "finite_width_parts"): (1e-12, "the weight and bias parts of the mean NTK summed vs the infinite-"
                                             "width kernel: two recursions over 5 layers."),
    (FLOAT64, "finite_width_homogeneity"): (1e-13, "the weight part scales exactly as a^L, the bias part is a "
                                                   "geometric sum: rounding of a few products."),
    (FLOAT64, "mc_dispersion_he"): (0.15, "chaotic-phase dispersion vs He initialisation's, both by Monte Carlo "
                                          "(3000 networks of width 32, depth 12, a heavy-tailed ratio)."),
    (FLOAT64, "mc_dispersion_phase"): (0.2, "the dispersion predicted with the Monte Carlo's own rate vs the Monte "
                                            "Carlo (3000 networks) in the ordered and chaotic phases; the formula is "
                                            "asymptotic in width (O(1/n) corrections at n = 32)."),
    (FLOAT64, "mc_standard_errors"): (4.0, "Monte Carlo: |mean - theory| <= 4 SE + 2/width relative (the O(1/n) "
                                           "finite-width bias); 4 SE fail with prob. 6e-5 per entry."),
    # -- predict ---------------------------------------------------------------------------------
    (FLOAT64, "predict_nt"): (1e-9, "ntktheory.predict vs neural-tangents' predict (max |a-b| / max |b| per "
                                    "array); measured <= 1e-14 on the well-conditioned reference cases; the "
                                    "issue's contract is 1e-7."),
    (FLOAT64, "predict_exact"): (1e-12, "closed forms (one point, diagonal kernels, the constant function through "
                                        "rank-one data, the clipped mode), t = 0, time arrays vs single times, "
                                        "marginal vs full covariance: the same arithmetic."),
    (FLOAT64, "predict_reference"): (1e-10, "against a separately written reference (scipy.linalg.expm / explicit "
                                            "gradient-descent iteration) on kernels with condition number ~1e2-1e3 "
                                            "(expm's own error is ~1e-13 relative times the condition number)."),
    (FLOAT64, "diag_reg_value"): (1e-14, "the reported diag_reg_value = diag_reg * trace / n: a few roundings."),
    (FLOAT64, "diag_reg_linear"): (0.05, "error ratios at diag_reg 1e-3, 1e-5, 1e-7 vs 100 (O(diag_reg) "
                                         "convergence; the next order is O(diag_reg^2))."),
    (FLOAT64, "duplicated_points"): (1e-4, "regularised (diag_reg 1e-6) vs singular fit on duplicated points with "
                                           "agreeing targets: the regularisation moves the fit by O(diag_reg) "
                                           "times the conditioning of the distinct points."),
}


def tol(quantity: str, dtype: str = FLOAT64) -> float:
    """The tolerance of ``quantity`` for ``dtype`` (its reason: ``TOLERANCES[dtype, quantity][1]``)."""
    return TOLERANCES[dtype, quantity][0]
