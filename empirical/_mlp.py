"""Fully-connected networks with DESIGN.md's forward function, in both parameterisations."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ntktheory._validate import check_choice, check_int, check_nonnegative, check_real
from ntktheory.activations import ActivationSpec

from ._activations import TorchActivation
from ._device import check_dtype, resolve_device

__all__ = ["MLP", "ScaledLinear"]

PARAMETERIZATIONS = ("ntk", "standard")


class ScaledLinear(nn.Module):
    """h = weight_scale * z W^T + bias_scale * b: a Linear map with fixed multipliers.

    The NTK parameterisation uses ``weight_scale = sigma_w / sqrt(fan_in)`` and
    ``bias_scale = sigma_b`` on N(0, 1) parameters; the standard one uses multipliers 1 on
    parameters drawn with the variances ``sigma_w^2 / fan_in`` and ``sigma_b^2``. In both,
    ``weight_var = sigma_w^2 / fan_in`` and ``bias_var = sigma_b^2`` are the variances of the
    effective weights at initialisation (what the NNGP uses).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        *,
        weight_scale: float,
        bias_scale: float,
        weight_var: float,
        bias_var: float,
    ) -> None:
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
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weight_scale={self.weight_scale:.6g}, bias_scale={self.bias_scale:.6g}"
        )


class MLP(nn.Module):
    """Fully-connected network of ``depth`` hidden layers, exactly as in DESIGN.md.

    NTK parameterisation: ``h^1 = sigma_w/sqrt(d) W^1 x + sigma_b b^1``,
    ``h^{l+1} = sigma_w/sqrt(n) W^{l+1} phi(h^l) + sigma_b b^{l+1}`` with all W, b ~ N(0, 1).
    Standard parameterisation: the same function, with W ~ N(0, sigma_w^2/fan_in) and
    b ~ N(0, sigma_b^2) trained directly (biases are trained even when sigma_b = 0: they start at 0).

    Parameters
    ----------
    in_features
        Input dimension d.
    width
        Hidden width n (all hidden layers).
    depth
        Number L of hidden layers (nonlinearities); the network has L + 1 linear maps.
    activation
        Registry name, :class:`ntktheory.Activation` or sympy expression in ``x``.
    sigma_w, sigma_b
        Weight and bias standard deviations (sigma_w > 0, sigma_b >= 0).
    parameterization
        ``"ntk"`` (default) or ``"standard"``.
    out_features
        Readout width k.
    seed
        Initialisation seed: the parameters are drawn on the CPU in float64 from a generator seeded
        with it, then cast and moved, so a seed gives the same network on every device.
    dtype
        Floating dtype of the parameters (float64 by default).
    device
        ``"auto"`` (CUDA when present, else CPU), a device string or a ``torch.device``.

    Examples
    --------
    >>> import torch
    >>> net = MLP(3, width=16, depth=2, activation="tanh", sigma_w=1.5, sigma_b=0.1, device="cpu")
    >>> net(torch.ones(5, 3, dtype=torch.float64)).shape
    torch.Size([5, 1])
    >>> [tuple(p.shape) for p in net.parameters()][:2]
    [(16, 3), (16,)]
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        activation: ActivationSpec,
        sigma_w: float = 1.0,
        sigma_b: float = 0.0,
        parameterization: str = "ntk",
        out_features: int = 1,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features, minimum=1)
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=0)
        out_features = check_int("out_features", out_features, minimum=1)
        sigma_w = check_real("sigma_w", sigma_w)
        if sigma_w <= 0:
            raise ValueError(f"`sigma_w` must be > 0, got {sigma_w!r}.")
        sigma_b = check_nonnegative("sigma_b", sigma_b)
        parameterization = check_choice("parameterization", parameterization, PARAMETERIZATIONS)
        seed = check_int("seed", seed, minimum=0)
        dtype = check_dtype(dtype)
        dev = resolve_device(device)

        self.in_features, self.width, self.depth, self.out_features = in_features, width, depth, out_features
        self.sigma_w, self.sigma_b = sigma_w, sigma_b
        self.parameterization, self.seed = parameterization, seed
        self.phi = TorchActivation(activation)

        gen = torch.Generator(device="cpu").manual_seed(seed)
        dims = [in_features] + [width] * depth + [out_features]
        layers = []
        for fan_in, fan_out in itertools.pairwise(dims):
            w = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64)
            b = torch.randn(fan_out, generator=gen, dtype=torch.float64)
            weight_var, bias_var = sigma_w**2 / fan_in, sigma_b**2
            if parameterization == "ntk":
                scales = {"weight_scale": sigma_w / math.sqrt(fan_in), "bias_scale": sigma_b}
            else:
                w, b = w * math.sqrt(weight_var), b * sigma_b
                scales = {"weight_scale": 1.0, "bias_scale": 1.0}
            layers.append(
                ScaledLinear(
                    w.to(device=dev, dtype=dtype),
                    b.to(device=dev, dtype=dtype),
                    weight_var=weight_var,
                    bias_var=bias_var,
                    **scales,
                )
            )
        self.layers = nn.ModuleList(layers)

    @property
    def activation(self):
        """The resolved :class:`ntktheory.Activation`."""
        return self.phi.spec

    @property
    def config(self) -> dict[str, object]:
        """The constructor arguments (activation by name and params), for Dataset attrs."""
        return {
            "in_features": self.in_features,
            "width": self.width,
            "depth": self.depth,
            "activation": self.activation.name,
            "activation_params": repr(dict(self.activation.params)),
            "sigma_w": self.sigma_w,
            "sigma_b": self.sigma_b,
            "parameterization": self.parameterization,
            "out_features": self.out_features,
            "seed": self.seed,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x
        for layer in self.layers[:-1]:
            z = self.phi(layer(z))
        return self.layers[-1](z)
