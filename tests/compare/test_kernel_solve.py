"""Kernel regression from blocked stores (compare.predict_from_store) against dense numpy solves."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

import ntktheory
from compare import StoreMismatchError, kernel_matrix, predict_from_store, sphere_points

NET = dict(activation="relu", depth=2, sigma_w=1.4, sigma_b=0.1)
N, M, D, B = 47, 13, 24, 10


@pytest.fixture(autouse=True)
def _one_numba_thread(monkeypatch):
    """Tiny blocks: numba's thread start-up per parallel region would cost more than the arithmetic."""
    monkeypatch.setenv("NTKGAP_NUMBA_THREADS", "1")


def _store(x1, x2, path, **network):
    kernel_matrix(x1, x2, store=path, block_size=B, scheduler="threads", n_workers=1, progress=False, **network)
    return path


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("solve")
    rng = np.random.default_rng(0)
    (x, _), (xt, _) = sphere_points(N, D, seed=1), sphere_points(M, D, seed=2)
    y = np.stack([np.sin(2 * x[:, 0]) + x[:, 1], np.cos(x[:, 2])], axis=1) + 0.01 * rng.standard_normal((N, 2))
    return {
        "x": x, "xt": xt, "y": y,
        "train": _store(x, None, tmp / "train.zarr", **NET),
        "test": _store(xt, x, tmp / "test.zarr", **NET),
        "dense": ntktheory.kernels(x, **NET), "dense_test": ntktheory.kernels(xt, x, **NET),
        "tmp": tmp,
    }


def _dense_solve(p, kernel, reg):
    k = p["dense"][kernel].values
    alpha = np.linalg.solve(k + reg * np.eye(N), p["y"])
    return alpha, p["dense_test"][kernel].values @ alpha


@pytest.mark.parametrize(("kernel", "diag_reg", "absolute"),
                         [("ntk", 0.0, False), ("nngp", 0.0, False), ("ntk", 1e-3, False), ("nngp", 0.05, True)])
def test_cg_matches_dense_solve(problem, kernel, diag_reg, absolute):
    fit = predict_from_store(problem["train"], problem["y"], test_store=problem["test"], kernel=kernel,
                             diag_reg=diag_reg, diag_reg_absolute=absolute, rtol=1e-12)
    k = problem["dense"][kernel].values
    reg = diag_reg if absolute else diag_reg * np.trace(k) / N  # neural-tangents' convention by default
    assert fit.attrs["diag_reg_value"] == pytest.approx(reg, rel=tol("diag_reg_value"))
    alpha, mean = _dense_solve(problem, kernel, reg)
    assert fit["mean"].dims == ("test", "output") and fit["alpha"].dims == ("train", "output")
    assert fit.attrs["relative_residual"] <= 1e-12 and (fit.relative_residual <= 1e-12).all()
    assert 0 < fit.attrs["iterations"] <= N
    np.testing.assert_allclose(fit["mean"].values, mean, rtol=tol("cg_mean"), atol=tol("cg_mean") * np.abs(mean).max())
    np.testing.assert_allclose(fit["alpha"].values, alpha,
                               rtol=tol("cg_alpha"), atol=tol("cg_alpha") * np.abs(alpha).max())
    residual = np.linalg.norm(problem["y"] - (k + reg * np.eye(N)) @ fit["alpha"].values, axis=0)
    # the reported residual is the true one
    np.testing.assert_allclose(fit.relative_residual.values, residual / np.linalg.norm(problem["y"], axis=0),
                               rtol=tol("reported_residual"), atol=tol("reported_residual_abs"))


def test_test_kernel_from_store_on_the_fly_and_cholesky_agree(problem):
    kw = dict(kernel="nngp", diag_reg=1e-4)
    from_store = predict_from_store(problem["train"], problem["y"], test_store=problem["test"], **kw)
    on_the_fly = predict_from_store(problem["train"], problem["y"], x_test=problem["xt"], x_train=problem["x"],
                                    **kw, **NET)
    chol = predict_from_store(problem["train"], problem["y"], test_store=problem["test"], solver="cholesky", **kw)
    scale = np.abs(from_store["mean"].values).max()
    np.testing.assert_allclose(on_the_fly["mean"].values, from_store["mean"].values,
                               rtol=0, atol=tol("test_kernel_paths") * scale)
    np.testing.assert_allclose(chol["mean"].values, from_store["mean"].values, rtol=0, atol=tol("cg_mean") * scale)
    assert chol.attrs["solver"] == "cholesky" and chol.attrs["iterations"] == 0
    assert chol.attrs["relative_residual"] < tol("cholesky_residual")
    assert from_store.attrs["activation"] == "relu" and from_store.attrs["depth"] == 2
    for key in ("conventions", "ntkgap_version", "creation_time", "config", "kernel", "diag_reg", "n_train"):
        assert key in from_store.attrs, key


def test_one_target_column_and_no_test_points(problem):
    y = problem["y"][:, 0]
    fit = predict_from_store(problem["train"], y, diag_reg=1e-3)
    both = predict_from_store(problem["train"], problem["y"], diag_reg=1e-3)
    assert "mean" not in fit and fit["alpha"].shape == (N, 1) and fit.attrs["n_test"] == 0
    np.testing.assert_allclose(fit["alpha"].values[:, 0], both["alpha"].values[:, 0], rtol=tol("cg_mean"),
                               atol=tol("cg_mean") * np.abs(fit["alpha"].values).max())
    zero = predict_from_store(problem["train"], np.zeros(N))
    assert zero.attrs["iterations"] == 0 and not zero["alpha"].values.any() and zero.attrs["relative_residual"] == 0


