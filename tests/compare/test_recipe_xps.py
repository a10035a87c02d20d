"""Recipe xiao-pennington-schoenholz: analysis on synthetic datasets with known answers, data, configuration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

from compare.recipes import xiao_pennington_schoenholz as xps
from compare.recipes._analysis import bootstrap_interval

SW2 = np.array([0.5, 0.75, 1.0, 2.5, 3.5, 4.5])
DEPTH = 40
N_TRAIN = N_TEST = 150


def _dataset(rng: np.random.Generator, *, beyond_train: float = 0.2, chaotic_test: float = 0.1,
             gap_gain: float = 0.3, finite_shift: float = 0.0) -> xr.Dataset:
    """Correctness drawn with known probabilities per region of the (sigma_w2, depth) grid.

    Ordered, depth beyond 12 xi_1: train accuracy ``beyond_train``; chaotic, beyond 12 xi*: train 1, test
    ``chaotic_test``; elsewhere train 1, test 0.8. The CNN equals the FCN except for a 2% flip of test
    points; CNN-GAP adds ``gap_gain`` to the test accuracy in the chaotic-beyond region.
    """
    mf = xps.mean_field_table(SW2, 0.18, "erf")
    depth = np.arange(1, DEPTH + 1)
    line1 = xps.XI_MULTIPLE * np.where(np.isfinite(mf["xi_1"]), mf["xi_1"], np.nan)
    lines = xps.XI_MULTIPLE * np.where(np.isfinite(mf["xi_star"]), mf["xi_star"], np.nan)
    with np.errstate(invalid="ignore"):
        ordered_beyond = depth[None, :] >= xps.BEYOND * line1[:, None]
        chaotic_beyond = depth[None, :] >= xps.BEYOND * lines[:, None]
    p_train = np.where(ordered_beyond, beyond_train, 1.0)
    p_test = np.where(chaotic_beyond, chaotic_test, np.where(ordered_beyond, 0.1, 0.8))
    fcn_train = rng.random((len(SW2), DEPTH, N_TRAIN)) < p_train[..., None]
    fcn_test = rng.random((len(SW2), DEPTH, N_TEST)) < p_test[..., None]
    flip = rng.random(fcn_test.shape) < 0.02
    cnn_test = fcn_test ^ flip
    gap_test = cnn_test | ((rng.random(fcn_test.shape) < gap_gain / (1 - chaotic_test)) & chaotic_beyond[..., None])
    train = np.stack([fcn_train] * 3)[:, :, :, None, :]
    test = np.stack([fcn_test, cnn_test, gap_test])[:, :, :, None, :]
    points = [("ordered-shallow", 1.0, 3), ("ordered-deep", 0.5, 30), ("chaotic-deep", 4.5, 38)]
    fin_train, fin_test = [], []
    for arch in (1, 2):
        rows_train, rows_test = [], []
        for _, s, d in points:
            i = int(np.argmin(np.abs(SW2 - s)))
            rows_train.append(train[arch, i, d - 1, 0].mean() + finite_shift + 0.01 * rng.standard_normal(3))
            rows_test.append(test[arch, i, d - 1, 0].mean() + 0.01 * rng.standard_normal(3))
        fin_train.append(rows_train)
        fin_test.append(rows_test)
    grid = ("architecture", "sigma_w2", "depth")
    fdims = ("finite_architecture", "point", "finite_seed")
    ds = xr.Dataset(
        {
            "train_accuracy": (grid, train[..., 0, :].mean(-1)), "test_accuracy": (grid, test[..., 0, :].mean(-1)),
            "train_accuracy_by_time": ((*grid, "time"), train.mean(-1)),
            "test_accuracy_by_time": ((*grid, "time"), test.mean(-1)),
            "train_correct": ((*grid, "time", "train"), train), "test_correct": ((*grid, "time", "test"), test),
            **{k: (("sigma_w2",), v) for k, v in mf.items()},
            "finite_train_accuracy": (fdims, np.clip(np.array(fin_train), 0, 1)),
            "finite_test_accuracy": (fdims, np.clip(np.array(fin_test), 0, 1)),
        },
        coords={"architecture": list(xps.ARCHITECTURES), "sigma_w2": SW2, "depth": depth, "time": [64.0],
                "train": np.arange(N_TRAIN), "test": np.arange(N_TEST), "finite_architecture": ["cnn", "cnn-gap"],
                "finite_seed": np.arange(3), "point": [p[0] for p in points],
                "point_sigma_w2": ("point", [p[1] for p in points]), "point_depth": ("point", [p[2] for p in points])},
        attrs={"chance_accuracy": 0.1, "majority_class_test_accuracy": 0.1, "xi_multiple": xps.XI_MULTIPLE,
               "main_time": 64.0, "finite_time": 64.0, "critical_sigma_w2": 1.7476, "channels": 16,
               "data": "synthetic"},
    )
    return ds


def _by_start(claims, start: str):
    found = [c for c in claims if c.statement.startswith(start)]
    assert len(found) == 1, [c.statement for c in claims]
    return found[0]


def test_mean_field_table_matches_the_erf_closed_form() -> None:
    import ntktheory

    t = xps.mean_field_table(np.array([0.5, 1.0, 3.0]), 0.18, "erf")
    q = t["q_star"]
    np.testing.assert_allclose(t["chi_1"], np.array([0.5, 1.0, 3.0]) * (4 / math.pi) / np.sqrt(1 + 4 * q),
                               rtol=tol("mean_field_table"))
    np.testing.assert_allclose(t["xi_1"][:2], -1 / np.log(t["chi_1"][:2]), rtol=tol("xi_identity"))
    assert t["xi_1"][2] == math.inf and t["xi_star"][0] == math.inf  # each scale only in its own phase
    assert t["xi_star"][2] == pytest.approx(-1 / (math.log(t["chi_c"][2]) - math.log(t["chi_1"][2])))
    assert list(t["phase"]) == ["ordered", "ordered", "chaotic"]
    assert 1.0 < float(ntktheory.critical_sigma_w2("erf", 0.18)) < 3.0


def test_regions_follow_the_drawn_lines() -> None:
    ds = _dataset(np.random.default_rng(0))
    masks = xps.regions(ds)
    line = xps.depth_lines(ds)["line_xi_1"].sel(sigma_w2=0.5).item()
    beyond = masks["ordered_beyond"].sel(sigma_w2=0.5)
    assert int(ds.depth.where(beyond, drop=True).min()) == math.ceil(xps.BEYOND * line)
    assert not masks["ordered_beyond"].sel(sigma_w2=2.5).any()  # chaotic columns have no xi_1 line
    assert not masks["chaotic_before"].sel(sigma_w2=0.5).any()
    assert masks["chaotic_beyond"].sel(sigma_w2=4.5).any()


def test_region_accuracy_recovers_the_known_mean_with_an_interval() -> None:
    rng = np.random.default_rng(1)
    correct = xr.DataArray(rng.random((2, 3, 400)) < 0.3, dims=("sigma_w2", "depth", "test"))
    mask = xr.DataArray(np.array([[True, False, False], [True, True, False]]), dims=("sigma_w2", "depth"))
    value, lo, hi, cells = xps.region_accuracy(correct, mask, example_dim="test")
    assert cells == 3 and lo <= 0.3 <= hi and hi - lo < 0.1
    assert value == pytest.approx(float(correct.values[mask.values].mean()))
    empty = xps.region_accuracy(correct, mask & False, example_dim="test")
    assert math.isnan(empty[0]) and empty[3] == 0


def test_analysis_reproduces_the_papers_pattern_on_synthetic_data(tmp_path) -> None:
    ds = _dataset(np.random.default_rng(2))
    claims, figures = xps.analyse(ds, tmp_path)
    assert all(c.source for c in claims) and all(f.exists() for f in figures) and len(figures) == 3
    for arch in xps.ARCHITECTURES:
        c = _by_start(claims, f"{arch}: in the ordered phase")
        assert c.verdict == "reproduced" and c.value == pytest.approx(0.2, abs=tol("synthetic_accuracy"))
    for arch in ("fcn", "cnn"):
        c = _by_start(claims, f"{arch}: in the chaotic phase")
        assert c.verdict == "reproduced" and c.value == pytest.approx(0.1, abs=tol("synthetic_accuracy"))
    close = _by_start(claims, "CNNs without global average pooling")
    assert close.verdict == "reproduced" and close.value < 0.05
    different = _by_start(claims, "CNNs with global average pooling")
    assert different.verdict == "reproduced"
    better = _by_start(claims, "... and often better")
    # the true gain in the chaotic-beyond cells: CNN-GAP fixes gap_gain / 0.9 of the CNN's wrong answers there;
    # measured on the 75 odd test points, so within 3 standard errors of it
    p_cnn = 0.1 * 0.98 + 0.9 * 0.02
    gain = (1 - p_cnn) * 0.3 / 0.9
    assert better.verdict == "reproduced"
    assert better.value == pytest.approx(gain, abs=3 * math.sqrt(gain * (1 - gain) / (N_TEST // 2)))
    finite = _by_start(claims, "finite-width CNNs")
    assert finite.verdict == "reproduced" and finite.value == 1.0


def test_analysis_reports_what_does_not_reproduce(tmp_path) -> None:
    # deep ordered networks that still train, chaotic ones that still generalise, no pooling gain,
    # finite networks that fail to train where the infinite ones do
    ds = _dataset(np.random.default_rng(3), beyond_train=1.0, chaotic_test=0.8, gap_gain=0.0, finite_shift=-0.9)
    claims, _ = xps.analyse(ds, tmp_path)
    assert _by_start(claims, "fcn: in the ordered phase").verdict == "not reproduced"
    assert _by_start(claims, "cnn: in the chaotic phase").verdict == "not reproduced"
    assert _by_start(claims, "CNNs with global average pooling").verdict == "not reproduced"
    assert _by_start(claims, "... and often better").verdict != "reproduced"
    assert _by_start(claims, "finite-width CNNs").verdict == "not reproduced"


def test_gap_advantage_is_cross_fitted() -> None:
    """With no true difference the selected cell's gain, measured on the other half, is centred on 0."""
    gains = []
    for seed in range(12):
        ds = _dataset(np.random.default_rng(100 + seed), gap_gain=0.0)
        ds["test_correct"].loc[{"architecture": "cnn-gap"}] = (
            np.random.default_rng(seed).random(ds["test_correct"].sel(architecture="cnn").shape) < 0.5)
        ds["test_correct"].loc[{"architecture": "cnn"}] = (
            np.random.default_rng(50 + seed).random(ds["test_correct"].sel(architecture="cnn").shape) < 0.5)
        adv = xps.gap_advantage(ds)
        assert adv["gain_selection"] > 0.1  # the selection half is optimistic by construction
        gains.append(adv["value"])
    assert abs(np.mean(gains)) < tol("synthetic_gain")  # the measuring half is not


