"""Thread policy of the kernel maps: small kernels run on one thread.

Each numba parallel region and each multi-threaded BLAS call costs a thread hand-off, and
numba's OpenMP workers spin for a while after a region, competing with OpenBLAS's own threads
for the same cores. For kernels of a few hundred inputs that overhead is larger than the work:
measured on a 2-core machine (fully-connected tanh, depth 10) under load, one thread took 0.44 s
at N = 400 where two took 2.5 s; on the idle machine both took 0.095 s at N = 200. Large kernels
keep every thread.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numba

#: Work (input pairs x spatial entries per pair x layers) below which a kernel runs on one thread.
SERIAL_BELOW = 2_000_000


@functools.cache
def _blas():
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


@contextlib.contextmanager
def threads_for(work: float) -> Iterator[None]:
    """One numba and one BLAS thread inside the block when ``work`` < :data:`SERIAL_BELOW`."""
    previous = numba.get_num_threads()
    if work >= SERIAL_BELOW or previous == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        with _blas().limit(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
