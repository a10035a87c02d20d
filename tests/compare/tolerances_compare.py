"""Tolerances of the compare tests: one table keyed by (dtype, quantity), read with ``tol``.

Every entry is ``(value, why)``: the value and the reason for it (the rounding of the arithmetic
compared, the accuracy of the reference, or the noise of synthetic data). Test files write
``tol("kernel_blocks")`` instead of a literal, so each tolerance is stated and explained once.
Values are relative unless the reason says otherwise.

The module name is unique across the test packages (tests/<package>/tolerances_<package>.py):
pytest's rootdir import puts each test folder on sys.path, so equal names would clash.
"""

from __future__ import annotations

FLOAT64 = "float64"

TOLERANCES: dict[tuple[str, str], tuple[float, str]] = {
    # -- kernels, sweeps and stores --------------------------------------------------------------
    (FLOAT64, "kernel_blocks"): (1e-12, "blocks of a stored kernel matrix vs the in-memory kernels, relative (and "
                                        "absolute relative to the largest entry of each matrix): the same "
                                        "recursion on row/column blocks, rounding of a few layers."),
    (FLOAT64, "sweep_vs_kernels"): (1e-13, "a sweep's theory kernels vs ntktheory.kernels called directly on the "
                                           "same points: the same code, inputs round-tripped through the store."),
    (FLOAT64, "theory_block"): (1e-13, "the training block of a theory task's NTK (computed on train and test "
                                       "points) vs the NTK of the training points alone, and the learning rate "
                                       "2N/lambda_max from either: the same per-pair recursion, rounding only."),
    (FLOAT64, "width_free_nngp"): (1e-14, "the standard-parameterisation NNGP does not depend on the width: the "
                                          "same arithmetic with the width only in the NTK's terms."),
    (FLOAT64, "sweep_vs_empirical"): (1e-12, "a sweep's empirical NTK vs empirical.ntk on the same seed's network: "
                                             "the same contraction, possibly batched differently."),
    (FLOAT64, "lazy_vs_eager"): (1e-12, "an accessor on Dask-backed (lazy) data vs on loaded data: chunked "
                                        "reductions sum in another order."),
    (FLOAT64, "export_sums"): (1e-15, "the sum of an exported variable (netCDF, zarr) vs the in-memory one: "
                                      "identical float64 values, summed once each."),
    (FLOAT64, "sphere_norms"): (1e-12, "|x|^2 of points normalised to a sphere of radius^2 = dimension: one "
                                       "division and a sum of squares of up to 3072 terms."),
    (FLOAT64, "sphere_correlation"): (0.02, "absolute: mean cosine of 200 points drawn with correlation 0.6 in 400 "
                                            "dimensions (sampling noise ~0.002 per pair, correlated pairs)."),
    # -- metrics ---------------------------------------------------------------------------------
    (FLOAT64, "metric_by_hand"): (1e-14, "metrics of 2x2 / 3x3 matrices computed by hand (Frobenius norms, "
                                         "eigenvalues, condition numbers, kernel regression at t = 0, inf): "
                                         "a few roundings."),
    (FLOAT64, "metric_rounding"): (1e-12, "metrics with more arithmetic than by-hand ones (CKA's centring, a "
                                          "least-squares slope of an exact power law, exp(x) - 1 with "
                                          "cancellation)."),
    (FLOAT64, "noisy_slope"): (0.05, "absolute: fitted width-scaling slope of a -1/2 power law with 5% log-normal "
                                     "noise, 8 seeds at 5 widths."),
    (FLOAT64, "sweep_slope"): (0.15, "absolute: fitted gap-vs-width slopes of a small toy sweep vs -1/2 "
                                     "(a few seeds and widths)."),
    # -- kernel regression from a store -----------------------------------------------------------
    (FLOAT64, "diag_reg_value"): (1e-13, "the reported diag_reg_value = diag_reg * trace / n: a few roundings."),
    (FLOAT64, "cg_mean"): (1e-8, "relative and relative to max |mean|: predictions from CG stopped at a relative "
                               "residual <= 1e-12 (or Cholesky) vs a dense solve, one target column vs two: the "
                               "residual times the condition number, smoothed by the test kernel."),
    (FLOAT64, "cg_alpha"): (1e-6, "relative and relative to max |alpha|: CG's dual coefficients vs a dense solve: "
                                "the residual times the full condition number."),
    (FLOAT64, "reported_residual"): (1e-3, "the reported relative residual vs the true one recomputed in float64: "
                                           "a residual of ~1e-12 carries ~1e-4 relative rounding."),
    (FLOAT64, "reported_residual_abs"): (1e-15, "absolute floor of the same comparison where the residual is ~0."),
    (FLOAT64, "test_kernel_paths"): (1e-13, "relative to max |mean|: the test kernel from a store vs computed on "
                                            "the fly: the same recursion, blocks of rows."),
    (FLOAT64, "cholesky_residual"): (1e-12, "the Cholesky solve's relative residual: rounding times the condition "
                                            "number of the regularised kernel."),
    # -- recipes: linear algebra -----------------------------------------------------------------
    (FLOAT64, "linear_solve"): (1e-10, "float64 linear algebra on well-conditioned matrices (Gauss-Newton "
                                       "coefficients, cross Gram matrices, Jacobian drift norms, a log-det)."),
    (FLOAT64, "linear_solve_abs"): (1e-12, "absolute floor of the same comparisons where entries are ~0."),
    (FLOAT64, "rank_one_updates"): (1e-8, "posterior variances after a chain of rank-one updates: each update's "
                                          "rounding compounds."),
    (FLOAT64, "normal_equations"): (1e-8, "against a solve of the damped normal equations J^T J + delta I, whose "
                                          "condition number is the square of J's."),
    (FLOAT64, "parameter_space_step"): (1e-7, "a network's Gauss-Newton step vs the dense parameter-space formula "
                                              "(normal equations over all parameters, float64 autograd "
                                              "Jacobians)."),
    (FLOAT64, "parameter_space_step_abs"): (1e-12, "absolute floor of the same comparison for ~0 entries."),
    (FLOAT64, "loss_value"): (1e-12, "the reported loss vs 0.5 |r|^2 from the same forward pass: rounding only."),
    (FLOAT64, "drift_of_zero"): (1e-6, "relative to the Jacobian's (or Gram's) norm: the drift of an unchanged "
                                       "Jacobian is zero up to the square root of rounding-level Gram "
                                       "differences (~1e-8)."),
    (FLOAT64, "stability_of_zero"): (1e-4, "the stability constant of that ~0 drift: the drift bound divided by the "
                                           "Gram's smallest eigenvalue."),
    (FLOAT64, "ngd_loss_ratio"): (1e-6, "loss ratios (1 - eta)^2 = 0.25 over 6 undamped NGD steps: each step "
                                        "solves with the Gram matrix, and the loss shrinks 4000-fold, so its "
                                        "rounding grows relative to it."),
    (FLOAT64, "optimiser"): (1e-9, "the Laplace-evidence maximiser vs the root of its quadratic: an iterative "
                                   "optimiser's convergence, not rounding."),
    (FLOAT64, "synthetic_slope"): (1e-3, "absolute: forgetting slopes fitted to synthetic accuracies with 1e-4 "
                                         "noise."),
    # -- recipes: kernel dynamics and fits -------------------------------------------------------
    (FLOAT64, "exact_fit"): (1e-12, "absolute: an exponential rate and intercept fitted to exact data: a "
                                    "least-squares fit of three logs."),
    (FLOAT64, "exact_power_fit"): (1e-10, "absolute: a power-law rate fitted to exact 1 + c w^rate data: log(ratio "
                                          "- 1) loses digits to the cancellation."),
    (FLOAT64, "exact_power_fit_half_width"): (1e-8, "absolute: the half width of that fit's interval: the square "
                                                    "root of a rounding-level residual variance."),
    (FLOAT64, "kernel_gd_vs_iteration"): (1e-10, "absolute on O(1) outputs, and relative for the loss: closed-form "
                                                 "kernel gradient descent vs 25 explicit steps in feature space."),
    (FLOAT64, "prior_at_t0"): (1e-12, "the predicted output variance at t = 0 is the prior's: the same "
                                      "arithmetic with an identity propagator."),
    (FLOAT64, "vs_ntktheory_kernels"): (1e-10, "a recipe's predicted output variance vs the diagonal of "
                                               "ntktheory's standard-parameterisation NNGP (another call path "
                                               "through the same kernels)."),
    (FLOAT64, "mc_variance_4000"): (0.1, "a Monte Carlo variance over 4000 samples vs the prediction: relative "
                                         "standard error of a variance ~2%, so 5 standard errors."),
    (FLOAT64, "mean_field_table"): (1e-9, "erf's chi_1 from the recipe's mean-field table vs the closed form at "
                                          "its q*: the mean-field solver's contract (1e-9)."),
    (FLOAT64, "xi_identity"): (1e-12, "xi_1 = -1 / log chi_1 computed by the recipe and by the test: an "
                                      "algebraic identity."),
    # -- recipes: synthetic data with known answers -----------------------------------------------
    (FLOAT64, "synthetic_rate_mismatch"): (0.6, "absolute: the pooled rate of synthetic log-normal ratios with "
                                                "rates 1.5 and 4.5 at two widths (a mean of 3.0 from few seeds)."),
    (FLOAT64, "synthetic_recovered"): (0.05, "absolute: recovered slopes and variance-ratio errors of synthetic "
                                              "data with a known answer (a few seeds of log-normal noise)."),
    (FLOAT64, "synthetic_dispersion"): (0.2, "relative: dispersions and ratios recovered from synthetic kernels "
                                             "with a known answer (tens of seeds)."),
    (FLOAT64, "synthetic_ratio_decay"): (0.25, "relative: the 4-fold decay of the centred dispersion across the "
                                               "synthetic widths (tens of seeds per width)."),
    (FLOAT64, "synthetic_power_rate"): (0.15, "absolute floor on the recovered power-law rate (-0.9) of synthetic "
                                              "kernels where its interval is narrower."),
    (FLOAT64, "variance_ratio"): (0.15, "absolute: a bootstrap variance ratio of 400 Gaussian samples vs 1 "
                                        "(standard error ~0.07)."),
    (FLOAT64, "centred_dispersion"): (0.05, "relative: the centred dispersion of 3000 synthetic kernels vs its "
                                            "known value (sampling error ~1-2%)."),
    (FLOAT64, "synthetic_accuracy"): (0.03, "absolute: accuracy claims of synthetic test outcomes vs the rates they "
                                            "were drawn with (hundreds of test points per cell)."),
    (FLOAT64, "synthetic_gain"): (0.05, "absolute: the mean gain of the measuring-free half of synthetic draws "
                                        "(true value 0)."),
    (FLOAT64, "bootstrap_width"): (0.2, "relative: a bootstrap interval's width (300 resamples) vs 2 * 1.96 / "
                                        "sqrt(n) (the resampling noise of a width)."),
}


def tol(quantity: str, dtype: str = FLOAT64) -> float:
    """The tolerance of ``quantity`` for ``dtype`` (its reason: ``TOLERANCES[dtype, quantity][1]``)."""
    return TOLERANCES[dtype, quantity][0]
