"""Torch networks built from :mod:`ntktheory.layers` descriptions, with ntktheory's conventions.

``build(architecture, in_shape)`` walks the description and makes one torch module per layer
(one builder per layer class, registered with ``functools.singledispatch``). Weighted layers are
:class:`ScaledLinear` and :class:`ScaledConv2d`: fixed multipliers on N(0, 1) parameters in the NTK
parameterisation (``sigma_w / sqrt(fan_in)``, ``sigma_b``), plain parameters drawn with the
variances ``sigma_w^2 / fan_in`` and ``sigma_b^2`` in the standard one (biases are trained even
when sigma_b = 0: they then start at 0). Parameters are drawn on the CPU in float64 from one
generator seeded with ``seed``, weight then bias, layer by layer in network order, and then cast
and moved, so a seed gives the same network on every device, and ``build(layers.mlp(...))``
draws exactly what :class:`~empirical.MLP` draws.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ntktheory import layers as L
from ntktheory._validate import check_choice, check_int

from ._activations import TorchActivation
from ._device import check_dtype, resolve_device

__all__ = ["AvgPool", "Flatten", "GlobalAvgPool", "LayerNorm", "Network", "Residual", "ScaledConv2d",
           "ScaledLinear", "build"]

PARAMETERIZATIONS = ("ntk", "standard")
#: Added to the variance in LayerNorm (as neural-tangents' stax does), so all-zero inputs give 0.
LAYER_NORM_EPS = 1e-12


# ---------------------------------------------------------------------- modules
class ScaledLinear(nn.Module):
    """h = weight_scale * z W^T + bias_scale * b: a Linear map with fixed multipliers.

    The NTK parameterisation uses ``weight_scale = sigma_w / sqrt(fan_in)`` and
    ``bias_scale = sigma_b`` on N(0, 1) parameters; the standard one uses multipliers 1 on
    parameters drawn with the variances ``sigma_w^2 / fan_in`` and ``sigma_b^2``. In both,
    ``weight_var = sigma_w^2 / fan_in`` and ``bias_var = sigma_b^2`` are the variances of the
    effective weights at initialisation (what the NNGP uses).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, *, weight_scale: float, bias_scale: float,
                 weight_var: float, bias_var: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)
        self.weight_scale = float(weight_scale)
        self.bias_scale = float(bias_scale)
        self.weight_var = float(weight_var)
        self.bias_var = float(bias_var)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z @ self.weight.T
        if self.weight_scale != 1.0:
            h = self.weight_scale * h
        if self.bias_scale != 0.0:
            h = h + self.bias_scale * self.bias
        return h

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"weight_scale={self.weight_scale:.6g}, bias_scale={self.bias_scale:.6g}")


class ScaledConv2d(nn.Module):
    """h = weight_scale * (W * pad(z)) + bias_scale * b, shared weights, explicit zero padding.

    ``padding`` is ((top, bottom), (left, right)), applied before a 'valid' convolution, which
    reproduces jax's 'same' split (the extra row/column after) for every stride and even kernels.
    ``weight_var = sigma_w^2 / (C_in k_h k_w)`` and ``bias_var = sigma_b^2`` as for ScaledLinear.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, *, stride: tuple[int, int],
                 padding: tuple[tuple[int, int], tuple[int, int]], weight_scale: float, bias_scale: float,
                 weight_var: float, bias_var: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)
        self.stride = tuple(stride)
        self.padding = tuple(tuple(p) for p in padding)
        self.weight_scale = float(weight_scale)
        self.bias_scale = float(bias_scale)
        self.weight_var = float(weight_var)
        self.bias_var = float(bias_var)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return tuple(self.weight.shape[2:])

    def pad(self, z: torch.Tensor) -> torch.Tensor:
        (pt, pb), (pl, pr) = self.padding
        return F.pad(z, (pl, pr, pt, pb)) if (pt or pb or pl or pr) else z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(self.pad(z), self.weight, stride=self.stride)
        if self.weight_scale != 1.0:
            h = self.weight_scale * h
        if self.bias_scale != 0.0:
            h = h + self.bias_scale * self.bias[:, None, None]
        return h

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, weight_scale={self.weight_scale:.6g}, "
                f"bias_scale={self.bias_scale:.6g}")


class AvgPool(nn.Module):
    """Average pooling over windows, 'valid' padding."""

    def __init__(self, window: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.window, self.stride = tuple(window), tuple(stride)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(z, self.window, self.stride)


class GlobalAvgPool(nn.Module):
    """Mean over all positions: (N, C, H, W) -> (N, C)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.mean(dim=(-2, -1))


