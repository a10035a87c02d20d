"""Tolerances of the empirical tests: one table keyed by (dtype, quantity), read with ``tol``.

Every entry is ``(value, why)``: the value and the reason for it (the rounding of the arithmetic
compared, the accuracy of the reference, or a Monte Carlo error). Test files write
``tol("ntk_methods_agree")`` instead of a literal, so each tolerance is stated and explained once.
Values are absolute on O(1) entries unless the reason says otherwise; a band is a (low, high) pair.

The module name is unique across the test packages (tests/<package>/tolerances_<package>.py):
pytest's rootdir import puts each test folder on sys.path, so equal names would clash.
"""

from __future__ import annotations

FLOAT64 = "float64"
FLOAT32 = "float32"

TOLERANCES: dict[tuple[str, str], tuple[float | tuple[float, float], str]] = {
    # -- empirical NTK and NNGP ------------------------------------------------------------------
    (FLOAT64, "ntk_methods_agree"): (1e-10, "absolute, entries O(1) (or relative to max |K|): the structured, "
                                            "Jacobian-contraction and ntk_vp methods sum the same products in "
                                            "different orders over all parameters."),
    (FLOAT64, "same_network_twice"): (1e-12, "the same network's kernel computed twice along different code paths "
                                             "(chunked vs whole, an ensemble member vs the network alone, auto vs "
                                             "ntk_vp on a foreign module, standard vs ntk NNGP): rounding only."),
    (FLOAT64, "output_reductions"): (1e-13, "trace/mean over outputs and the symmetry of the full NTK: a handful "
                                            "of additions of O(1) entries."),
    (FLOAT64, "explicit_formula"): (1e-13, "a kernel or forward pass written out by hand (convolution with jax's "
                                           "padding, the readout NNGP, standard vs ntk parameterisation of one "
                                           "function): rounding of a few products per entry."),
    (FLOAT64, "explicit_forward"): (1e-14, "the MLP's forward pass and its first-layer NNGP vs the design formula "
                                           "from the raw parameters: the same operations up to order."),
    (FLOAT64, "closed_form_ntk"): (1e-12, "relative and absolute: the one-hidden-layer NTK written out from the "
                                          "gradients by hand vs the library's contraction over all parameters."),
    (FLOAT64, "psd"): (1e-10, "smallest eigenvalue of the flattened NTK (entries O(1)) > -1e-10: rounding of a "
                              "symmetric eigensolve."),
    (FLOAT64, "device_agree"): (1e-10, "CUDA vs CPU float64 NTK: different BLAS kernels and reduction orders "
                                       "(the ntk_methods_agree bound)."),
    (FLOAT64, "linearized_step0"): (1e-12, "the linearised model equals the network at step 0: f0 plus a zero "
                                           "parameter change, rounding only."),
    (FLOAT64, "function_vs_parameter_linearization"): (1e-10, "function-space vs parameter-space gradient descent "
                                                              "of the linearised model over 12 steps: the NTK's "
                                                              "rounding (ntk_methods_agree) propagated."),
    (FLOAT64, "linearized_vs_predict"): (1e-10, "absolute, outputs O(1): the linearised twin's outputs vs "
                                                "ntktheory.predict with its empirical NTK: the same recursion, the "
                                                "NTK's rounding propagated."),
    (FLOAT64, "critical_learning_rate"): (1e-12, "2 n / lambda_max from the same symmetric eigensolve of the NTK: "
                                                 "rounding only."),
    (FLOAT64, "gradient_norms"): (1e-12, "per-parameter gradient norms vs torch's own autograd gradients: the same "
                                         "backward pass, summed in another order."),
    (FLOAT64, "hessian_norm_lanczos"): (1e-9, "relative: Lanczos with as many iterations as parameters (or along "
                                              "one direction) vs the dense autograd Hessian's eigenvalues: exact "
                                              "in exact arithmetic, so only the Krylov recurrence's rounding."),
    (FLOAT64, "hessian_norm_power"): (1e-6, "relative: power iteration (3000 steps) converges only linearly, at the "
                                            "ratio of the two largest |eigenvalues|."),
    (FLOAT64, "activation_vs_ntktheory"): (1e-12, "torch's activation vs ntktheory's numpy one: different "
                                                  "implementations of the same special function (erf, tanh, ...)."),
    (FLOAT64, "activation_derivative"): (1e-10, "phi' by torch autograd vs ntktheory's symbolic derivative: "
                                                "different formulas for the same function (e.g. gelu, softplus)."),
    (FLOAT64, "theory_vs_reference_recursion"): (1e-10, "relative: ntktheory's kernels vs conftest.reference_kernels "
                                                        "(closed-form expectations, written independently) over "
                                                        "1-3 layers."),
    (FLOAT32, "weights_draw"): (1e-6, "a float32 MLP's weights vs the float64 draw of the same seed: float32 "
                                      "rounding (~6e-8 relative) of O(1)-O(10) values."),
    # -- Monte Carlo -----------------------------------------------------------------------------
    (FLOAT64, "mc_z_max"): (4.5, "max |mean - reference| / standard error over all entries (<= 16 roughly "
                                 "Gaussian means: fails by chance with probability < 1e-4)."),
    (FLOAT64, "slope_band_gap"): ((-0.75, -0.3), "fitted log-log slope of the NTK's gap (or RMS fluctuation) to "
                                                 "theory against width or channels: theory -1/2, a few widths and "
                                                 "seeds only."),
    (FLOAT64, "slope_band_linearization"): ((-1.5, -0.3), "fitted log-log slope of the distance to the "
                                                          "linearisation against width: O(n^-1/2) or faster "
                                                          "(Lee et al. 2019); two seeds at three widths."),
    (FLOAT64, "slope_band_deviation"): ((-0.8, -0.3), "RMS of f_t - g over seeds and test points against width; "
                                                      "theory -1/2 (measured -0.49)."),
    (FLOAT64, "slope_band_mean"): ((-1.3, -0.2), "control-variate error of the ensemble mean: noise ~ n^-1/2 / "
                                                 "sqrt(S) plus O(1/n) bias; measured -0.5 to -0.6 with standard "
                                                 "error 0.1 over 24 seeds: about +-3 standard errors."),
    (FLOAT64, "slope_band_variance"): ((-1.3, -0.1), "control-variate error of the ensemble variance: as for the "
                                                     "mean, standard error 0.2 over 24 seeds: about +-3 standard "
                                                     "errors."),
}


def tol(quantity: str, dtype: str = FLOAT64):
    """The tolerance of ``quantity`` for ``dtype`` (its reason: ``TOLERANCES[dtype, quantity][1]``)."""
    return TOLERANCES[dtype, quantity][0]
