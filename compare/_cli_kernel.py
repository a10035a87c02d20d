"""``ntkgap kernel``: analytic infinite-width NNGP and NTK of a network, to NetCDF or a blocked Zarr store.

The network is fully connected (``--activation``, ``--depth``, ...), a named architecture
(``--architecture cnn`` or ``cnn-gap``, with ``--width`` channels) or one described in a JSON/TOML
file (``--architecture net.toml``: a list of layer tables, see ``ntktheory.layers.from_spec``).
Without ``--inputs`` it runs a small built-in example (8 points on a circle of radius sqrt(d) in a
2-D plane of R^d, d = 16) and prints a table of the kernels against the angle between inputs.
With ``--out K.zarr`` the matrices are computed block by block on Dask
(:func:`compare.kernel_matrix`): any size, resumable after an interruption.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["DEFAULT_BLOCK_SIZE", "add_network_options", "architecture", "example_inputs", "load_npy",
           "network_options", "register"]

#: Block edge of ``--out K.zarr`` without ``--block-size``: two 2048^2 float64 blocks are 64 MiB.
DEFAULT_BLOCK_SIZE = 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kernel",
        help="analytic NNGP and NTK of a network (NetCDF, or blocked Zarr for any size)",
        description="Infinite-width NNGP and NTK (ntktheory.kernels) of a network (fully connected, a preset or "
                    "a layer file) for "
                    "inputs in .npy files; without --inputs, a built-in example on the sphere with a "
                    "printed table. --out K.nc computes in memory; --out K.zarr computes block by block as "
                    "Dask tasks (a LocalCluster, or --scheduler ADDRESS), each task writing its block "
                    "into the chunked store: memory bounded by the block size, not by N. For a symmetric "
                    "kernel (no --inputs2) only blocks on and above the diagonal are computed and mirrored. "
                    "Interrupted? Run the same command again: finished blocks are kept, the rest computed. "
                    "The store opens with xarray.open_zarr (variables nngp, ntk on dims x1, x2).",
    )
    p.add_argument("--inputs", type=Path,
                   help="(N1, d) or images (N1, C, H, W), float array in a .npy file (default: built-in example)")
    p.add_argument("--inputs2", type=Path, help="(N2, ...) second inputs (.npy) for a cross kernel")
    add_network_options(p)
    p.add_argument("--all-depths", action="store_true", help="also return every depth 1..L (dim 'depth')")
    p.add_argument("--out", type=Path, help="file to write: .nc (NetCDF, in memory) or .zarr (blocked store)")
    p.add_argument("--block-size", type=int, default=None,
                   help=f"with --out .zarr: block (and Zarr chunk) edge B; a worker holds ~10 B^2 float64 values "
                        f"(default {DEFAULT_BLOCK_SIZE})")
    p.add_argument("--scheduler", default=None,
                   help="with --out .zarr: 'threads' (default): a LocalCluster of threads in this process, numba "
                        "using every core for each block while a second thread writes the previous one; "
                        "'processes': a LocalCluster of worker processes, one numba thread per block; or a "
                        "dask.distributed scheduler ADDRESS, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, default=None,
                   help="with --out .zarr: LocalCluster workers (default: 1 for threads, one per core for processes)")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="with --out .zarr: LocalCluster threads per worker (default: 2 for threads, 1 for "
                        "processes); NTKGAP_NUMBA_THREADS sets numba's threads per block")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def add_network_options(p: argparse.ArgumentParser) -> None:
    """The network options of ``ntktheory.kernels`` (shared by ``ntkgap kernel`` and ``ntkgap predict``)."""
    g = p.add_argument_group("network (ntktheory.kernels)")
    g.add_argument("--architecture", default="fcn",
                   help="fcn (default), cnn (3x3 convolutions, Flatten readout), cnn-gap (global average pooling), "
                        "or a .json/.toml file with a list of layer tables (TOML: [[layers]])")
    g.add_argument("--activation", default="relu", help="registry name or expression in x (default: relu)")
    g.add_argument("--depth", type=int, default=3, help="hidden layers L (default: 3)")
    g.add_argument("--sigma-w", type=float, default=1.0, help="weight standard deviation (default: 1)")
    g.add_argument("--sigma-b", type=float, default=0.0, help="bias standard deviation (default: 0)")
    g.add_argument("--parameterization", default="ntk", help="ntk (default) or standard")
    g.add_argument("--width", type=int,
                   help="hidden width n, channels for cnn/cnn-gap (required with --parameterization standard)")


def network_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``ntktheory.kernels`` given by :func:`add_network_options`'s options."""
    arch = architecture(args.architecture, args)
    if arch is None:
        return dict(activation=args.activation, depth=args.depth, sigma_w=args.sigma_w, sigma_b=args.sigma_b,
                    parameterization=args.parameterization, width=args.width)
    return dict(architecture=arch, parameterization=args.parameterization)


