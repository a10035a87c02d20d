"""Fully-connected networks: the ``layers.mlp`` preset of :func:`empirical.build`."""

from __future__ import annotations

import torch

from ntktheory import layers as L
from ntktheory._validate import check_int
from ntktheory.activations import ActivationSpec

from ._activations import TorchActivation
from ._build import Network, ScaledLinear, build

__all__ = ["MLP"]


class MLP(Network):
    """Fully-connected network of ``depth`` hidden layers: ``empirical.build(layers.mlp(...))``.

    NTK parameterisation: ``h^1 = sigma_w/sqrt(d) W^1 x + sigma_b b^1``,
    ``h^{l+1} = sigma_w/sqrt(n) W^{l+1} phi(h^l) + sigma_b b^{l+1}`` with all W, b ~ N(0, 1).
    Standard parameterisation: the same function, with W ~ N(0, sigma_w^2/fan_in) and
    b ~ N(0, sigma_b^2) trained directly (biases are trained even when sigma_b = 0: they start at 0).

    Parameters
    ----------
    in_features
        Input dimension d.
    width
        Hidden width n (all hidden layers). This and every later argument are keyword-only.
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
        *,
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
        in_features = check_int("in_features", in_features, minimum=1)
        width = check_int("width", width, minimum=1)
        arch = L.mlp(depth=depth, width=width, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b,
                     out_features=check_int("out_features", out_features, minimum=1))
        net = build(arch, (in_features,), parameterization=parameterization, seed=seed, dtype=dtype, device=device)
        super().__init__(list(net), architecture=arch, in_shape=net.in_shape, parameterization=net.parameterization,
                         seed=net.seed)
        self.in_features, self.width, self.depth, self.out_features = in_features, width, arch.layers[0].times, \
            out_features
        self.sigma_w, self.sigma_b = arch.layers[-1].sigma_w, arch.layers[-1].sigma_b

    @property
    def layers(self) -> list[ScaledLinear]:
        """The depth + 1 linear maps, in order."""
        return [m for m in self if isinstance(m, ScaledLinear)]

    @property
    def phi(self) -> TorchActivation:
        """The nonlinearity (a TorchActivation; shared spec for all hidden layers)."""
        acts = [m for m in self if isinstance(m, TorchActivation)]
        return acts[0] if acts else TorchActivation(self.architecture.layers[0].block.layers[1].function)

    @property
    def activation(self):
        """The resolved :class:`ntktheory.Activation`."""
        return self.architecture.layers[0].block.layers[1].function

    @property
    def config(self) -> dict[str, object]:
        """The constructor arguments (activation by name and params), for Dataset attrs."""
        return {
            "in_features": self.in_features,
            "width": self.width,
            "depth": self.depth,
            "activation": self.activation.name,
            "activation_params": dict(self.activation.params),
            "sigma_w": self.sigma_w,
            "sigma_b": self.sigma_b,
            "parameterization": self.parameterization,
            "out_features": self.out_features,
            "seed": self.seed,
        }
