"""``ntkgap kernel``: built-in example table, .npy inputs to NetCDF, error exit codes."""

from __future__ import annotations

import numpy as np
import xarray as xr

import ntktheory
from compare import cli


def test_builtin_example_prints_table(capsys):
    assert cli.main(["kernel", "--activation", "relu", "--depth", "2", "--sigma-w", "1.4142135623730951"]) == 0
    out = capsys.readouterr().out
    assert "| angle(x1_0, x1_j) / pi | NNGP | NTK |" in out
    # angle 0 row (THEORY.md): relu at sigma_w^2 = 2, |x|^2 = d: Sigma(x, x) = 2, Theta(x, x) = 2 (L + 1)
    assert "| 0.000 | 2.0000000000 | 6.0000000000 |" in out


def test_npy_inputs_to_netcdf(tmp_path):
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    np.save(tmp_path / "x1.npy", x1)
    np.save(tmp_path / "x2.npy", x2)
    out = tmp_path / "K.nc"
    argv = ["kernel", "--inputs", str(tmp_path / "x1.npy"), "--inputs2", str(tmp_path / "x2.npy"), "--activation",
            "tanh", "--depth", "3", "--sigma-w", "1.5", "--sigma-b", "0.1", "--all-depths", "--out", str(out)]
    assert cli.main(argv) == 0
    ds = xr.open_dataset(out)
    want = ntktheory.kernels(x1, x2, activation="tanh", depth=3, sigma_w=1.5, sigma_b=0.1, all_depths=True)
    np.testing.assert_array_equal(ds.ntk.values, want.ntk.values)
    assert ds.ntk.dims == ("depth", "x1", "x2")
    assert ds.attrs["activation"] == "tanh"
    ds.close()


def test_errors_exit_2(tmp_path, capsys):
    assert cli.main(["kernel", "--parameterization", "standard"]) == 2
    assert "`width` is required with parameterization='standard'" in capsys.readouterr().err
    assert cli.main(["kernel", "--out", str(tmp_path / "K.csv")]) == 2
    assert "--out must end in .nc or .zarr" in capsys.readouterr().err
    assert cli.main(["kernel", "--inputs", str(tmp_path / "missing.npy")]) == 2
    assert "could not be read as a .npy array" in capsys.readouterr().err


def test_architecture_presets_and_files(tmp_path, capsys):
    from ntktheory import layers as L

    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 1, 6, 6))
    np.save(tmp_path / "img.npy", x)
    out = tmp_path / "K.nc"
    argv = ["kernel", "--inputs", str(tmp_path / "img.npy"), "--architecture", "cnn-gap", "--depth", "2",
            "--activation", "erf", "--sigma-w", "1.3", "--sigma-b", "0.1", "--out", str(out)]
    assert cli.main(argv) == 0
    want = ntktheory.kernels(x, architecture=L.preset("cnn-gap", depth=2, activation="erf", sigma_w=1.3,
                                                      sigma_b=0.1))
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.ntk.values, want.ntk.values)
        assert ds.attrs["spatial_form"] == "full"
    spec = tmp_path / "net.toml"
    spec.write_text('[[layers]]\ntype = "conv"\nkernel_size = 2\n[[layers]]\ntype = "act"\nname = "relu"\n'
                    '[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "dense"\n')
    assert cli.main(["kernel", "--inputs", str(tmp_path / "img.npy"), "--architecture", str(spec)]) == 0
    assert "serial(Conv(kernel_size=2" in capsys.readouterr().out
    assert cli.main(["kernel", "--architecture", "cnn"]) == 2
    assert "needs --inputs (images (N, C, H, W)" in capsys.readouterr().err
    assert cli.main(["kernel", "--inputs", str(tmp_path / "img.npy"), "--architecture", "resnet"]) == 2
    assert "--architecture must be one of fcn, cnn, cnn-gap or a .json/.toml file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"type": "pool"}]')
    assert cli.main(["kernel", "--inputs", str(tmp_path / "img.npy"), "--architecture", str(bad)]) == 2
    assert "unknown type 'pool'" in capsys.readouterr().err