def example_inputs(n: int = 8, d: int = 16):
    """n points at angles 0, pi/n, ..., on a circle of radius sqrt(d) in the (e1, e2) plane of R^d."""
    import numpy as np

    angles = np.linspace(0.0, np.pi, n, endpoint=False)
    x = np.zeros((n, d))
    x[:, 0] = np.cos(angles) * np.sqrt(d)
    x[:, 1] = np.sin(angles) * np.sqrt(d)
    return x, angles


def load_npy(path: Path, option: str):
    """``numpy.load`` of a .npy file, or a ValueError naming the command-line option."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{option} {str(path)!r} could not be read as a .npy array: {err}") from err


def architecture(name_or_file: str, args: argparse.Namespace):
    """None for the fully-connected preset, else an ntktheory.layers architecture."""
    from ntktheory import layers

    if name_or_file == "fcn":
        return None
    if name_or_file in layers.PRESETS:
        return layers.preset(name_or_file, depth=args.depth, width=args.width, activation=args.activation,
                             sigma_w=args.sigma_w, sigma_b=args.sigma_b)
    path = Path(name_or_file)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"--architecture must be one of {', '.join(layers.PRESETS)} or a .json/.toml file of layer "
                         f"tables; got {name_or_file!r}.")
    if not path.exists():
        raise ValueError(f"--architecture file {str(path)!r} does not exist.")
    import json

    import tomllib

    try:
        raw = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"--architecture file {str(path)!r} could not be parsed: {err}") from err
    if isinstance(raw, dict):
        if "layers" not in raw:
            raise ValueError(f"--architecture file {str(path)!r} needs a list `layers` of layer tables.")
        raw = raw["layers"]
    return layers.from_spec(raw)


def _run(args: argparse.Namespace) -> int:
    import ntktheory

    blocked = args.out is not None and args.out.suffix == ".zarr"
    if args.out is not None and args.out.suffix not in (".nc", ".zarr"):
        print(f"ntkgap kernel: error: --out must end in .nc or .zarr, got {str(args.out)!r}.", file=sys.stderr)
        return 2
    if not blocked and args.block_size is not None:
        print(f"ntkgap kernel: error: --block-size {args.block_size!r} needs --out ending in .zarr (a .nc file is "
              "computed in memory).", file=sys.stderr)
        return 2
    try:
        angles = None
        if args.inputs is None:
            if args.inputs2 is not None:
                raise ValueError("--inputs2 needs --inputs.")
            x1, angles = example_inputs()
        else:
            x1 = load_npy(args.inputs, "--inputs")
        x2 = None if args.inputs2 is None else load_npy(args.inputs2, "--inputs2")
        network = network_options(args)
        if "architecture" in network and args.inputs is None:
            raise ValueError(f"--architecture {args.architecture} needs --inputs (images (N, C, H, W) in a .npy).")
        network["all_depths"] = args.all_depths
        if blocked:
            from ._kernel_matrix import kernel_matrix

            block_size = DEFAULT_BLOCK_SIZE if args.block_size is None else args.block_size
            res = kernel_matrix(x1, x2, store=args.out, block_size=block_size,
                                scheduler=args.scheduler, n_workers=args.workers,
                                threads_per_worker=args.threads_per_worker, progress=not args.no_progress,
                                **network)
            if res.dataset is None:
                print(f"ntkgap kernel: {res.n_lost} block(s) were lost to crashed workers; run the same command "
                      "again to finish.", file=sys.stderr)
                return 1
            ds = res.dataset
        else:
            ds = ntktheory.kernels(x1, x2, **network)
    except (TypeError, ValueError, NotImplementedError) as err:  # StoreMismatchError is a ValueError
        print(f"ntkgap kernel: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nntkgap kernel: interrupted; finished blocks are saved. Run the same command again to resume.",
              file=sys.stderr)
        return 130
    if args.out is not None and not blocked:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(args.out)
    final = ds.isel(depth=-1) if "depth" in ds.dims else ds
    what = (f"{args.activation}, depth {args.depth}, sigma_w {args.sigma_w}, sigma_b {args.sigma_b}"
            if "architecture" not in ds.attrs else ds.attrs["architecture"])
    print(f"{what}, {args.parameterization} parameterisation: nngp/ntk of shape {final.ntk.shape}")
    if angles is not None:
        print("| angle(x1_0, x1_j) / pi | NNGP | NTK |")
        print("| --- | --- | --- |")
        for j, angle in enumerate(angles):
            nngp, ntk = float(final.nngp[0, j]), float(final.ntk[0, j])
            print(f"| {angle / 3.141592653589793:.3f} | {nngp:.10f} | {ntk:.10f} |")
    if blocked:
        from ._kernel_matrix import peak_rss_bytes

        workers = max(res.peak_rss.values(), default=0)
        print(f"store: {args.out} ({res.n_blocks} blocks of {ds.attrs['block_size']}: {res.n_skipped} reused, "
              f"{res.n_computed} computed); peak resident memory: this process {peak_rss_bytes() / 2**30:.2f} GiB, "
              f"workers up to {workers / 2**30:.2f} GiB")
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
