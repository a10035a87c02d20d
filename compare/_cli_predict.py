"""``ntkgap predict``: predictions of infinitely wide networks (ntktheory.predict), to NetCDF.

Inputs and targets are .npy files; the network options are those of ``ntkgap kernel``
(:func:`compare._cli_kernel.add_network_options`), passed to ``ntktheory.kernels`` unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._cli_kernel import add_network_options, load_npy, network_options

__all__ = ["register"]

_COVARIANCE = {"full": True, "marginal": "marginal", "none": False}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="mean and covariance of infinitely wide networks trained on .npy data (NetCDF)",
        description="ntktheory.predict: the mean and covariance over initialisations of infinitely wide networks "
                    "trained by gradient descent on the MSE loss 1/(2 N k)|f(X) - Y|^2 (NTK: all layers; NNGP: "
                    "the readout only), or the exact GP posterior (--method bayesian), on test inputs. Writes a "
                    "NetCDF file with `mean` (time, test, output) and `covariance` (time, test, test_) or "
                    "`variance` (time, test).",
        epilog="example: ntkgap predict --train X.npy --targets Y.npy --test Z.npy --time 10 100 inf "
               "--activation erf --depth 2 --diag-reg 1e-6 --out P.nc",
    )
    p.add_argument("--train", type=Path, required=True, help="(N, d) training inputs (.npy)")
    p.add_argument("--targets", type=Path, required=True, help="(N,) or (N, k) training targets (.npy)")
    p.add_argument("--test", type=Path, required=True, help="(M, d) test inputs (.npy)")
    p.add_argument("--out", type=Path, required=True, help="NetCDF file to write (.nc)")
    p.add_argument("--kernel", default="ntk", help="ntk (all layers trained; default) or nngp (readout only)")
    p.add_argument("--method", default="gradient_descent", help="gradient_descent (default) or bayesian")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--time", type=float, nargs="+", metavar="T",
                      help="gradient-flow times, 'inf' allowed (default: inf)")
    when.add_argument("--steps", type=float, nargs="+", metavar="S",
                      help="numbers of discrete gradient-descent steps instead of --time ('inf' allowed)")
    p.add_argument("--learning-rate", type=float, default=1.0, help="eta (default: 1)")
    p.add_argument("--diag-reg", type=float, default=0.0,
                   help="diagonal regulariser, relative to the train kernel's mean diagonal (default: 0)")
    p.add_argument("--diag-reg-absolute", action="store_true", help="read --diag-reg in the kernel's own units")
    p.add_argument("--covariance", default="full", choices=list(_COVARIANCE),
                   help="full test-test covariance (default), marginal variance only, or none (mean only)")
    add_network_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import ntktheory

    if args.out.suffix != ".nc":
        print(f"ntkgap predict: error: --out must end in .nc, got {str(args.out)!r}.", file=sys.stderr)
        return 2
    try:
        x_train = load_npy(args.train, "--train")
        y_train = load_npy(args.targets, "--targets")
        x_test = load_npy(args.test, "--test")
        ds = ntktheory.predict(
            x_train, y_train, x_test, kernel=args.kernel, method=args.method, time=args.time, steps=args.steps,
            learning_rate=args.learning_rate, diag_reg=args.diag_reg, diag_reg_absolute=args.diag_reg_absolute,
            covariance=_COVARIANCE[args.covariance], **network_options(args),
        )
    except (TypeError, ValueError) as err:
        print(f"ntkgap predict: error: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(args.out)
    mean = ds["mean"]
    when = next((d for d in ("time", "step") if d in mean.dims), None)
    at = "" if when is None else f" at {when} {', '.join(f'{v:g}' for v in ds[when].values)}"
    print(f"{args.kernel} {args.method}, {args.activation}, depth {args.depth}: mean over {ds.sizes['test']} test "
          f"points x {ds.sizes['output']} outputs{at}; condition number of the train kernel "
          f"{ds.attrs['condition_number']:.3g}")
    print(f"wrote {args.out}")
    return 0