def test_bootstrap_interval_pairs_and_validates() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal(2000) + 3.0
    value, lo, hi = bootstrap_interval(x, np.mean, n_boot=300)
    assert value == pytest.approx(float(x.mean()))
    assert lo < 3.0 < hi and hi - lo == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=tol("bootstrap_width"))
    a = rng.standard_normal(500)
    diff = bootstrap_interval((a + 1.0, a), lambda u, v: float(np.mean(u - v)), n_boot=100)
    assert diff == (1.0, 1.0, 1.0) or np.allclose(diff, 1.0)  # paired: the common noise cancels
    with pytest.raises(ValueError, match="share the length of axis 0"):
        bootstrap_interval((np.ones(3), np.ones(4)), lambda u, v: 0.0)
    assert math.isnan(bootstrap_interval(np.ones(1), np.mean)[1])


def test_finite_steps_match_the_infinite_width_time() -> None:
    assert xps.finite_steps(64.0, 2.0, 0.5) == 128
    assert xps.finite_steps(32.0, 2.0, 1.0) == 32
    assert xps.finite_steps(10.0, 1.0, 0.3) == math.ceil(10 / 0.6)


def test_configuration_is_checked_before_any_work() -> None:
    good = xps.RECIPE.config("tiny")
    xps.check_config(good)
    for key, value, message in (
        ("time", 7.0, r"`time` = 7.0 must be one of `times`"),
        ("finite_time", 3.0, r"`finite_time` = 3.0 must be one of `times`"),
        ("architectures", ["fcn", "resnet"], r"`architectures` must be among"),
        ("finite_points", [dict(label="x", sigma_w2=9.0, depth=2)], r"finite point .* must lie on the grid"),
        ("finite_architectures", ["fcn", "cnn", "cnn-gap", "x"], r"`finite_architectures` \['x'\] must also be in"),
    ):
        with pytest.raises(ValueError, match=message):
            xps.check_config({**good, key: value})


