"""Large-depth NTK analysis (Xiao, Pennington & Schoenholz 2020): fitted decay rates of the
spectrum and of the mean predictor against -log chi_1 and log chi_c - log chi_1 in their phases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory import large_depth_analysis


@pytest.fixture(scope="module")
def erf_ds():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 8))
    x *= math.sqrt(8) / np.linalg.norm(x, axis=1, keepdims=True)
    # Xiao et al.'s notebook uses erf with sigma_b^2 = 0.18
    return large_depth_analysis(x[:6], x[6:], activation="erf", depth=80,
                                sigma_w2=[0.9, 1.2, 2.0, 3.0], sigma_b2=[0.0, 0.18])


def test_ordered_phase_spectrum_decays_at_log_chi_1(erf_ds):
    ordered = erf_ds.phase.values == 0
    assert ordered.sum() >= 2
    log_chi = np.log(erf_ds.chi_1.values[ordered])
    np.testing.assert_allclose(erf_ds.lambda_min_rate.values[ordered], log_chi, rtol=tol("rate_band"))
    np.testing.assert_allclose(erf_ds.kappa_rate.values[ordered], -log_chi, rtol=tol("rate_band"))
    np.testing.assert_allclose(erf_ds.xi_trainability.values[ordered], -1 / log_chi, rtol=tol("exact_identity"))


def test_ordered_lambda_max_tends_to_m_p_star(erf_ds):
    for i, j in zip(*np.nonzero(erf_ds.phase.values == 0)):
        w, b = float(erf_ds.sigma_w2[i]), float(erf_ds.sigma_b2[j])
        mf = ntktheory.mean_field("erf", w, b)
        p_star = float(mf.q_star) / (1 - float(mf.chi_1))
        # the deviations are O(l chi_1^l) (THEORY.md)
        gap = abs(float(erf_ds.lambda_max[i, j, -1]) / (6 * p_star) - 1)
        assert gap <= 80 * float(mf.chi_1) ** 80, (w, b, gap)
        assert gap <= abs(float(erf_ds.lambda_max[i, j, 39]) / (6 * p_star) - 1)


def test_chaotic_phase_predictor_decays_at_log_chi_c_over_chi_1(erf_ds):
    chaotic = (erf_ds.phase.values == 2) & (erf_ds.chi_1.values > 1.05)
    assert chaotic.sum() >= 4
    predicted = np.log(erf_ds.chi_c.values[chaotic]) - np.log(erf_ds.chi_1.values[chaotic])
    np.testing.assert_allclose(erf_ds.predictor_rate.values[chaotic], predicted, rtol=tol("rate_band"))
    np.testing.assert_allclose(erf_ds.xi_generalisation.values[chaotic], -1 / predicted, rtol=tol("exact_identity"))
    # trainable: the condition number tends to 1
    kappa = erf_ds.kappa.values[chaotic]
    assert np.all(kappa[:, -1] < 1.05) and np.all(kappa[:, -1] - 1 < 0.1 * (kappa[:, 19] - 1))
    assert np.all(np.isinf(erf_ds.xi_trainability.values[chaotic]))


def test_dataset_layout(erf_ds):
    assert erf_ds.lambda_min.dims == ("sigma_w2", "sigma_b2", "depth")
    assert erf_ds.depth.values.tolist() == list(range(1, 81))
    assert erf_ds.phase.attrs["flag_meanings"] == "ordered critical chaotic"
    assert '"activation": "erf"' in erf_ds.attrs["config"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x_train": np.ones((1, 3))}, ValueError, r"`x_train` needs at least 2 points"),
        ({"x_test": np.ones((2, 4))}, ValueError, r"`x_test` has 4 features but the other input has 3"),
        ({"depth": 3}, ValueError, r"`depth` must be an integer >= 4"),
        ({"fit_from": 9}, ValueError, r"`fit_from` must be <= depth - 2 = 8, got 9"),
        ({"sigma_w2": [0.0]}, ValueError, r"`sigma_w2` must be > 0"),
        ({"sigma_b2": [-1.0]}, ValueError, r"`sigma_b2` must be >= 0"),
    ],
)
def test_argument_errors(kwargs, error, match):
    args = {"x_train": np.eye(3), "x_test": np.ones((2, 3)), "depth": 10, "sigma_w2": [1.0], "sigma_b2": [0.0]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        large_depth_analysis(args.pop("x_train"), args.pop("x_test"), activation="erf", **args)
