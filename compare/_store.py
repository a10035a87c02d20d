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
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import xarray as xr
import zarr

__all__ = ["StoreMismatchError", "SweepStore"]

_counter = itertools.count()


class StoreMismatchError(ValueError):
    """The store was written by a different sweep configuration."""


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
        root_meta = self.path / ".zattrs"
        if self.path.exists() and any(self.path.iterdir()) and not (self.path / ".zgroup").exists():
            raise StoreMismatchError(
                f"{str(self.path)!r} exists and is not an ntkgap sweep store (no .zgroup); "
                "choose another --out path or remove it."
            )
        if root_meta.exists():
            existing = json.loads(root_meta.read_text()).get("ntkgap_sweep")
            if existing is None:
                raise StoreMismatchError(
                    f"{str(self.path)!r} is a Zarr store but not an ntkgap sweep (no 'ntkgap_sweep' attr); "
                    "choose another --out path."
                )
            if existing != identity:
                raise StoreMismatchError(
                    f"{str(self.path)!r} was written by a different sweep configuration "
                    f"({_diff(existing, identity)}); results of different sweeps are never mixed. "
                    "Use another --out path, or delete the store to start over."
                )
        else:
            root = zarr.open_group(str(self.path), mode="a", zarr_format=2)
            root.attrs.update({**(attrs or {}), "ntkgap_sweep": identity})
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


def _diff(old: str, new: str) -> str:
    try:
        a, b = json.loads(old), json.loads(new)
    except json.JSONDecodeError:
        return "identity differs"
    a_cfg, b_cfg = a.get("config", a), b.get("config", b)
    keys = sorted(k for k in set(a_cfg) | set(b_cfg) if a_cfg.get(k) != b_cfg.get(k))
    parts = [f"{k}: store has {a_cfg.get(k)!r}, this run has {b_cfg.get(k)!r}" for k in keys]
    if a.get("task") != b.get("task"):
        parts.append(f"task function: store has {a.get('task')!r}, this run has {b.get('task')!r}")
    return "; ".join(parts) or "identity differs"
