"""Curvature and gradients: Hessian spectral norms by Hessian-vector products, gradient norms.

Liu, Zhu & Belkin 2020 (arXiv:2010.01092): for a wide network with a linear readout the model
Hessian's spectral norm vanishes like ~1/sqrt(width) (transition to linearity), while with a
non-linear output g = psi(f), H_g = psi'(f) H_f + psi''(f) grad f grad f^T keeps norm Omega(1),
because |grad f|^2 is the NTK. ``output_activation`` measures that variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.func import functional_call

from ntktheory._validate import check_choice, check_int
from ntktheory.activations import ActivationSpec

from ._activations import TorchActivation
from ._device import exact_matmul
from ._ntk import as_inputs
from ._training import LOSSES, _loss_and_grad_f, _targets

__all__ = ["gradient_norms", "loss_hessian_norm", "model_hessian_norm"]

SOLVERS = ("lanczos", "power")


def _flat(model: nn.Module):
    """(theta0 flat, unflatten, names) over trainable parameters."""
    named = [(k, v.detach()) for k, v in model.named_parameters() if v.requires_grad]
    if not named:
        raise ValueError("`model` has no trainable parameters (requires_grad).")
    shapes = [v.shape for _, v in named]
    sizes = [v.numel() for _, v in named]
    theta0 = torch.cat([v.reshape(-1) for _, v in named])
    frozen = {k: v.detach() for k, v in model.named_parameters() if not v.requires_grad}
    buffers = dict(model.named_buffers())

    def call(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {k: p.view(s) for (k, _), p, s in zip(named, torch.split(flat, sizes), shapes)}
        return functional_call(model, (params, frozen, buffers), (x,))

    return theta0, call


def _hvp(objective: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor):
    """Hessian-vector products of a scalar function at theta0 (Pearlmutter's reverse-over-reverse).

    The gradient graph is built once (create_graph=True); each product is one backward pass
    through it, so an iterative eigensolver pays one extra backward per iteration.
    """
    theta = theta0.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(objective(theta), theta, create_graph=True)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        if not g.requires_grad:  # the objective is linear in theta: zero Hessian
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(g, theta, grad_outputs=v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(v) if hv is None else hv.detach()

    return hvp


def _spectral_norm(hvp: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, method: str,
                   iterations: int, seed: int) -> float:
    """Largest |eigenvalue| of the symmetric operator ``hvp`` (dimension = theta0.numel())."""
    dim = theta0.numel()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(theta0)
    v = v / v.norm()
    if method == "power":
        lam = 0.0
        for _ in range(iterations):
            w = hvp(v)
            lam = torch.dot(v, w).item()
            norm = w.norm()
            if norm == 0:
                return 0.0
            v = w / norm
        return abs(lam)
    # Lanczos with full re-orthogonalisation: exact once m = dim, accurate extremes much earlier.
    m = min(iterations, dim)
    basis = torch.zeros(m, dim, dtype=theta0.dtype, device=theta0.device)
    alphas, betas = [], []
    basis[0] = v
    for j in range(m):
        w = hvp(basis[j])
        alpha = torch.dot(w, basis[j])
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        alphas.append(alpha.item())
        beta = w.norm().item()
        if j == m - 1 or beta < 1e-12 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    t = np.diag(alphas) + np.diag(betas[: len(alphas) - 1], 1) + np.diag(betas[: len(alphas) - 1], -1)
    return float(np.abs(np.linalg.eigvalsh(t)).max())


def _checks(model, method, iterations, seed):
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {model!r} of type {type(model).__name__}.")
    check_choice("method", method, SOLVERS)
    check_int("iterations", iterations, minimum=1)
    check_int("seed", seed, minimum=0)


def model_hessian_norm(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    direction: torch.Tensor | np.ndarray | None = None,
    output_activation: ActivationSpec | None = None,
    method: str = "lanczos",
    iterations: int = 40,
    seed: int = 0,
) -> float:
    r"""Spectral norm of the Hessian of the model output at one input, w.r.t. the parameters.

    For k outputs, ``direction=None`` gives ``max_a ||d^2 g_a / dtheta^2||`` (Liu et al.'s norm of
    a vector-valued model), and a vector v of length k the norm of the Hessian of ``v . g``.
    ``g = f`` by default, or ``g = psi(f)`` with ``output_activation=psi`` (a non-linear last layer).

    Parameters
    ----------
    model
        Any ``nn.Module`` (its trainable parameters).
    x
        One input, shape (d,) or (1, d).
    direction
        Optional output direction (k,).
    output_activation
        Optional activation spec psi applied to the output.
    method
        ``"lanczos"`` (default; full re-orthogonalisation) or ``"power"`` (power iteration).
    iterations
        Hessian-vector products used (Lanczos is exact when >= number of parameters).
    seed
        Seed of the random start vector.

    Returns
    -------
    float
        The largest ``|eigenvalue|``.

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=4, depth=1, activation="tanh", device="cpu")
    >>> x = torch.tensor([0.3, -0.7], dtype=torch.float64)
    >>> empirical.model_hessian_norm(net, x) > 0
    True
    >>> linear = empirical.MLP(2, width=4, depth=0, activation="identity", device="cpu")
    >>> empirical.model_hessian_norm(linear, x)  # a linear model has no curvature
    0.0
    """
    _checks(model, method, iterations, seed)
    theta0, call = _flat(model)
    xt = _single_point(x, theta0)
    psi = None if output_activation is None else TorchActivation(output_activation)
    with torch.no_grad():
        k = call(theta0, xt).shape[-1]
    if direction is None:
        dirs = list(torch.eye(k, dtype=theta0.dtype, device=theta0.device))
    else:
        v = torch.as_tensor(np.asarray(direction, dtype=np.float64) if not isinstance(direction, torch.Tensor)
                            else direction).to(theta0).reshape(-1)
        if v.numel() != k:
            raise ValueError(f"`direction` must have length {k} (the number of outputs); got {v.numel()}.")
        dirs = [v]
    norms = []
    with exact_matmul():
        for v in dirs:
            def g(flat, v=v):
                out = call(flat, xt)[0]
                return torch.dot(v, psi(out) if psi is not None else out)

            norms.append(_spectral_norm(_hvp(g, theta0), theta0, method, iterations, seed))
    return max(norms)


def loss_hessian_norm(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    loss: str = "mse",
    method: str = "lanczos",
    iterations: int = 40,
    seed: int = 0,
) -> float:
    r"""Spectral norm of the Hessian of the training loss w.r.t. the parameters.

    The loss is that of :func:`train`: ``(1/2N) sum |f(x_i) - y_i|^2`` or mean cross-entropy. For
    MSE near a linear regime its top eigenvalue is ``lambda_max(Theta) / N``, so
    ``2 / loss_hessian_norm`` is the critical learning rate.

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=8, depth=1, activation="tanh", device="cpu")
    >>> x = torch.randn(6, 2, dtype=torch.float64); y = torch.zeros(6, 1, dtype=torch.float64)
    >>> empirical.loss_hessian_norm(net, x, y) > 0
    True
    """
    _checks(model, method, iterations, seed)
    loss = check_choice("loss", loss, LOSSES)
    theta0, call = _flat(model)
    xt = as_inputs(theta0.dtype, theta0.device, "x", x, None)
    with torch.no_grad():
        k = call(theta0, xt[:1]).shape[-1]
    yt = _targets(loss, y, xt.shape[0], k, theta0.dtype, theta0.device)

    def objective(flat):
        return _loss_and_grad_f(loss, call(flat, xt), yt)[0]

    with exact_matmul():
        return _spectral_norm(_hvp(objective, theta0), theta0, method, iterations, seed)


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray | None = None,
    *,
    loss: str = "mse",
) -> xr.DataArray:
    r"""Euclidean norm of the gradient for every trainable parameter tensor.

    With ``y``, the gradient of the training loss (as in :func:`train`); without, of the mean
    output ``(1/(N k)) sum f`` — the backpropagated signal alone, for exploding/vanishing-gradient
    diagnostics across layers.

    Returns
    -------
    xarray.DataArray
        On dim ``parameter`` (the parameter names), float64.

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=8, depth=2, activation="tanh", sigma_b=0.1, device="cpu")
    >>> g = empirical.gradient_norms(net, torch.randn(4, 2, dtype=torch.float64))
    >>> [str(name) for name in g["parameter"].values[:2]]
    ['0.weight', '0.bias']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {model!r} of type {type(model).__name__}.")
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("`model` has no trainable parameters (requires_grad).")
    xt = as_inputs(named[0][1].dtype, named[0][1].device, "x", x, None)
    with exact_matmul():
        out = model(xt)
        if y is None:
            objective = out.mean()
        else:
            loss = check_choice("loss", loss, LOSSES)
            yt = _targets(loss, y, xt.shape[0], out.shape[-1], out.dtype, out.device)
            objective = _loss_and_grad_f(loss, out, yt)[0]
        grads = torch.autograd.grad(objective, [p for _, p in named], allow_unused=True)
    values = [0.0 if g is None else g.norm().item() for g in grads]
    return xr.DataArray(np.array(values), dims=("parameter",), coords={"parameter": [k for k, _ in named]},
                        name="gradient_norm")


def _single_point(x, theta0) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[0] != 1:
        raise ValueError(
            f"`x` must be one input, shape (d,) or (1, d); got shape {tuple(t.shape)!r}. "
            "Call once per point for several inputs."
        )
    return as_inputs(theta0.dtype, theta0.device, "x", t, None)


_ = math