def test_cg_that_stops_early_warns(problem):
    with pytest.warns(RuntimeWarning, match=r"CG stopped after 2 iterations \(max_iterations=2\) with a relative "
                                            r"residual of .* > rtol=1e-10; raise max_iterations"):
        fit = predict_from_store(problem["train"], problem["y"], max_iterations=2)
    assert fit.attrs["relative_residual"] > 1e-10


def test_indefinite_train_kernel_is_refused(problem):
    bad = problem["tmp"] / "indefinite.zarr"
    shutil.copytree(problem["train"], bad)
    ntk = zarr.open_array(str(bad / "ntk"), mode="r+")
    ntk[...] = -ntk[...]
    for solver in ("cg", "cholesky"):
        with pytest.raises(ValueError, match=r"the train kernel plus r I \(r = 0.0\) is not positive definite .*; "
                                             r"pass diag_reg > 0"):
            predict_from_store(bad, problem["y"], solver=solver)


def test_invalid_arguments(problem):
    train, y = problem["train"], problem["y"]
    with pytest.raises(ValueError, match=r"`kernel` must be one of 'ntk', 'nngp'; got 'rbf'"):
        predict_from_store(train, y, kernel="rbf")
    with pytest.raises(ValueError, match=r"`solver` must be one of 'cg', 'cholesky'; got 'lu'"):
        predict_from_store(train, y, solver="lu")
    with pytest.raises(ValueError, match=r"`diag_reg` must be a finite number >= 0; got -1.0"):
        predict_from_store(train, y, diag_reg=-1.0)
    with pytest.raises(TypeError, match=r"`diag_reg` must be a real number >= 0; got '1e-3'"):
        predict_from_store(train, y, diag_reg="1e-3")
    with pytest.raises(TypeError, match=r"`diag_reg_absolute` must be True or False; got 1"):
        predict_from_store(train, y, diag_reg_absolute=1)
    with pytest.raises(ValueError, match=r"`rtol` must be a finite number >= 0; got nan"):
        predict_from_store(train, y, rtol=float("nan"))
    with pytest.raises(ValueError, match=r"`max_iterations` must be a positive integer or None; got 0"):
        predict_from_store(train, y, max_iterations=0)
    with pytest.raises(ValueError, match=r"`y_train` must have shape \(N,\) or \(N, k\) with N = 47 .*; got shape "
                                         r"\(46, 2\)"):
        predict_from_store(train, y[:-1])
    with pytest.raises(ValueError, match=r"pass `test_store` or `x_test`, not both"):
        predict_from_store(train, y, test_store=problem["test"], x_test=problem["xt"])
    with pytest.raises(ValueError, match=r"'x_train', 'depth' are only used to compute the test kernel from "
                                         r"`x_test`; pass x_test too, or drop them"):
        predict_from_store(train, y, x_train=problem["x"], depth=2)
    with pytest.raises(ValueError, match=r"`x_test` needs `x_train`"):
        predict_from_store(train, y, x_test=problem["xt"], **NET)


def test_stores_and_inputs_that_do_not_belong_are_refused(problem):
    train, y, tmp = problem["train"], problem["y"], problem["tmp"]
    with pytest.raises(StoreMismatchError, match=r"`x_train` and the network arguments must be those `store` .* "
                                                 r"was computed with \(depth: store has 2, given 3\)"):
        predict_from_store(train, y, x_test=problem["xt"], x_train=problem["x"], **{**NET, "depth": 3})
    with pytest.raises(StoreMismatchError, match=r"\(x_train \(sha256\): store has '[0-9a-f]{64}', given"):
        predict_from_store(train, y, x_test=problem["xt"], x_train=problem["x"][::-1], **NET)
    other = _store(problem["xt"], problem["x"][:N], tmp / "other_test.zarr", **{**NET, "sigma_b": 0.2})
    with pytest.raises(StoreMismatchError, match=r"`test_store` .* must hold K\(test, X\) of the training inputs "
                                                 r"and network of `store` .* \(sigma_b: store has 0.1, test_store "
                                                 r"has 0.2\)"):
        predict_from_store(train, y, test_store=other)
    with pytest.raises(ValueError, match=r"`store` .* holds a cross kernel K\(x1, x2\); the train kernel must be "
                                         r"symmetric"):
        predict_from_store(problem["test"], y[:M])
    with pytest.raises(ValueError, match=r"`store` '.*missing.zarr' holds no kernel matrix"):
        predict_from_store(tmp / "missing.zarr", y)
    zarr.open_group(str(tmp / "plain.zarr"), mode="w", zarr_format=2).attrs["a"] = 1
    with pytest.raises(StoreMismatchError, match=r"is a Zarr store but not an ntkgap kernel matrix .*; pass as "
                                                 r"`test_store` a store written by compare.kernel_matrix"):
        predict_from_store(train, y, test_store=tmp / "plain.zarr")
    partial = tmp / "partial.zarr"
    shutil.copytree(train, partial)
    flags = zarr.open_array(str(partial / "block_done"), mode="r+")
    flags[1, 3] = False
    root = zarr.open_group(str(partial), mode="r+", zarr_format=2)
    root.attrs["complete"] = 0
    zarr.consolidate_metadata(str(partial), zarr_format=2)
    with pytest.raises(ValueError, match=r"`store` .* is incomplete \(14 of 15 blocks written\); rerun the "
                                         r"kernel_matrix call"):
        predict_from_store(partial, y)
