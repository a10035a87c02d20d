"""Property-based tests (hypothesis): laws the kernels obey for any input, and the public entry
points on arbitrary arrays either work or refuse with a ValueError/TypeError that names the argument,
never a numba/numpy internal error and never a silent cast."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances_toplevel import tol  # tests/ is on sys.path (pytest rootdir import)

import empirical
import ntktheory

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def points(draw, max_n=5, max_d=4):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    x = draw(hnp.arrays(np.float64, (n, d), elements=finite))
    # keep every point off the origin (the kernels' correlations need |x| > 0)
    return x + np.where(np.linalg.norm(x, axis=1, keepdims=True) < 1e-3, 1.0, 0.0)


ACTS = st.sampled_from(["relu", "tanh", "erf", "gelu"])


@FAST
@given(x=points(), act=ACTS, depth=st.integers(1, 3), sw=st.floats(0.5, 2.0), sb=st.floats(0.0, 0.5))
def test_kernels_are_symmetric_psd_and_permutation_invariant(x, act, depth, sw, sb):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow/invalid warnings for any input
        ds = ntktheory.kernels(x, activation=act, depth=depth, sigma_w=sw, sigma_b=sb)
    perm = np.random.default_rng(len(x)).permutation(len(x))
    dp = ntktheory.kernels(x[perm], activation=act, depth=depth, sigma_w=sw, sigma_b=sb)
    for name in ("nngp", "ntk"):
        k = ds[name].values
        scale = np.abs(k).max()
        np.testing.assert_allclose(k, k.T, rtol=0, atol=tol("symmetry") * scale)
        assert np.linalg.eigvalsh((k + k.T) / 2).min() >= -tol("psd") * scale
        np.testing.assert_allclose(dp[name].values, k[np.ix_(perm, perm)], rtol=tol("permutation"),
                                   atol=tol("symmetry") * scale)


@FAST
@given(x=points(), depth=st.integers(1, 3), c=st.floats(0.1, 10.0), sw=st.floats(0.5, 2.0), a=st.floats(0.3, 3.0))
def test_relu_kernels_scale_with_the_input_norm_squared_and_sigma_w2_per_layer(x, depth, c, sw, a):
    """Without biases relu is positively homogeneous: K(c x) = c^2 K(x); and scaling sigma_w^2 by a
    scales the readout's NNGP and NTK by a^(L+1) (every layer, the readout included)."""
    base = ntktheory.kernels(x, activation="relu", depth=depth, sigma_w=sw, sigma_b=0.0)
    scaled = ntktheory.kernels(c * x, activation="relu", depth=depth, sigma_w=sw, sigma_b=0.0)
    wide = ntktheory.kernels(x, activation="relu", depth=depth, sigma_w=sw * np.sqrt(a), sigma_b=0.0)
    for name in ("nngp", "ntk"):
        k = base[name].values
        # antipodal points: rounding moves relu's step kernel by ~3.4e-9 of its range (tolerances_toplevel.py)
        eps = tol("relu_homogeneity")
        atol = eps * np.abs(k).max()
        np.testing.assert_allclose(scaled[name].values, c**2 * k, rtol=eps, atol=c**2 * atol)
        np.testing.assert_allclose(wide[name].values, a ** (depth + 1) * k, rtol=eps, atol=a ** (depth + 1) * atol)


# --- public entry points on arbitrary arrays -------------------------------------------------------

def _net(d):
    return empirical.MLP(d, width=8, depth=1, activation="tanh", seed=0)


def _kernels(x):
    return ntktheory.kernels(x, activation="tanh", depth=1)


def _ntk(x):
    return empirical.ntk(_net(np.shape(x)[-1] if np.ndim(x) == 2 and np.shape(x)[-1] else 3), x)


def _nngp(x):
    return empirical.nngp(_net(np.shape(x)[-1] if np.ndim(x) == 2 and np.shape(x)[-1] else 3), x)


