"""Test-session set-up shared by every test package.

pytest-xdist runs as many worker processes as the machine has cores (``-n 2`` on the 2-core CI
machine). If each worker also ran numba, OpenBLAS and torch on every core, the cores would be
oversubscribed several times over, and OpenMP workers spinning between parallel regions would slow
everything down (measured: a depth-10 tanh kernel of 400 inputs took 2.5 s instead of 0.44 s). Each
worker therefore gets one thread per library unless the environment already says otherwise; the
parallel code paths are the same code with fewer threads.
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