def test_missing_cifar10_names_the_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(xps.CIFAR10_ENV, raising=False)
    config = {**xps.RECIPE.config("paper"), "data_path": str(tmp_path / "nowhere")}
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 not found in '.*nowhere'.*NTKGAP_CIFAR10="):
        xps.load_task_data(config)
    monkeypatch.setenv(xps.CIFAR10_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"elsewhere"):
        xps.experiment(config, None)  # refused before any kernel is computed


def test_digits_split_is_disjoint_images_on_the_sphere() -> None:
    x, y, xt, yt = xps.load_task_data({"data": "digits", "n_train": 30, "n_test": 20, "data_seed": 1})
    assert x.shape == (30, 1, 8, 8) and xt.shape == (20, 1, 8, 8) and y.shape == (30,) and yt.shape == (20,)
    np.testing.assert_allclose((x.reshape(30, -1) ** 2).sum(1), 64.0)
    assert not {tuple(r) for r in x.reshape(30, -1)} & {tuple(r) for r in xt.reshape(20, -1)}
    with pytest.raises(ValueError, match="`data` must be 'digits' or 'cifar10'"):
        xps.load_task_data({"data": "mnist", "n_train": 1, "n_test": 1})


def test_tiny_run_writes_the_documented_dataset(tmp_path) -> None:
    from compare.recipes import run_recipe

    result = run_recipe("xiao-pennington-schoenholz", scale="tiny", out=tmp_path, threads=1)
    ds = xr.open_dataset(result.dataset)
    assert ds["train_accuracy"].dims == ("architecture", "sigma_w2", "depth")
    assert list(ds.architecture.values) == ["fcn", "cnn", "cnn-gap"]
    assert {"chi_1", "xi_1", "xi_star", "finite_train_accuracy", "finite_test_accuracy"} <= set(ds.data_vars)
    assert ds["xi_1"].dims == ("sigma_w2",) and ds.attrs["chance_accuracy"] == pytest.approx(0.1)
    assert float(ds["train_accuracy"].sel(architecture="fcn", sigma_w2=1.0, depth=1)) > 0.9
    assert {c.verdict for c in result.claims} <= {"reproduced", "not reproduced", "inconclusive"}
    names = {f.name for f in result.figures}
    assert {"xps_accuracy_heatmaps.png", "xps_pooling_difference.png", "xps_finite_width.png"} <= names
