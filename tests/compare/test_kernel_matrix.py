"""Blocked kernel matrices (compare.kernel_matrix, ntkgap kernel --out K.zarr): values, storage, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

import ntktheory
from compare import StoreMismatchError, cli, kernel_matrix

TANH = dict(activation="tanh", depth=3, sigma_w=1.5, sigma_b=0.1)
RELU = dict(activation="relu", depth=3, sigma_w=1.4, sigma_b=0.1)


@pytest.fixture(autouse=True)
def _one_numba_thread(monkeypatch):
    """Tiny blocks: numba's thread start-up per parallel region would cost more than the arithmetic."""
    monkeypatch.setenv("NTKGAP_NUMBA_THREADS", "1")


def _blocked(x1, x2=None, *, store, block_size, **network):
    return kernel_matrix(x1, x2, store=store, block_size=block_size, scheduler="threads", n_workers=1,
                         progress=False, **network)


def _assert_matches_memory(ds, ref, rng, n_blocks=6):
    """Random blocks of the store (plus the corners) against the in-memory kernels."""
    b = ds.attrs["block_size"]
    nb1, nb2 = -(-ds.sizes["x1"] // b), -(-ds.sizes["x2"] // b)
    picks = {(0, 0), (nb1 - 1, nb2 - 1), (nb1 - 1, 0), (0, nb2 - 1)}
    picks |= {(int(rng.integers(nb1)), int(rng.integers(nb2))) for _ in range(n_blocks)}
    for v in ("nngp", "ntk"):
        scale = float(np.abs(ref[v].values).max())
        for i, j in picks:
            rows, cols = slice(i * b, (i + 1) * b), slice(j * b, (j + 1) * b)
            got = ds[v].isel(x1=rows, x2=cols).values
            np.testing.assert_allclose(got, ref[v].values[rows, cols],
                                       rtol=tol("kernel_blocks"), atol=tol("kernel_blocks") * scale,
                                       err_msg=f"{v} block ({i}, {j})")


@pytest.mark.parametrize(
    ("n1", "n2", "block_size", "network"),
    [
        (23, None, 5, RELU),   # symmetric, N not a multiple of B
        (17, None, 4, TANH),   # symmetric, Mehler series (no closed form)
        (13, 9, 4, TANH),      # cross kernel, both sizes odd
        (11, None, 32, RELU),  # a single block bigger than N
        (9, 10, 10, RELU),     # cross, one block row
    ],
    ids=["sym-relu", "sym-tanh", "cross-tanh", "one-block", "cross-one-row"],
)
def test_blocks_equal_in_memory_kernels(tmp_path, n1, n2, block_size, network):
    rng = np.random.default_rng(n1)
    x1 = rng.standard_normal((n1, 6))
    x2 = None if n2 is None else rng.standard_normal((n2, 6))
    res = _blocked(x1, x2, store=tmp_path / "K.zarr", block_size=block_size, **network)
    ref = ntktheory.kernels(x1, x2, **network)
    _assert_matches_memory(res.dataset, ref, rng)
    nb1, nb2 = -(-n1 // block_size), -(-(n2 or n1) // block_size)
    assert res.n_blocks == (nb1 * (nb1 + 1) // 2 if n2 is None else nb1 * nb2) == res.n_computed
    # the whole store too (small): symmetric stores are exactly symmetric, every block is flagged
    with xr.open_zarr(tmp_path / "K.zarr") as ds:
        for v in ("nngp", "ntk"):
            scale = float(np.abs(ref[v].values).max())
            np.testing.assert_allclose(ds[v].values, ref[v].values,
                                       rtol=tol("kernel_blocks"), atol=tol("kernel_blocks") * scale)
            if n2 is None:
                np.testing.assert_array_equal(ds[v].values, ds[v].values.T)
        assert bool(ds.block_done.all())


def test_store_opens_with_plain_xarray_with_provenance(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 4))
    res = _blocked(x, store=tmp_path / "K.zarr", block_size=4, **TANH)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zarr/xarray warnings, consolidated or not
        for consolidated in (True, False):
            ds = xr.open_zarr(tmp_path / "K.zarr", consolidated=consolidated)
            assert ds.ntk.dims == ds.nngp.dims == ("x1", "x2") and ds.ntk.dtype == np.float64
            assert ds.ntk.chunks == ((4, 4, 2), (4, 4, 2))
            assert ds.block_done.dims == ("x1_block", "x2_block") and ds.x1_block.values.tolist() == [0, 4, 8]
    attrs = res.dataset.attrs
    assert attrs["complete"] == 1 and attrs["block_size"] == 4
    assert "transposed below the diagonal" in attrs["storage"]
    for key in ("conventions", "ntkgap_version", "creation_time", "config", "activation", "depth", "sigma_w"):
        assert key in attrs, key
    assert attrs["activation"] == "tanh" and attrs["depth"] == 3
    config = json.loads(attrs["config"])
    assert config["block_size"] == 4 and config["n1"] == 10 and config["x2_sha256"] is None
    assert config["width"] is None and config["parameterization"] == "ntk"  # defaults recorded too
    assert res.dataset.ntk.attrs["long_name"].startswith("neural tangent kernel")


def test_rerun_recomputes_only_unflagged_blocks_and_ignores_half_written_chunks(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((14, 5))
    path = tmp_path / "K.zarr"
    first = _blocked(x, store=path, block_size=4, **RELU)
    assert first.n_computed == 10
    kept = {name: _stamp(path / "ntk" / name) for name in ("0.0", "0.1", "1.1")}
    # a crash after block (1, 2)'s data but before its flag, and in the middle of block (2, 3)'s chunk
    flags = zarr.open_array(str(path / "block_done"), mode="r+")
    flags[1, 2] = flags[2, 3] = flags[3, 2] = False
    (path / "ntk" / "2.3").write_bytes(b"torn")
    (path / "nngp" / "3.2.0123abcd.partial").write_bytes(b"left by a killed writer")
    again = _blocked(x, store=path, block_size=4, **RELU)
    assert (again.n_skipped, again.n_computed) == (8, 2)
    assert {name: _stamp(path / "ntk" / name) for name in kept} == kept  # finished blocks untouched
    assert not list(path.glob("*/*.partial"))
    fresh = _blocked(x, store=tmp_path / "fresh.zarr", block_size=4, **RELU)
    _assert_identical_stores(again.dataset, fresh.dataset)
    assert _blocked(x, store=path, block_size=4, **RELU).n_computed == 0


def _stamp(path):
    """What rewriting a chunk (Zarr writes aside, then renames) would change."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def _assert_identical_stores(a, b):
    a, b = a.load(), b.load()
    for ds in (a, b):
        ds.attrs.pop("creation_time")
    xr.testing.assert_identical(a, b)


def test_configuration_or_inputs_mismatch_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3))
    path = tmp_path / "K.zarr"
    _blocked(x, store=path, block_size=4, **RELU)
    with pytest.raises(StoreMismatchError, match=r"different kernel matrix configuration \(depth: store has 3, "
                                                 r"this run has 2\); results of different kernel matrices"):
        _blocked(x, store=path, block_size=4, **{**RELU, "depth": 2})
    with pytest.raises(StoreMismatchError, match=r"\(x1_sha256: store has '[0-9a-f]{64}', this run has '[0-9a-f]"):
        _blocked(x + 1e-9, store=path, block_size=4, **RELU)
    with pytest.raises(StoreMismatchError, match=r"block_size: store has 4, this run has 3"):
        _blocked(x, store=path, block_size=3, **RELU)
    with pytest.raises(StoreMismatchError, match=r"x2_sha256: store has None, this run has '[0-9a-f]{64}'"):
        _blocked(x, x, store=path, block_size=4, **RELU)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(StoreMismatchError, match=r"'.*other' exists and is not an ntkgap kernel matrix store"):
        _blocked(x, store=tmp_path / "other", block_size=4, **RELU)
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=2).attrs["a"] = 1
    with pytest.raises(StoreMismatchError, match=r"is a Zarr store but not an ntkgap kernel matrix "
                                                 r"\(no 'ntkgap_kernel_matrix' attr\)"):
        _blocked(x, store=tmp_path / "plain.zarr", block_size=4, **RELU)


def test_invalid_arguments_are_refused_before_any_work(tmp_path):
    x = np.random.default_rng(3).standard_normal((6, 3))
    path = tmp_path / "K.zarr"
    with pytest.raises(ValueError, match=r"`block_size` must be a positive integer; got 0"):
        _blocked(x, store=path, block_size=0)
    with pytest.raises(TypeError, match=r"`block_size` must be a positive integer; got 2.5"):
        _blocked(x, store=path, block_size=2.5)
    with pytest.raises(TypeError, match=r"`block_size` must be a positive integer; got True"):
        _blocked(x, store=path, block_size=True)
    with pytest.raises(ValueError, match=r"`x1` must be at least 2-D: .*; got shape \(6,\)"):
        _blocked(x[:, 0], store=path, block_size=2)
    with pytest.raises(TypeError, match=r"`x2` must be an array of real numbers, at least 2-D: .*; got str"):
        _blocked(x, "abc", store=path, block_size=2)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"`x2` must be finite; entry \(4, 1\) is nan"):
        _blocked(x, bad, store=path, block_size=2)
    with pytest.raises(NotImplementedError, match=r"kernel_matrix stores kernels on dims \('x1', 'x2'\); these "
                                                  r"network arguments give dims \('depth', 'x1', 'x2'\)"):
        _blocked(x, store=path, block_size=2, all_depths=True)
    with pytest.raises(ValueError, match=r"`depth`"):  # ntktheory's own message, unchanged
        _blocked(x, store=path, block_size=2, depth=-1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'activaton'"):
        _blocked(x, store=path, block_size=2, activaton="relu")
    assert not path.exists()


def test_cli_writes_blocked_store(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((9, 4)), rng.standard_normal((7, 4))
    np.save(tmp_path / "x1.npy", x1)
    np.save(tmp_path / "x2.npy", x2)
    out = tmp_path / "K.zarr"

    def argv(depth):
        return ["kernel", "--inputs", str(tmp_path / "x1.npy"), "--inputs2", str(tmp_path / "x2.npy"), "--activation",
                "tanh", "--depth", str(depth), "--sigma-w", "1.5", "--sigma-b", "0.1", "--out", str(out),
                "--block-size", "4", "--scheduler", "threads", "--workers", "1", "--no-progress"]

    assert cli.main(argv(3)) == 0
    text = capsys.readouterr().out
    assert "nngp/ntk of shape (9, 7)" in text and "(6 blocks of 4: 0 reused, 6 computed)" in text
    assert "peak resident memory" in text and f"wrote {out}" in text
    ref = ntktheory.kernels(x1, x2, **TANH)
    with xr.open_zarr(out) as ds:
        np.testing.assert_allclose(ds.ntk.values, ref.ntk.values,
                                   rtol=tol("kernel_blocks"), atol=tol("kernel_blocks") * float(ref.ntk.max()))
    assert cli.main(argv(3)) == 0 and "(6 blocks of 4: 6 reused, 0 computed)" in capsys.readouterr().out
    assert cli.main(argv(2)) == 2
    assert "different kernel matrix configuration (depth: store has 3, this run has 2)" in capsys.readouterr().err


def test_cli_errors_exit_2(tmp_path, capsys):
    assert cli.main(["kernel", "--out", str(tmp_path / "K.txt")]) == 2
    assert "--out must end in .nc or .zarr, got" in capsys.readouterr().err
    assert cli.main(["kernel", "--out", str(tmp_path / "K.nc"), "--block-size", "8"]) == 2
    assert "--block-size 8 needs --out ending in .zarr" in capsys.readouterr().err
    assert cli.main(["kernel", "--out", str(tmp_path / "K.zarr"), "--block-size", "0", "--scheduler", "threads"]) == 2
    assert "`block_size` must be a positive integer; got 0" in capsys.readouterr().err
    assert cli.main(["kernel", "--out", str(tmp_path / "K.zarr"), "--all-depths", "--scheduler", "threads"]) == 2
    assert "kernel_matrix stores kernels on dims ('x1', 'x2')" in capsys.readouterr().err


def _upper_flag_files(flags):
    """Chunk files of the flags of blocks (i, j), i <= j (the lower ones are their mirrors)."""
    names = [p.name.split(".") for p in flags.iterdir()]
    return [n for n in names if len(n) == 2 and all(k.isdigit() for k in n) and int(n[0]) <= int(n[1])]


_DRIVER = """
import sys
from compare import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_store(tmp_path):
    """The CLI on a LocalCluster of worker processes, SIGKILLed (driver, nanny and worker alike) once
    some blocks are flagged; the same call then computes only the others. (The rerun and the
    uninterrupted reference run on threads: a block does not depend on the kind of worker.)"""
    x = np.random.default_rng(5).standard_normal((96, 8))
    np.save(tmp_path / "x.npy", x)
    store = tmp_path / "K.zarr"
    argv = ["kernel", "--inputs", str(tmp_path / "x.npy"), "--activation", "relu", "--depth", "3", "--sigma-w", "1.4",
            "--sigma-b", "0.1", "--out", str(store), "--block-size", "12", "--scheduler", "processes",
            "--workers", "1", "--no-progress"]
    nb = 8
    total = nb * (nb + 1) // 2
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, *argv], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    flags = store / "block_done"
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if flags.exists() and len(_upper_flag_files(flags)) >= 6:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run finished (or failed) before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        while True:  # until the worker and nanny processes are gone as well
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = zarr.open_array(str(flags), mode="r")[...]
    finished = [(i, j) for i in range(nb) for j in range(i, nb) if done[i, j]]
    assert 6 <= len(finished) < total
    stamps = {(v, i, j): _stamp(store / v / f"{i}.{j}") for v in ("nngp", "ntk") for i, j in finished}
    with xr.open_zarr(store) as partial:
        assert partial.attrs["complete"] == 0
    resumed = _blocked(x, store=store, block_size=12, **RELU)
    fresh = _blocked(x, store=tmp_path / "fresh.zarr", block_size=12, **RELU)
    assert (resumed.n_skipped, resumed.n_computed) == (len(finished), total - len(finished))
    assert {(v, i, j): _stamp(store / v / f"{i}.{j}") for v, i, j in stamps} == stamps  # not recomputed
    assert not list(store.glob("*/*.partial"))
    _assert_identical_stores(resumed.dataset, fresh.dataset)