class Flatten(nn.Module):
    """(N, C, H, W) -> (N, C H W) in (C, H, W) order."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.flatten(1)


class LayerNorm(nn.Module):
    """(h - mean_c h) / sqrt(var_c h + eps) over the channels (dim 1), no affine parameters."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mean = z.mean(dim=1, keepdim=True)
        var = z.var(dim=1, keepdim=True, unbiased=False)
        return (z - mean) / torch.sqrt(var + LAYER_NORM_EPS)


class Residual(nn.Module):
    """z + branch(z)."""

    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.branch(z)


class Network(nn.Sequential):
    """A torch network built from an :mod:`ntktheory.layers` description (see :func:`build`).

    Attributes
    ----------
    architecture
        The description it was built from.
    in_shape
        Shape of one input, (d,) or (C, H, W).
    parameterization, seed
        As given to :func:`build`.
    """

    def __init__(self, modules: list[nn.Module], *, architecture: L.Layer, in_shape: tuple[int, ...],
                 parameterization: str, seed: int) -> None:
        super().__init__(*modules)
        self.architecture = architecture
        self.in_shape = tuple(in_shape)
        self.parameterization = parameterization
        self.seed = seed

    def __getitem__(self, idx):
        """A module, or for a slice a plain ``nn.Sequential`` of the modules (no longer the whole network)."""
        if isinstance(idx, slice):
            return nn.Sequential(*list(self)[idx])
        return super().__getitem__(idx)

    @property
    def config(self) -> dict[str, object]:
        """The architecture (as text), input shape, parameterisation and seed, for Dataset attrs."""
        return {"architecture": self.architecture.describe(), "in_shape": list(self.in_shape),
                "parameterization": self.parameterization, "seed": self.seed}

    def weighted_modules(self) -> list[nn.Module]:
        """The ScaledLinear and ScaledConv2d modules in forward order (residual branches included)."""
        return [m for m in self.modules() if isinstance(m, (ScaledLinear, ScaledConv2d))]


# ---------------------------------------------------------------------- builders
@dataclasses.dataclass
class _Context:
    generator: torch.Generator
    parameterization: str
    dtype: torch.dtype
    device: torch.device


def _draw(ctx: _Context, weight_shape: tuple[int, ...], fan_in: int, sigma_w: float, sigma_b: float) -> dict:
    """Weight then bias, N(0, 1) on the CPU in float64, scaled per parameterisation."""
    w = torch.randn(weight_shape, generator=ctx.generator, dtype=torch.float64)
    b = torch.randn(weight_shape[0], generator=ctx.generator, dtype=torch.float64)
    weight_var, bias_var = sigma_w**2 / fan_in, sigma_b**2
    if ctx.parameterization == "ntk":
        scales = {"weight_scale": sigma_w / math.sqrt(fan_in), "bias_scale": sigma_b}
    else:
        w, b = w * math.sqrt(weight_var), b * sigma_b
        scales = {"weight_scale": 1.0, "bias_scale": 1.0}
    return {"weight": w.to(device=ctx.device, dtype=ctx.dtype), "bias": b.to(device=ctx.device, dtype=ctx.dtype),
            "weight_var": weight_var, "bias_var": bias_var, **scales}


def _width(layer: L.Layer, value: int | None, name: str, path: str) -> int:
    if value is None:
        raise ValueError(
            f"empirical.build: layer {path}, {layer.describe()}, has no `{name}`; a finite network needs it "
            f"(e.g. {type(layer).__name__}({name}=256, ...)). `None` is for infinite-width kernels only."
        )
    return value


@functools.singledispatch
def _build_layer(layer: L.Layer, in_shape: tuple, ctx: _Context, path: str) -> nn.Module:
    raise NotImplementedError(f"empirical.build has no torch builder for {type(layer).__name__}.")


@_build_layer.register
def _(layer: L.Dense, in_shape, ctx, path):
    features = _width(layer, layer.features, "features", path)
    fan_in = in_shape[0]
    return ScaledLinear(**_draw(ctx, (features, fan_in), fan_in, layer.sigma_w, layer.sigma_b))


