"""The sweep's Zarr store: one sub-store per finished task, committed by an atomic rename.

Layout (Zarr format 2, readable by plain ``xarray.open_zarr``)::

    STORE/                  root group; attrs hold the sweep config (JSON) and its fingerprint;
                            once the sweep is complete, the combined Dataset lives here too
                            (consolidated metadata), so ``xarray.open_zarr(STORE)`` returns it
    STORE/tasks/<key>/      one group per finished task (a complete Zarr group)
    STORE/tasks/.tmp-*      a task being written; never read, removed on the next start

A task's group is first written to ``tasks/.tmp-<key>-<pid>-<n>`` and then renamed to
``tasks/<key>``: a rename within one file system is atomic, so a group under its final name is
always complete, whatever happens to the writer (Ctrl-C, kill -9, a full disk). The presence of
``tasks/<key>`` is the completion marker.

The kernel-matrix store (:class:`KernelMatrixStore`, written by :func:`compare.kernel_matrix`)::

    STORE/                  root group; attrs hold provenance, the configuration, its identity
                            (``ntkgap_kernel_matrix``) and ``complete`` (0 until every block is in)
    STORE/nngp/, STORE/ntk/ (N1, N2) float64 arrays on ("x1", "x2"), one chunk per B x B block,
                            uncompressed, NaN where a block is not written yet
    STORE/block_done/       bool (nb1, nb2) on ("x1_block", "x2_block"), one chunk per flag

A worker writes a block's chunks (Zarr writes each aside and renames it into place), fsyncs them,
and only then sets the block's flag: a set flag always means complete, durable data, and a block
without one is recomputed on the next run, whatever its chunks hold. Both kinds of store share
:func:`check_identity`: a store written by another configuration is refused, saying what differs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

__all__ = ["KERNEL_MATRIX", "SWEEP", "KernelMatrixStore", "StoreKind", "StoreMismatchError", "SweepStore",
           "check_identity"]

_counter = itertools.count()


class StoreMismatchError(ValueError):
    """The store was written by a different configuration (or is not an ntkgap store of this kind)."""


@dataclasses.dataclass(frozen=True)
class StoreKind:
    """What a store holds: the root attr with its identity, and the words for error messages."""

    attr: str
    name: str
    plural: str


SWEEP = StoreKind("ntkgap_sweep", "sweep", "sweeps")
KERNEL_MATRIX = StoreKind("ntkgap_kernel_matrix", "kernel matrix", "kernel matrices")


def check_identity(path: Path, identity: str | None, kind: StoreKind,
                   hint: str = "choose another --out path or remove it") -> str | None:
    """Refuse a path that holds anything but a store of ``kind`` with this ``identity``.

    ``hint`` ends the message about a path that holds something else. Returns the identity found
    in the store (equal to ``identity`` unless that is None, which
    accepts any store of the kind), or None when there is no store there yet (no path, an empty
    directory, or a bare Zarr group without attrs).
    """
    shown = str(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / ".zgroup").exists())):
        raise StoreMismatchError(
            f"{shown!r} exists and is not an ntkgap {kind.name} store (no .zgroup); {hint}."
        )
    root_meta = path / ".zattrs"
    if not root_meta.exists():
        return None
    existing = json.loads(root_meta.read_text()).get(kind.attr)
    if existing is None:
        raise StoreMismatchError(
            f"{shown!r} is a Zarr store but not an ntkgap {kind.name} (no {kind.attr!r} attr); {hint}."
        )
    if identity is not None and existing != identity:
        raise StoreMismatchError(
            f"{shown!r} was written by a different {kind.name} configuration "
            f"({_diff(existing, identity)}); results of different {kind.plural} are never mixed. "
            "Use another --out path, or delete the store to start over."
        )
    return existing


class SweepStore:
    """A directory Zarr store holding the results of one sweep configuration.

    Parameters
    ----------
    path
        The store directory (created if absent).
    identity
        JSON text that identifies the sweep (its configuration and task function). An existing
        store with another identity is refused.
    attrs
        Extra root attrs written when the store is created (e.g. ``creation_time``).
    """

    def __init__(self, path: str | Path, identity: str, attrs: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.tasks_path = self.path / "tasks"
        if check_identity(self.path, identity, SWEEP) is None:
            root = zarr.open_group(str(self.path), mode="a", zarr_format=2)
            root.attrs.update({**(attrs or {}), SWEEP.attr: identity})
        if not (self.tasks_path / ".zgroup").exists():
            zarr.open_group(str(self.tasks_path), mode="a", zarr_format=2)
        for stale in self.tasks_path.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    @property
    def attrs(self) -> dict:
        return json.loads((self.path / ".zattrs").read_text())

    def finished(self) -> set[str]:
        """Keys of the tasks whose results are committed."""
        return {p.name for p in self.tasks_path.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def write_task(self, key: str, ds: xr.Dataset) -> None:
        """Commit one task's result (atomic: written aside, then renamed into place)."""
        final = self.tasks_path / key
        if final.exists():
            return
        tmp = self.tasks_path / f".tmp-{key}-{os.getpid()}-{next(_counter)}"
        ds.to_zarr(str(tmp), mode="w", zarr_format=2, consolidated=False)
        try:
            os.rename(tmp, final)
        except OSError:  # another writer committed the same task first: identical by construction
            shutil.rmtree(tmp, ignore_errors=True)

    def remove_task(self, key: str) -> None:
        """Withdraw a committed task (e.g. a recorded failure to retry): renamed aside, then deleted.

        The rename is atomic, so the task is either committed or absent, whatever happens.
        """
        final = self.tasks_path / key
        if not final.exists():
            return
        tmp = self.tasks_path / f".tmp-{key}-{os.getpid()}-{next(_counter)}"
        os.rename(final, tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    def read_task(self, key: str) -> xr.Dataset:
        with xr.open_zarr(str(self.tasks_path / key), consolidated=False) as ds:
            return ds.load()

    def write_combined(self, ds: xr.Dataset) -> xr.Dataset:
        """Write the combined Dataset at the root (alongside ``tasks/``) and consolidate metadata.

        Returns the Dataset as written (with the store's root attrs).
        """
        root_attrs = self.attrs
        ds = ds.copy()
        ds.attrs = {**ds.attrs, **root_attrs}
        for name in list(ds.variables):
            ds[name].encoding = {}
        ds.to_zarr(str(self.path), mode="a", zarr_format=2, consolidated=True)
        return ds


def _diff(old: str, new: str, labels: tuple[str, str] = ("store has", "this run has")) -> str:
    try:
        a, b = json.loads(old), json.loads(new)
    except json.JSONDecodeError:
        return "identity differs"
    a_cfg, b_cfg = a.get("config", a), b.get("config", b)
    keys = sorted(k for k in set(a_cfg) | set(b_cfg) if a_cfg.get(k) != b_cfg.get(k))
    parts = [f"{k}: {labels[0]} {a_cfg.get(k)!r}, {labels[1]} {b_cfg.get(k)!r}" for k in keys]
    if a.get("task") != b.get("task"):
        parts.append(f"task function: {labels[0]} {a.get('task')!r}, {labels[1]} {b.get('task')!r}")
    return "; ".join(parts) or "identity differs"


#: The kernels a kernel-matrix store holds, on dims ("x1", "x2").
KERNEL_VARIABLES: tuple[str, str] = ("nngp", "ntk")


class KernelMatrixStore:
    """A directory Zarr store holding one N1 x N2 pair of kernel matrices, written block by block.

    The arrays ``nngp`` and ``ntk`` are chunked in ``block_size`` x ``block_size`` blocks, one
    block per chunk; ``block_done`` (dims ``x1_block``, ``x2_block``) is True where a block's
    chunks are written and flushed to disk (fsync). A worker writes a block's data chunks (each
    one atomically, by Zarr's write-aside-and-rename), fsyncs them, and only then sets its flag:
    a block whose flag is False is recomputed, whatever state its chunks are in.

    The store is created whole (metadata, coordinates and attrs written aside, then renamed into
    place), so a path that holds a store with this identity always holds its complete metadata.

    Parameters
    ----------
    path
        The store directory.
    identity
        JSON text identifying the matrix (configuration and a hash of the inputs); an existing
        store with another identity is refused (:class:`StoreMismatchError`).
    shape
        (N1, N2).
    block_size
        Block (chunk) edge B.
    attrs
        Root attrs written when the store is created (provenance, configuration).
    variable_attrs
        Attrs of ``nngp`` and ``ntk`` (e.g. ``long_name``), by variable name.
    """

    def __init__(self, path: str | Path, identity: str, *, shape: tuple[int, int], block_size: int,
                 attrs: dict | None = None, variable_attrs: dict[str, dict] | None = None) -> None:
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.block_size = int(block_size)
        if check_identity(self.path, identity, KERNEL_MATRIX) is None:
            self._create(identity, attrs or {}, variable_attrs or {})
        for name in (*KERNEL_VARIABLES, "block_done"):  # chunks a killed writer left half-written
            for partial in (self.path / name).glob("*.partial"):
                partial.unlink(missing_ok=True)

    @property
    def n_blocks(self) -> tuple[int, int]:
        """Blocks along x1 and x2: ceil(N / B)."""
        return tuple(-(-n // self.block_size) for n in self.shape)  # type: ignore[return-value]

    @property
    def attrs(self) -> dict:
        return json.loads((self.path / ".zattrs").read_text())

    def _create(self, identity: str, attrs: dict, variable_attrs: dict[str, dict]) -> None:
        import dask.array as da

        if self.path.exists() and any(self.path.iterdir()):  # a bare Zarr group without attrs
            raise StoreMismatchError(
                f"{str(self.path)!r} is a Zarr store but not an ntkgap {KERNEL_MATRIX.name} "
                f"(no {KERNEL_MATRIX.attr!r} attr); choose another --out path."
            )
        b, (nb1, nb2) = self.block_size, self.n_blocks
        for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        data = {
            name: (("x1", "x2"), da.empty(self.shape, chunks=(b, b), dtype=np.float64), variable_attrs.get(name, {}))
            for name in KERNEL_VARIABLES
        }
        data["block_done"] = (("x1_block", "x2_block"), da.zeros((nb1, nb2), chunks=1, dtype=bool), {
            "description": "True where the block of nngp and ntk starting at (x1_block, x2_block) "
                           f"(size {b} x {b}, smaller at the ends) is written and flushed to disk",
        })
        coords = {"x1": np.arange(self.shape[0]), "x2": np.arange(self.shape[1]),
                  "x1_block": np.arange(nb1) * b, "x2_block": np.arange(nb2) * b}
        ds = xr.Dataset(data, coords=coords, attrs={**attrs, KERNEL_MATRIX.attr: identity, "complete": 0})
        encoding = {name: {"chunks": (b, b), "compressors": None, "_FillValue": np.nan} for name in KERNEL_VARIABLES}
        encoding["block_done"] = {"chunks": (1, 1), "compressors": None}
        tmp = self.path.parent / f".{self.path.name}.tmp-{os.getpid()}-{next(_counter)}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_zarr(str(tmp), mode="w-", compute=False, zarr_format=2, consolidated=True, encoding=encoding)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, self.path)  # atomic; replaces an empty directory
        except OSError:  # another run created it first: use its store if it is the same matrix
            shutil.rmtree(tmp, ignore_errors=True)
            check_identity(self.path, identity, KERNEL_MATRIX)
        _fsync(self.path.parent)

    def done(self) -> np.ndarray:
        """Block flags, bool (nb1, nb2): True where the block is written and flushed."""
        return zarr.open_array(str(self.path / "block_done"), mode="r")[...]

    def rows(self, i: int) -> slice:
        return slice(i * self.block_size, min((i + 1) * self.block_size, self.shape[0]))

    def cols(self, j: int) -> slice:
        return slice(j * self.block_size, min((j + 1) * self.block_size, self.shape[1]))

    def write_block(self, i: int, j: int, values: dict[str, np.ndarray], *, mirror: bool = False) -> None:
        """Write block (i, j) of each variable (and its transpose at (j, i) with ``mirror``), flush it,
        then flag it done: the flag of (i, j) is set last, so a set flag means durable data."""
        chunks = [(i, j), (j, i)] if mirror else [(i, j)]
        flushed: list[Path] = []
        for name, block in values.items():
            arr = zarr.open_array(str(self.path / name), mode="r+")
            arr[self.rows(i), self.cols(j)] = block
            if mirror:
                arr[self.rows(j), self.cols(i)] = block.T
            flushed += [self.path / name / arr.metadata.encode_chunk_key(c) for c in chunks]
        for f in flushed:
            _fsync(f)
        for name in values:
            _fsync(self.path / name)  # the renames that put the chunks in place
        flags = zarr.open_array(str(self.path / "block_done"), mode="r+")
        for c in reversed(chunks):  # (j, i) first: (i, j) is the commit
            flags[c] = True
            _fsync(self.path / "block_done" / flags.metadata.encode_chunk_key(c))
        _fsync(self.path / "block_done")

    def finish(self) -> None:
        """Mark the store complete (root attr ``complete`` = 1) and re-consolidate its metadata."""
        if self.attrs.get("complete") == 1:
            return
        root = zarr.open_group(str(self.path), mode="r+", zarr_format=2)
        root.attrs["complete"] = 1
        zarr.consolidate_metadata(str(self.path), zarr_format=2)


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk (directories: POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # a directory on Windows: nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            _fsync(Path(dirpath) / f)
        _fsync(Path(dirpath))