def _predict(x):
    n = np.shape(x)[0] if np.ndim(x) >= 1 else 1
    return ntktheory.predict(x, np.zeros(n), x, activation="relu", depth=1)


def _predict_targets(y):
    x = np.random.default_rng(0).standard_normal((max(np.shape(y)[0], 1) if np.ndim(y) >= 1 else 1, 3))
    return ntktheory.predict(x, y, x, activation="relu", depth=1)


ENTRY_POINTS = {"ntktheory.kernels": (_kernels, "x1"), "empirical.ntk": (_ntk, "x1"), "empirical.nngp": (_nngp, "x1"),
                "ntktheory.predict": (_predict, "x_train"), "ntktheory.predict y": (_predict_targets, "y_train")}

DTYPES = st.sampled_from([np.int64, np.int32, np.float32, np.float64, np.complex128, object, np.bool_])


@st.composite
def arrays(draw):
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    dtype = draw(DTYPES)
    special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    values = draw(hnp.arrays(np.float64, shape, elements=finite))
    if special is not None and values.size:
        values.flat[draw(st.integers(0, values.size - 1))] = special
    if dtype is object:
        arr = values.astype(object)
    elif np.dtype(dtype).kind in "iub":
        arr = np.nan_to_num(values, posinf=1, neginf=-1).astype(dtype)
    else:
        arr = values.astype(dtype) + (0.5j if np.dtype(dtype).kind == "c" else 0)
    if draw(st.booleans()) and arr.ndim >= 1:  # non-contiguous: a strided view of a larger array
        arr = np.repeat(arr, 2, axis=0)[::2]
    return arr


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arr=arrays())
def test_entry_points_work_or_refuse_naming_the_argument(entry, arr):
    fn, argname = ENTRY_POINTS[entry]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning (silent cast) or a RuntimeWarning fails the test
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # repeated training points (e.g. [[1], [1]]) make the train kernel singular: predict's
        # documented advice to regularise is a correct answer to such an input, not a failure
        warnings.filterwarnings("ignore", category=ntktheory.KernelConditionWarning)
        try:
            out = fn(arr)
        except (ValueError, TypeError) as err:
            assert f"`{argname}`" in str(err), f"{type(err).__name__} without the argument's name: {err}"
            return
    # it worked: then the input was real, finite and well shaped, and the result is finite
    targets_ok = entry == "ntktheory.predict y" and arr.dtype.kind in "bO"  # 0/1 or Python floats as targets
    assert arr.dtype.kind in "iuf" or targets_ok, f"dtype {arr.dtype} accepted"
    assert np.all(np.isfinite(arr.astype(float)))
    values = out["mean"] if entry.startswith("ntktheory.predict") else out
    if hasattr(values, "ntk"):
        values = values.ntk
    assert np.all(np.isfinite(np.asarray(values, dtype=float)))


@FAST
@given(x=points())
def test_int_float32_and_non_contiguous_inputs_give_the_float64_result(x):
    ref = ntktheory.kernels(x, activation="erf", depth=2).ntk.values
    strided = np.repeat(x, 2, axis=1)[:, ::2]
    assert not strided.flags.c_contiguous or x.shape[1] == 1
    np.testing.assert_array_equal(ntktheory.kernels(strided, activation="erf", depth=2).ntk.values, ref)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(ntktheory.kernels(x32, activation="erf", depth=2).ntk.values,
                               ntktheory.kernels(x32.astype(np.float64), activation="erf", depth=2).ntk.values,
                               rtol=0, atol=0)
    xi = np.round(x).astype(np.int64) + np.where(np.abs(np.round(x)).sum(1, keepdims=True) == 0, 1, 0)
    np.testing.assert_array_equal(ntktheory.kernels(xi, activation="erf", depth=2).ntk.values,
                                  ntktheory.kernels(xi.astype(float), activation="erf", depth=2).ntk.values)