@_build_layer.register
def _(layer: L.Conv, in_shape, ctx, path):
    channels = _width(layer, layer.channels, "channels", path)
    kh, kw = layer.kernel_size
    fan_in = in_shape[0] * kh * kw
    params = _draw(ctx, (channels, in_shape[0], kh, kw), fan_in, layer.sigma_w, layer.sigma_b)
    return ScaledConv2d(stride=layer.stride, padding=layer.padding_amounts(in_shape), **params)


@_build_layer.register
def _(layer: L.Activation, in_shape, ctx, path):
    return TorchActivation(layer.function)


@_build_layer.register
def _(layer: L.AvgPool, in_shape, ctx, path):
    return AvgPool(layer.window, layer.stride)


@_build_layer.register
def _(layer: L.GlobalAvgPool, in_shape, ctx, path):
    return GlobalAvgPool()


@_build_layer.register
def _(layer: L.Flatten, in_shape, ctx, path):
    return Flatten()


@_build_layer.register
def _(layer: L.LayerNorm, in_shape, ctx, path):
    return LayerNorm()


@_build_layer.register
def _(layer: L.Residual, in_shape, ctx, path):
    return Residual(nn.Sequential(*_build_sequence(layer.branch, in_shape, ctx, f"{path}.branch")))


def _build_sequence(layer: L.Layer, in_shape: tuple, ctx: _Context, path: str) -> list[nn.Module]:
    """Modules of a layer, with Serial and Repeat unrolled (each repetition its own weights)."""
    if isinstance(layer, L.Serial):
        modules = []
        for i, sub in enumerate(layer.layers, start=1):
            modules += _build_sequence(sub, in_shape, ctx, f"{path}.{i}" if path else str(i))
            in_shape = sub.out_shape(in_shape)
        return modules
    if isinstance(layer, L.Repeat):
        modules = []
        for r in range(1, layer.times + 1):
            modules += _build_sequence(layer.block, in_shape, ctx, f"{path}[{r}]")
            in_shape = layer.block.out_shape(in_shape)
        return modules
    return [_build_layer(layer, in_shape, ctx, path or "1")]


def build(
    architecture: L.Layer,
    in_shape: int | tuple[int, ...],
    *,
    parameterization: str = "ntk",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
) -> Network:
    """The torch network of an :mod:`ntktheory.layers` architecture, with ntktheory's conventions.

    Parameters
    ----------
    architecture
        A layer of :mod:`ntktheory.layers` (usually ``layers.serial(...)``); every Dense needs
        ``features`` and every Conv ``channels``.
    in_shape
        Shape of one input: d (or (d,)) for flat inputs, (C, H, W) for images.
    parameterization
        ``"ntk"`` (N(0, 1) parameters with fixed multipliers) or ``"standard"``.
    seed
        Initialisation seed (one CPU float64 generator for all parameters, in network order).
    dtype, device
        Parameter dtype (float64 by default) and device (``"auto"``: CUDA when present).

    Returns
    -------
    Network
        An ``nn.Sequential`` of the built modules, with ``architecture``, ``in_shape``,
        ``parameterization``, ``seed`` and ``config``. Its empirical NTK (:func:`empirical.ntk`)
        averages over seeds to ``ntktheory.kernels(x, architecture=architecture)["ntk"]`` as the
        widths grow.

    Raises
    ------
    ValueError
        If the architecture does not fit ``in_shape`` (the message names the layer), a width is
        missing, or an argument is invalid.

    Examples
    --------
    >>> import torch, empirical
    >>> from ntktheory import layers as L
    >>> arch = L.serial(L.Conv(channels=8, kernel_size=3), L.Activation("relu"), L.GlobalAvgPool(),
    ...                 L.Dense(features=1))
    >>> net = empirical.build(arch, in_shape=(1, 6, 6), device="cpu")
    >>> net(torch.zeros(2, 1, 6, 6, dtype=torch.float64)).shape
    torch.Size([2, 1])
    >>> [type(m).__name__ for m in net]
    ['ScaledConv2d', 'TorchActivation', 'GlobalAvgPool', 'ScaledLinear']
    """
    parameterization = check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    seed = check_int("seed", seed, minimum=0)
    dtype = check_dtype(dtype)
    dev = resolve_device(device)
    shape = L.as_shape(in_shape)
    L.check(architecture, shape)
    ctx = _Context(torch.Generator(device="cpu").manual_seed(seed), parameterization, dtype, dev)
    modules = _build_sequence(architecture, shape, ctx, "")
    return Network(modules, architecture=architecture, in_shape=shape, parameterization=parameterization, seed=seed)
