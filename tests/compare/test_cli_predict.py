"""``ntkgap predict``: .npy data to NetCDF equal to ntktheory.predict, --help, error exit codes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ntktheory
from compare import cli


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((7, 3)), rng.standard_normal((4, 3))
    y = np.stack([np.sin(x[:, 0]), x[:, 1]], axis=1)
    for name, arr in (("x", x), ("y", y), ("xt", xt)):
        np.save(tmp_path / f"{name}.npy", arr)
    files = ["--train", str(tmp_path / "x.npy"), "--targets", str(tmp_path / "y.npy"), "--test",
             str(tmp_path / "xt.npy")]
    return x, y, xt, files


def test_npy_to_netcdf_equals_ntktheory_predict(tmp_path, data, capsys):
    x, y, xt, files = data
    out = tmp_path / "P.nc"
    argv = ["predict", *files, "--time", "0", "2.5", "inf", "--learning-rate", "0.5", "--diag-reg", "1e-4",
            "--activation", "erf", "--depth", "2", "--sigma-w", "1.5", "--sigma-b", "0.1", "--out", str(out)]
    assert cli.main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    got = xr.open_dataset(out)
    want = ntktheory.predict(x, y, xt, time=[0.0, 2.5, np.inf], learning_rate=0.5, diag_reg=1e-4, activation="erf",
                             depth=2, sigma_w=1.5, sigma_b=0.1)
    xr.testing.assert_equal(got.drop_attrs(), want.drop_attrs())
    assert got.attrs["activation"] == "erf" and got.attrs["kernel"] == "ntk"
    got.close()


def test_marginal_steps_and_bayesian(tmp_path, data):
    x, y, xt, files = data
    out = tmp_path / "V.nc"
    assert cli.main(["predict", *files, "--kernel", "nngp", "--steps", "1", "10", "--learning-rate", "0.3",
                     "--covariance", "marginal", "--out", str(out)]) == 0
    got = xr.open_dataset(out)
    want = ntktheory.predict(x, y, xt, kernel="nngp", steps=[1, 10], learning_rate=0.3, covariance="marginal")
    assert got["variance"].dims == ("step", "test")
    np.testing.assert_array_equal(got["variance"].values, want["variance"].values)
    got.close()
    out = tmp_path / "B.nc"
    assert cli.main(["predict", *files, "--method", "bayesian", "--covariance", "none", "--diag-reg", "1e-3",
                     "--diag-reg-absolute", "--out", str(out)]) == 0
    got = xr.open_dataset(out)
    want = ntktheory.predict(x, y, xt, method="bayesian", covariance=False, diag_reg=1e-3, diag_reg_absolute=True)
    np.testing.assert_array_equal(got["mean"].values, want["mean"].values)
    assert set(got.data_vars) == {"mean"}
    got.close()


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["predict", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--train", "--targets", "--test", "--out", "--time", "--steps", "--diag-reg", "--covariance",
                   "--activation", "--depth", "--sigma-w", "--parameterization"):
        assert option in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "predict" in capsys.readouterr().out


def test_errors_exit_2(tmp_path, data, capsys):
    _, _, _, files = data
    assert cli.main(["predict", *files, "--out", str(tmp_path / "P.zarr")]) == 2
    assert "--out must end in .nc" in capsys.readouterr().err
    assert cli.main(["predict", *files, "--time", "-1", "--out", str(tmp_path / "P.nc")]) == 2
    assert "`time` must be >= 0" in capsys.readouterr().err
    assert cli.main(["predict", *files, "--kernel", "cnn", "--out", str(tmp_path / "P.nc")]) == 2
    assert "`kernel` must be one of 'ntk', 'nngp'; got 'cnn'" in capsys.readouterr().err
    assert cli.main(["predict", *files, "--parameterization", "standard", "--out", str(tmp_path / "P.nc")]) == 2
    assert "`width` is required with parameterization='standard'" in capsys.readouterr().err
    bad = ["predict", "--train", str(tmp_path / "missing.npy"), *files[2:], "--out", str(tmp_path / "P.nc")]
    assert cli.main(bad) == 2
    assert "--train" in capsys.readouterr().err
    np.save(tmp_path / "short.npy", np.ones(3))
    assert cli.main(["predict", *files[:2], "--targets", str(tmp_path / "short.npy"), *files[4:],
                     "--out", str(tmp_path / "P.nc")]) == 2
    assert "`y_train` must have shape (7,) or (7, k)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --time and --steps are exclusive
        cli.main(["predict", *files, "--time", "1", "--steps", "1", "--out", str(tmp_path / "P.nc")])
    assert "not allowed with argument" in capsys.readouterr().err
