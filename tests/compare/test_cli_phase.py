"""``ntkgap phase``: NetCDF + PNG written, values equal to the library call, errors reported."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ntktheory
from compare.cli import main


def test_phase_writes_netcdf_and_png(tmp_path, capsys):
    out = tmp_path / "sub" / "phase.nc"
    rc = main(["phase", "--activation", "erf", "--sigma-w2", "0.5", "3", "12", "--sigma-b2", "0", "0.2", "5",
               "--out", str(out)])
    assert rc == 0
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    ds = xr.open_dataset(out).load()
    expected = ntktheory.phase_diagram("erf", sigma_w2=np.linspace(0.5, 3, 12), sigma_b2=np.linspace(0, 0.2, 5))
    for name in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase", "critical_sigma_w2"):
        np.testing.assert_array_equal(ds[name].values, expected[name].values)
    assert "wrote" in capsys.readouterr().out


def test_phase_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "phase" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sigma-w2", "1", "2", "1.5"], "--sigma-w2 NUM must be an integer >= 2, got 1.5"),
        (["--sigma-b2", "0.3", "0.1", "5"], "--sigma-b2 needs START < STOP"),
        (["--sigma-w2", "-1", "2", "5"], "`sigma_w2` must be > 0"),
        (["--activation", "foo(x)"], "calls unknown function"),
    ],
)
def test_phase_errors_are_reported(tmp_path, capsys, argv, message):
    assert main(["phase", *argv, "--out", str(tmp_path / "p.nc")]) == 2
    assert message in capsys.readouterr().err


def test_phase_rejects_non_netcdf_output(tmp_path, capsys):
    rc = main(["phase", "--sigma-w2", "1", "2", "3", "--sigma-b2", "0", "0.1", "2", "--out", str(tmp_path / "p.csv")])
    assert rc == 2 and "--out must end in .nc" in capsys.readouterr().err
