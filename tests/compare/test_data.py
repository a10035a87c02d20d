import gzip
import pickle
import struct

import numpy as np
import pytest
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

from compare import load_cifar10, load_digits, load_mnist, load_user_arrays, normalize_to_sphere, sphere_points


def test_digits_on_sphere():
    x, y = load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    np.testing.assert_allclose(np.sum(x**2, axis=1), 64.0, rtol=tol("sphere_norms"))
    assert set(np.unique(y)) == set(range(10))


def test_sphere_points_correlation():
    x, _ = sphere_points(200, 400, correlation=0.6, seed=1)
    np.testing.assert_allclose(np.sum(x**2, axis=1), 400.0, rtol=tol("sphere_norms"))
    cos = (x @ x.T / 400)[np.triu_indices(200, 1)]
    assert abs(cos.mean() - 0.6) < tol("sphere_correlation")
    with pytest.raises(ValueError, match=r"`correlation` must lie in \[0, 1\); got 1.5"):
        sphere_points(3, 3, correlation=1.5)


def test_normalize_rejects_zero_rows():
    with pytest.raises(ValueError, match="all-zero row"):
        normalize_to_sphere(np.zeros((2, 3)))


def test_user_arrays(tmp_path):
    x = np.arange(1, 25, dtype=float).reshape(4, 2, 3)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", x=x, y=np.array([1, 2, 3, 4]))
    xa, ya = load_user_arrays(tmp_path / "a.npy")
    xb, yb = load_user_arrays(tmp_path / "b.npz")
    assert xa.shape == (4, 6) and ya.tolist() == [0, 0, 0, 0] and yb.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(xb[0], x[0].ravel() / np.linalg.norm(x[0]) * np.sqrt(6))
    np.savez(tmp_path / "c.npz", data=x)
    with pytest.raises(ValueError, match=r"must hold an array named 'x'.*\['data'\]"):
        load_user_arrays(tmp_path / "c.npz")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"must end in '.npy' or '.npz'"):
        load_user_arrays(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_user_arrays(tmp_path / "missing.npz")


def _idx(path, arr, gz):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    _idx(tmp_path / "t10k-images-idx3-ubyte", images, gz)
    _idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    x, y = load_mnist(tmp_path, split="test")
    assert x.shape == (5, 784) and y.tolist() == labels.tolist()
    centred = images.reshape(5, -1) / 255.0
    centred = centred - centred.mean(0)
    np.testing.assert_allclose(x, centred / np.linalg.norm(centred, axis=1, keepdims=True) * 28.0,
                               rtol=tol("sphere_norms"))
    with pytest.raises(FileNotFoundError, match="ntkgap does not download data"):
        load_mnist(tmp_path, split="train")


def test_cifar10_pickle_batches(tmp_path):
    rng = np.random.default_rng(0)
    for i in (1, 2):
        batch = {b"data": rng.integers(0, 256, size=(3, 3072), dtype=np.uint8), b"labels": [i, i + 1, i + 2]}
        with open(tmp_path / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch, f)
    x, y = load_cifar10(tmp_path)
    assert x.shape == (6, 3072) and y.tolist() == [1, 2, 3, 2, 3, 4]
    np.testing.assert_allclose(np.sum(x**2, axis=1), 3072.0, rtol=tol("sphere_norms"))
    x4, _ = load_cifar10(tmp_path, limit=4)
    assert x4.shape == (4, 3072)
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 test batches"):
        load_cifar10(tmp_path, split="test")
    with pytest.raises(ValueError, match="`split` must be 'train' or 'test'; got 'val'"):
        load_cifar10(tmp_path, split="val")
