"""Kernel matrices beyond memory: :func:`ntktheory.kernels` block by block on Dask, into Zarr.

The N1 x N2 matrices are cut into ``block_size`` x ``block_size`` blocks; each block is one Dask
task that computes ``ntktheory.kernels(x1[rows], x2[cols], **network)`` on a worker and writes it
straight into the store's chunk (:class:`~compare._store.KernelMatrixStore`), so that neither the
driver nor any worker ever holds more than a block. For a symmetric kernel (``x2`` None) only the
blocks on and above the diagonal are computed: a diagonal block as ``ntktheory.kernels(x1[rows])``
(x2 = None, exact x = x' diagonals), an off-diagonal one as the cross kernel, written at (i, j) and,
transposed, at (j, i). The store therefore holds the full matrices and opens with plain
``xarray.open_zarr``, no reader needed.

The store records the configuration (the network arguments, the sizes, the block size and SHA-256
hashes of the inputs) and a ``block_done`` flag per block, set only after the block's chunks are
flushed to disk; rerunning the same call computes only the blocks whose flag is unset, and a
store of another configuration is refused with what differs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ntktheory._provenance import REQUIRED_KEYS
from ntktheory._validate import validate_inputs

from ._plan import threads_per_task
from ._schema import provenance_attrs, to_json
from ._store import KERNEL_VARIABLES, KernelMatrixStore
from ._sweep import run_on_cluster, task_prefix

__all__ = ["KernelMatrixResult", "kernel_matrix"]

#: Attrs of ``ntktheory.kernels`` that describe one call rather than the matrix (the store has its own
#: provenance).
_PER_CALL_ATTRS = (*REQUIRED_KEYS, "quadrature")

#: How the symmetric case is stored, in words (root attr ``storage``).
_STORAGE = {
    True: "symmetric: blocks on and above the diagonal computed (diagonal ones with x2 = None), each "
          "off-diagonal block also written transposed below the diagonal; the full matrices are stored",
    False: "cross kernel: every block computed as ntktheory.kernels(x1[rows], x2[cols])",
}


@dataclasses.dataclass(frozen=True)
class Block:
    """Block (i, j): rows i*B .. (i+1)*B of x1, columns j*B .. (j+1)*B of x2."""

    i: int
    j: int

    @property
    def key(self) -> str:
        return f"{self.i}.{self.j}"


@dataclasses.dataclass
class KernelMatrixResult:
    """What :func:`kernel_matrix` did.

    ``dataset`` is the store opened lazily (Dask arrays, nothing loaded) once every block is
    written, None when some were lost to crashed workers (rerun the call to finish them).
    ``peak_rss`` maps each worker that ran a block to its peak resident memory in bytes;
    ``seconds`` holds the workers' time summed over the computed blocks: ``"compute"``
    (:func:`ntktheory.kernels`) and ``"write"`` (Zarr writes, fsync, flags).
    """

    dataset: xr.Dataset | None
    store: Path
    n_blocks: int
    n_skipped: int
    n_computed: int
    n_lost: int
    peak_rss: dict[str, int]
    seconds: dict[str, float]


def kernel_matrix(
    x1: Any,
    x2: Any = None,
    *,
    store: str | Path,
    block_size: int,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    progress: bool = True,
    **network: Any,
) -> KernelMatrixResult:
    """NNGP and NTK matrices of any size, computed block by block on Dask into a Zarr store.

    Parameters
    ----------
    x1
        Inputs, shape (N1, ...) (what :func:`ntktheory.kernels` takes), finite.
    x2
        Second inputs (N2, ...) for the cross kernel, or None for the symmetric K(x1, x1): only the
        blocks on and above the diagonal are computed; the others are their transposes.
    store
        Directory of the Zarr store, on a file system every worker can write to. An existing store
        of the same call is resumed (only blocks not yet flagged done are computed); one written
        with another configuration or other inputs is refused
        (:class:`~compare.StoreMismatchError`, naming what differs).
    block_size
        Edge B of the blocks (and of the Zarr chunks). A worker holds about 10 B^2 float64 values
        at a time, independent of N; a block writes 16 B^2 bytes (32 B^2 when mirrored).
    scheduler
        None or ``"threads"`` (default): a LocalCluster of threads in this process. Each block's
        ``ntktheory.kernels`` runs numba on every core (``NTKGAP_NUMBA_THREADS`` overrides); numba
        holds the GIL, so blocks compute one at a time, and a second thread writes one block while
        the next is computed. Nothing to start, nothing to pickle: the fastest on one machine
        (bench/README.md). ``"processes"``: a LocalCluster of worker processes, one numba thread per
        task. Otherwise the address of a running ``dask.distributed`` scheduler (as ``ntkgap run
        --scheduler``), one numba thread per task (``NTKGAP_NUMBA_THREADS`` on the workers overrides).
    n_workers, threads_per_worker
        LocalCluster size: for threads 1 worker of 2 threads, for processes one worker per core of
        1 thread each, by default.
    progress
        Show a progress bar over the blocks on stderr.
    **network
        Passed unchanged to :func:`ntktheory.kernels` (``activation``, ``depth``, ``sigma_w``, ...);
        they are checked on two inputs before any work starts.

    Returns
    -------
    KernelMatrixResult
        ``dataset``: ``nngp`` and ``ntk`` (float64, dims ``("x1", "x2")``, chunks B x B, Dask
        arrays), ``block_done`` (dims ``("x1_block", "x2_block")``); attrs ``conventions``,
        ``ntkgap_version``, ``creation_time``, ``config`` (JSON), the network configuration as in
        :func:`ntktheory.kernels`, ``block_size``, ``storage`` and ``complete`` (1).

    Raises
    ------
    TypeError, ValueError
        For an invalid argument (the network's are :func:`ntktheory.kernels`' own messages).
    NotImplementedError
        For network arguments whose kernels have more dims than ``("x1", "x2")``
        (``all_depths=True``).
    StoreMismatchError
        When ``store`` holds something else.

    Examples
    --------
    >>> import numpy as np, ntktheory, tempfile
    >>> x = np.random.default_rng(0).standard_normal((7, 3))
    >>> res = kernel_matrix(x, store=tempfile.mkdtemp() + "/K.zarr", block_size=3, scheduler="threads",
    ...                     n_workers=1, progress=False, activation="relu", depth=2)
    >>> res.n_blocks, res.dataset.ntk.chunks     # 3 x 3 blocks, 6 computed (on and above the diagonal)
    (6, ((3, 3, 1), (3, 3, 1)))
    >>> ref = ntktheory.kernels(x, activation="relu", depth=2)
    >>> bool(np.allclose(res.dataset.ntk.values, ref.ntk.values, rtol=1e-12, atol=0))
    True
    """
    import ntktheory

    a1 = _inputs("x1", x1)
    a2 = None if x2 is None else _inputs("x2", x2)
    block_size = _block_size(block_size)
    probe = ntktheory.kernels(a1[:2], None if a2 is None else a2[:2], **network)  # bad arguments fail here
    if probe.ntk.dims != ("x1", "x2"):
        raise NotImplementedError(
            f"kernel_matrix stores kernels on dims ('x1', 'x2'); these network arguments give dims "
            f"{probe.ntk.dims!r} (all_depths=True?). Compute one depth per store."
        )
    symmetric = a2 is None
    n1, n2 = a1.shape[0], (a1 if symmetric else a2).shape[0]
    config = {
        **network_config(network),
        "n1": n1,
        "n2": n2,
        "block_size": block_size,
        "x1_sha256": input_hash(a1),
        "x2_sha256": None if symmetric else input_hash(a2),
    }
    identity = to_json({"config": config, "task": "compare.kernel_matrix"})
    attrs = {
        **provenance_attrs(config, conventions="architecture" if "architecture" in probe.attrs else "fully_connected"),
        **{k: v for k, v in probe.attrs.items() if k not in _PER_CALL_ATTRS},
        "block_size": block_size,
        "storage": _STORAGE[symmetric],
    }
    km = KernelMatrixStore(store, identity, shape=(n1, n2), block_size=block_size, attrs=attrs,
                           variable_attrs={v: dict(probe[v].attrs) for v in KERNEL_VARIABLES})
    nb1, nb2 = km.n_blocks
    blocks = [Block(i, j) for i in range(nb1) for j in range(i if symmetric else 0, nb2)]
    done = km.done()
    pending = [b for b in blocks if not done[b.i, b.j]]
    peak_rss: dict[str, int] = {}
    seconds = {"compute": 0.0, "write": 0.0}
    n_lost = 0
    if scheduler is None:
        scheduler = "threads"
    if scheduler == "threads":
        n_workers = 1 if n_workers is None else n_workers
        threads_per_worker = 2 if threads_per_worker is None else threads_per_worker
    elif threads_per_worker is None:
        threads_per_worker = 1
    if pending:
        from concurrent.futures import CancelledError

        from distributed import KilledWorker
        from distributed.comm import CommClosedError

        prefix = task_prefix(km.path, identity)
        b2 = a1 if symmetric else a2
        numba_threads = _in_process_numba_threads() if scheduler == "threads" else None
        # BLAS rounds the last bit differently with one thread and with several (it splits the Gram
        # products), and Dask starts worker processes with one (OPENBLAS_NUM_THREADS=1): one BLAS
        # thread everywhere makes a block independent of the worker that ran it. Here, for
        # scheduler="threads", around the whole run (the tasks share this process's BLAS).
        blas = _blas().limit(limits=1, user_api="blas") if scheduler == "threads" else contextlib.nullcontext()

        def submit(client, b: Block):
            diagonal = symmetric and b.i == b.j
            rows = a1[km.rows(b.i)]
            cols = None if diagonal else b2[km.cols(b.j)]
            return client.submit(compute_block, km, b.i, b.j, rows, cols, network, symmetric and not diagonal,
                                 numba_threads, key=f"{prefix}-block-{b.key}", pure=False)

        def record(b: Block, stats: Mapping[str, Any]) -> None:
            peak_rss[stats["worker"]] = max(peak_rss.get(stats["worker"], 0), stats["peak_rss"])
            for part in seconds:
                seconds[part] += stats[part]

        with blas:
            n_lost = run_on_cluster(pending, submit, record, name=lambda b: b.key, scheduler=scheduler,
                                    n_workers=n_workers, threads_per_worker=threads_per_worker, progress=progress,
                                    total=len(blocks), desc=f"kernel {n1}x{n2}", unit="block", window_per_thread=2,
                                    lost=(KilledWorker, CancelledError, CommClosedError))
    result = KernelMatrixResult(None, km.path, len(blocks), len(blocks) - len(pending), len(pending) - n_lost,
                                n_lost, peak_rss, seconds)
    if not n_lost:
        km.finish()
        result.dataset = xr.open_zarr(str(km.path))
    return result


def compute_block(km: KernelMatrixStore, i: int, j: int, rows: np.ndarray, cols: np.ndarray | None,
                  network: Mapping[str, Any], mirror: bool, numba_threads: int | None = None) -> dict[str, Any]:
    """One block on a Dask worker: compute it, write it (and its mirror), flush, flag it done.

    ``numba_threads`` None: :func:`~compare._plan.threads_per_task` (one, or
    ``NTKGAP_NUMBA_THREADS``)."""
    import ntktheory

    threads = numba_threads or threads_per_task("NTKGAP_NUMBA_THREADS")
    if threads is not None:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if numba_threads is None and threads is not None:  # a worker process: BLAS as on any Dask worker
        _single_threaded_blas()
    start = time.perf_counter()
    # Dask may hand over the inputs as views into its message frames, not 8-byte aligned; numpy then
    # multiplies them without BLAS and rounds differently. Aligned copies make a block independent
    # of how it travelled (so a resumed store is bit-identical to an uninterrupted one).
    rows = np.require(rows, np.float64, ["C", "A"])
    cols = None if cols is None else np.require(cols, np.float64, ["C", "A"])
    ds = ntktheory.kernels(rows, cols, **network)
    computed = time.perf_counter()
    km.write_block(i, j, {v: ds[v].values for v in KERNEL_VARIABLES}, mirror=mirror)
    written = time.perf_counter()
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return {"worker": worker, "peak_rss": peak_rss_bytes(), "compute": computed - start, "write": written - computed}


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def _single_threaded_blas() -> None:
    """One BLAS thread in this (worker) process from now on, whatever its environment said."""
    _blas().limit(limits=1, user_api="blas")  # applied at once, kept: this process is a worker


def _in_process_numba_threads() -> int:
    """Numba threads per task on a LocalCluster of threads: all of numba's (``NTKGAP_NUMBA_THREADS``)."""
    import os

    import numba

    return int(os.environ.get("NTKGAP_NUMBA_THREADS", numba.config.NUMBA_NUM_THREADS))


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes.

    Linux: VmHWM of /proc/self/status. Not ``getrusage``: its ``ru_maxrss`` survives ``exec`` and
    so starts at the parent's resident size for a process started by fork and exec.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def input_hash(a: np.ndarray) -> str:
    """SHA-256 of an input array (its shape and float64 bytes): what a store records of its inputs."""
    h = hashlib.sha256(to_json(list(a.shape)).encode())
    h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def _inputs(name: str, value: Any) -> np.ndarray:
    """A finite float64 array (N, ...), checked by the toolkit's one input validator."""
    return np.asarray(validate_inputs(name, value, ndims=None), dtype=np.float64)


def _block_size(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`block_size` must be a positive integer; got {value!r}.")
    if value < 1:
        raise ValueError(f"`block_size` must be a positive integer; got {value!r}.")
    return int(value)


def network_config(network: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of :func:`ntktheory.kernels` with its defaults filled in, as JSON values.

    Bound to its signature, not to a list of names: a store records every argument it has (those
    added later included), and ``depth=3`` and the default depth give the same configuration.
    """
    import inspect

    import ntktheory

    bound = inspect.signature(ntktheory.kernels).bind(None, None, **network)
    bound.apply_defaults()
    return {name: _describe(value) for name, value in bound.arguments.items() if name not in ("x1", "x2")}


def _describe(value: Any) -> Any:
    """A network argument as JSON (its value) or, for objects such as activations, its repr."""
    try:
        return json.loads(to_json(value))
    except (TypeError, ValueError):
        return repr(value)
