"""phase_diagram: Dataset layout, NetCDF round trip, values against the scipy reference, the
critical line separating the phases and xi_c peaking along it, and argument errors."""

from __future__ import annotations

import json
import math

import _meanfield_reference as ref  # tests/ntktheory is on sys.path (pytest rootdir import)
import numpy as np
import pytest
import xarray as xr
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory

W = np.linspace(0.6, 4.0, 40)
B = np.linspace(0.0, 0.3, 30)  # 1200 points: the tabulated fast path


@pytest.fixture(scope="module")
def tanh_ds():
    return ntktheory.phase_diagram("tanh", sigma_w2=W, sigma_b2=B)


def test_layout_and_attrs(tanh_ds):
    ds = tanh_ds
    for name in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase", "length_diverges"):
        assert ds[name].dims == ("sigma_w2", "sigma_b2")
    assert ds.q_star.dtype == np.float64 and ds.phase.dtype == np.int8
    assert ds.phase.attrs["flag_meanings"] == "ordered critical chaotic"
    assert ds.critical_sigma_w2.dims == ("sigma_b2",)
    config = json.loads(ds.attrs["config"])
    assert config["activation"] == "tanh" and config["sigma_w2"]["num"] == 40
    assert "sigma_w^2" in ds.attrs["conventions"] and ds.attrs["ntkgap_version"] == ntktheory.__version__
    assert set(np.unique(ds.phase.values)) == {0, 2}


def test_values_match_scipy_reference(tanh_ds):
    funcs = ref.tanh_functions()
    for i, j in [(5, 3), (25, 29), (39, 0)]:
        expected = ref.mean_field(*funcs, W[i], B[j])
        for name, want in expected.items():
            got = float(tanh_ds[name].values[i, j])
            scale = max(1.0, abs(want)) if name.startswith("xi") else 1.0
            assert abs(got - want) <= tol("phase_vs_scipy") * scale, (name, got, want)


def test_critical_line_separates_phases_and_xi_c_peaks_on_it(tanh_ds):
    crit = tanh_ds.critical_sigma_w2.values
    for j, w_c in enumerate(crit):
        phase = tanh_ds.phase.values[:, j]
        np.testing.assert_array_equal(phase, np.where(W < w_c, 0, 2))
        xi = tanh_ds.xi_c.values[:, j]
        peak = W[np.argmax(np.where(np.isfinite(xi), xi, np.inf))]
        gap = W[1] - W[0]
        assert abs(peak - w_c) <= gap, (B[j], peak, w_c)


def test_netcdf_round_trip_with_plain_xarray(tmp_path):
    ds = ntktheory.phase_diagram("relu", sigma_w2=[1.0, 2.0, 2.5], sigma_b2=[0.0, 0.1])
    assert np.isinf(ds.q_star.sel(sigma_w2=2.5)).all() and int(ds.length_diverges.sum()) == 3
    path = tmp_path / "phase.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path).load()
    xr.testing.assert_identical(back.drop_attrs(deep=False), ds.drop_attrs(deep=False))
    assert back.attrs["config"] == ds.attrs["config"]
    assert back.phase.attrs["flag_meanings"] == "ordered critical chaotic"
    assert back.phase.sel(sigma_w2=2.0).values.tolist() == [1, 1]
    assert math.isinf(float(back.q_star.sel(sigma_w2=2.5, sigma_b2=0.0)))


def test_default_grid_is_schoenholz_range():
    ds = ntktheory.phase_diagram("erf", sigma_w2=None, sigma_b2=[0.0, 0.1], critical_line=False)
    assert ds.sizes["sigma_w2"] == 400 and float(ds.sigma_w2[0]) == 1.0 and float(ds.sigma_w2[-1]) == 4.0
    assert "critical_sigma_w2" not in ds


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma_w2": [[1.0, 2.0]]}, ValueError, r"`sigma_w2` must be a 1-D array.*\(1, 2\)"),
        ({"sigma_w2": [1.0, 1.0]}, ValueError, r"`sigma_w2` must not repeat values"),
        ({"sigma_b2": [-0.1, 0.0]}, ValueError, r"`sigma_b2` must be >= 0"),
        ({"sigma_w2": [0.0, 1.0]}, ValueError, r"`sigma_w2` must be > 0"),
        ({"sigma_w2": "1,2"}, TypeError, r"`sigma_w2` must be a real number"),
        ({"critical_line": 1}, TypeError, r"`critical_line` must be True or False, got 1"),
    ],
)
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ntktheory.phase_diagram("tanh", **kwargs)
