"""neural-tangents' stax on the bench_architectures cases, for bench/README.md.

Run with the separate neural-tangents environment (never a dependency of ntkgap):

    python_nt=$(bash ../shared/tools/setup_neural_tangents.sh /tmp/venv-nt)
    $python_nt bench/nt_architectures.py

Same networks as bench/bench_architectures.py (5 x conv 3x3 'same' + activation, then
GlobalAvgPool or Flatten, Dense; NTK parameterisation, sigma_w = 1.5, sigma_b = 0.1, N = 128
images 8x8x1, float64). Prints the warm wall time (best of 3) or the error: stax has no closed
form for tanh, and its ``ElementwiseNumerical`` (Gauss-Hermite quadrature of degree 25) builds
the whole (N H W)^2 x 25^2 array of the bivariate quadrature at once.
"""

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

SW, SB, DEPTH, N = 1.5, 0.1, 5, 128


def network(activation, readout):
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=SW, b_std=SB), activation]
    layers += [stax.GlobalAvgPool() if readout == "gap" else stax.Flatten(), stax.Dense(1, W_std=SW, b_std=SB)]
    return stax.serial(*layers)


def main():
    x = np.random.default_rng(0).standard_normal((N, 8, 8, 1))
    cases = [
        ("relu CNN-GAP", stax.Relu(), "gap"),
        ("relu CNN-Flatten", stax.Relu(), "flatten"),
        ("tanh CNN-GAP", stax.ElementwiseNumerical(jnp.tanh, deg=25), "gap"),
    ]
    only = set(sys.argv[1:])  # optional case names to run, e.g. "tanh CNN-GAP"
    for name, act, readout in cases:
        if only and name not in only:
            continue
        kernel_fn = jax.jit(network(act, readout)[2], static_argnames="get")
        try:
            kernel_fn(x, None, get="ntk").block_until_ready()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                kernel_fn(x, None, get="ntk").block_until_ready()
                times.append(time.perf_counter() - start)
            print(f"{name}: {min(times):.2f} s warm")
        except Exception as exc:  # report, do not hide: stax's failures are the finding
            print(f"{name}: failed: {type(exc).__name__}: {str(exc)[:200]}")


if __name__ == "__main__":
    main()
