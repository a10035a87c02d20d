"""Input data with no download: bundled digits, synthetic sphere points, user arrays, MNIST/CIFAR files.

All loaders return ``(x, y)`` float64 arrays, x of shape (N, d) (or images (N, C, H, W) with
``images=True``) and integer labels y of shape (N,).
NTK practice normalises inputs to the sphere of radius sqrt(d), so that x.x/d = 1 and the
first-layer variance is sigma_w^2 + sigma_b^2 for every point; :func:`normalize_to_sphere` does it.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from ntktheory._validate import check_int, check_real

__all__ = [
    "LABEL_RULES",
    "binary_targets",
    "digits_task",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "load_user_arrays",
    "normalize_to_sphere",
    "sphere_points",
]


def normalize_to_sphere(x: np.ndarray) -> np.ndarray:
    """Scale every row of ``x`` (N, d) to norm sqrt(d).

    Examples
    --------
    >>> normalize_to_sphere(np.array([[3.0, 4.0]])).tolist()
    [[0.848528137423857, 1.1313708498984762]]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`x` must be 2-D (n_points, n_features); got shape {x.shape!r}.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"`x` has {int(np.sum(norms == 0))} all-zero row(s), which cannot be put on the sphere.")
    return x / norms * np.sqrt(x.shape[1])


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0, keepdims=True)


def _images(x: np.ndarray, shape: tuple[int, int, int], images: bool) -> np.ndarray:
    """Flat (N, d) rows as they are, or as images (N, C, H, W) (rows in C, H, W order)."""
    return x.reshape(len(x), *shape) if images else x


def load_digits(*, center: bool = True, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, d = 64), on the sphere of radius sqrt(64).

    Parameters
    ----------
    center
        Subtract the mean image before normalising (removes the large common component that
        would otherwise make every pair of inputs strongly correlated).
    images
        Return x as images (N, 1, 8, 8) instead of (N, 64) (the same numbers).
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = bunch.data.astype(np.float64)
    return _images(normalize_to_sphere(_centre(x) if center else x), (1, 8, 8), images), bunch.target.astype(np.int64)


#: The rules :func:`binary_targets` turns integer class labels into +1 / -1 targets by.
LABEL_RULES: tuple[str, ...] = ("parity", "below-5")


def binary_targets(labels: np.ndarray, rule: str) -> np.ndarray:
    """+1 / -1 float64 targets from integer class labels, by ``rule``.

    Parameters
    ----------
    labels
        Integer class labels.
    rule
        ``"parity"``: +1 for an even label, -1 for an odd one (the sweeps' targets);
        ``"below-5"``: +1 for a label below 5, -1 otherwise (digits 0-4 against 5-9).

    Raises
    ------
    ValueError
        If ``rule`` is not one of :data:`LABEL_RULES`.

    Examples
    --------
    >>> binary_targets(np.array([0, 3, 4, 7]), "parity").tolist()
    [1.0, -1.0, 1.0, -1.0]
    >>> binary_targets(np.array([0, 3, 4, 7]), "below-5").tolist()
    [1.0, 1.0, 1.0, -1.0]
    """
    labels = np.asarray(labels)
    if rule == "parity":
        return np.where(labels % 2 == 0, 1.0, -1.0)
    if rule == "below-5":
        return np.where(labels < 5, 1.0, -1.0)
    raise ValueError(f"unknown label rule {rule!r}; allowed: {', '.join(LABEL_RULES)}.")


def digits_task(n_train: int, n_test: int, *, rule: str, seed: int = 0,
                classes: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A binary task on the bundled digits: disjoint train and test points, +1 / -1 targets.

    Parameters
    ----------
    n_train, n_test
        Points in each part, drawn without replacement by one permutation with ``seed``
        (train first).
    rule
        The labelling rule of :func:`binary_targets` (``"parity"`` or ``"below-5"``).
    seed
        Seed of the permutation.
    classes
        Keep only digits of these classes before drawing (None: all ten).

    Returns
    -------
    tuple of numpy.ndarray
        ``(x_train, y_train, x_test, y_test)``; x on the sphere of radius sqrt(64)
        (:func:`load_digits`), y float64 +1 / -1.
    """
    x, y = load_digits()
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep]
    idx = np.random.default_rng(seed).permutation(len(x))[: n_train + n_test]
    target = binary_targets(y[idx], rule)
    return x[idx[:n_train]], target[:n_train], x[idx[n_train:]], target[n_train:]


def sphere_points(n: int, d: int, *, correlation: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the sphere of radius sqrt(d) with pairwise correlation x.x'/d ~= ``correlation``.

    x_i = sqrt(rho) u + sqrt(1 - rho) g_i with a shared direction u and independent g_i, then
    normalised; for large d the cosine between two points concentrates at rho. Labels are the sign
    of the first coordinate of g_i (0/1).

    Parameters
    ----------
    n, d
        Number of points and dimension.
    correlation
        Target cosine rho in [0, 1).
    seed
        numpy random seed.
    """
    n = check_int("n", n, minimum=1)
    d = check_int("d", d, minimum=1)
    rho = check_real("correlation", correlation)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"`correlation` must lie in [0, 1); got {correlation!r}.")
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    g = rng.standard_normal((n, d))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    x = np.sqrt(rho) * u + np.sqrt(1.0 - rho) * g
    return normalize_to_sphere(x), (g[:, 0] > 0).astype(np.int64)


