"""Reference NNGP/NTK of the networks in architecture_cases.json, from neural-tangents' stax.

Run with the separate neural-tangents environment (never a dependency of ntkgap):

    python_nt=$(bash ../shared/tools/setup_neural_tangents.sh /tmp/venv-nt)
    $python_nt data/reference/make_architecture_reference.py

It draws the inputs (seeded), converts them NCHW -> NHWC for stax, and writes
data/reference/architectures_nt.npz with, per case, x1 (N1 = 5), x2 (N2 = 3), and the stax
kernels nngp/ntk for (x1, None) and (x1, x2), all float64 (jax_enable_x64).
"""

import json
import pathlib

import jax

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

HERE = pathlib.Path(__file__).parent
ACTIVATIONS = {
    "relu": lambda d: stax.Relu(),
    "erf": lambda d: stax.Erf(),
    "gelu": lambda d: stax.Gelu(approximate=False),
    "abs": lambda d: stax.Abs(),
    "sin": lambda d: stax.Sin(),
    "leaky_relu": lambda d: stax.LeakyRelu(d["negative_slope"]),
}


def _pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def to_stax(layers, parameterization):
    out = []
    for d in layers:
        t = d["type"]
        if t == "conv":
            out.append(stax.Conv(d["channels"], _pair(d["kernel_size"]), _pair(d.get("stride", 1)),
                                 d.get("padding", "same").upper(), W_std=d["sigma_w"], b_std=d["sigma_b"],
                                 parameterization=parameterization))
        elif t == "dense":
            out.append(stax.Dense(d["features"], W_std=d["sigma_w"], b_std=d["sigma_b"],
                                  parameterization=parameterization))
        elif t == "act":
            out.append(ACTIVATIONS[d["name"]](d))
        elif t == "avgpool":
            w = _pair(d["window"])
            out.append(stax.AvgPool(w, _pair(d.get("stride", d["window"])), "VALID"))
        elif t == "gap":
            out.append(stax.GlobalAvgPool())
        elif t == "flatten":
            out.append(stax.Flatten())
        elif t == "layernorm":
            out.append(stax.LayerNorm(axis=-1))
        elif t == "residual":
            branch = stax.serial(*to_stax(d["branch"], parameterization))
            out.append(stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum()))
        else:
            raise ValueError(t)
    return out


def main():
    cases = json.loads((HERE / "architecture_cases.json").read_text())["cases"]
    rng = np.random.default_rng(20261201)
    arrays = {}
    for name, case in cases.items():
        shape = tuple(case["image"]) if "image" in case else (case["flat"],)
        x1 = rng.standard_normal((5, *shape))
        x2 = rng.standard_normal((3, *shape))
        _, _, kernel_fn = stax.serial(*to_stax(case["layers"], case["parameterization"]))
        nhwc = (lambda a: a.transpose(0, 2, 3, 1)) if len(shape) == 3 else (lambda a: a)
        k11 = kernel_fn(nhwc(x1), None, ("nngp", "ntk"))
        k12 = kernel_fn(nhwc(x1), nhwc(x2), ("nngp", "ntk"))
        arrays[f"{name}/x1"], arrays[f"{name}/x2"] = x1, x2
        arrays[f"{name}/nngp11"], arrays[f"{name}/ntk11"] = np.asarray(k11.nngp), np.asarray(k11.ntk)
        arrays[f"{name}/nngp12"], arrays[f"{name}/ntk12"] = np.asarray(k12.nngp), np.asarray(k12.ntk)
        print(name, np.asarray(k11.ntk)[0, :3])
    np.savez_compressed(HERE / "architectures_nt.npz", **arrays)


if __name__ == "__main__":
    main()