def load_user_arrays(path: str | Path, *, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inputs from a ``.npy`` file (x only; labels zero) or ``.npz`` with arrays ``x`` and ``y``.

    The inputs are normalised to the sphere of radius sqrt(d) (d = all entries of one input).
    Images (N, C, H, W) are flattened, unless ``images`` (which needs a 4-D array).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist.")
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        y = np.zeros(len(x), dtype=np.int64)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise ValueError(
                    f"{str(path)!r} must hold an array named 'x' (and optionally 'y'); it has {sorted(f)!r}."
                )
            x = f["x"]
            y = f["y"] if "y" in f else np.zeros(len(x), dtype=np.int64)
    else:
        raise ValueError(f"dataset file must end in '.npy' or '.npz'; got {str(path)!r}.")
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape[1:]
    if images and len(shape) != 3:
        raise ValueError(
            f"{str(path)!r}: images need x of shape (N, C, H, W); got {x.shape!r}. Save images NCHW, or use a "
            "fully-connected architecture."
        )
    flat = normalize_to_sphere(x.reshape(len(x), -1))
    return _images(flat, shape, images), np.asarray(y).astype(np.int64).reshape(-1)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format), optionally gzipped."""
    with _open(path) as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{str(path)!r} is not an unsigned-byte IDX file (magic {data[:4]!r}).")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{str(path)!r} is truncated: header says shape {shape!r}, found {arr.size} bytes.")
    return arr.reshape(shape)


def _find(directory: Path, stems: tuple[str, ...]) -> Path:
    for stem in stems:
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(
        f"none of {list(stems)!r} (optionally .gz) found in {str(directory)!r}; ntkgap does not download "
        "data: put the standard files there first."
    )


def load_mnist(
    directory: str | Path, *, split: str = "train", limit: int | None = None, images: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from its IDX files already on disk (``train-images-idx3-ubyte`` [.gz], ...).

    Parameters
    ----------
    directory
        Folder with the four standard files.
    split
        ``"train"`` or ``"test"`` (``t10k-*`` files).
    limit
        Keep the first ``limit`` images.
    images
        Return x as (N, 1, 28, 28) instead of (N, 784).
    """
    directory = Path(directory)
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; got {split!r}.")
    prefix = "train" if split == "train" else "t10k"
    pixels = _read_idx(_find(directory, (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte")))
    labels = _read_idx(_find(directory, (f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte")))
    if len(pixels) != len(labels):
        raise ValueError(f"MNIST {split}: {len(pixels)} images but {len(labels)} labels in {str(directory)!r}.")
    if limit is not None:
        pixels, labels = pixels[:limit], labels[:limit]
    x = pixels.reshape(len(pixels), -1).astype(np.float64) / 255.0
    return _images(normalize_to_sphere(_centre(x)), (1, 28, 28), images), labels.astype(np.int64)


def load_cifar10(
    directory: str | Path, *, split: str = "train", limit: int | None = None, images: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the python pickle batches already on disk (``data_batch_1..5``, ``test_batch``).

    ``directory`` is the extracted ``cifar-10-batches-py`` folder. ``images`` returns x as
    (N, 3, 32, 32) (the batches store each image in C, H, W order) instead of (N, 3072).
    """
    directory = Path(directory)
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; got {split!r}.")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [directory / n for n in names if (directory / n).exists()]
    if not files:
        raise FileNotFoundError(
            f"no CIFAR-10 {split} batches ({names[0]!r}, ...) in {str(directory)!r}; ntkgap does not download data."
        )
    xs, ys = [], []
    for path in files:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8))
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
        if limit is not None and sum(len(a) for a in xs) >= limit:
            break
    x = np.concatenate(xs).astype(np.float64) / 255.0
    y = np.concatenate(ys)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return _images(normalize_to_sphere(_centre(x)), (3, 32, 32), images), y
