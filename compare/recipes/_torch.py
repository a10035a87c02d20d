"""The torch-side measurements the recipes need that ``empirical`` does not (yet) offer.

* :func:`train_gd` -- full-batch gradient descent on (1/2N)|f(X) - Y|^2 for any ``nn.Module``
  (including a network whose last layer is non-linear), recording the loss at every step and the
  outputs at chosen steps; divergence is recorded, never raised.
* :func:`hessian_spectral_norm` -- spectral norm of the Hessian of a scalar output f(x) with
  respect to the parameters, by power iteration on Hessian-vector products (double backward).

The NTK itself always comes from :func:`empirical.ntk`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import empirical

try:  # public once empirical's __init__ re-exports it
    from empirical import ensemble_kernels
except ImportError:  # pragma: no cover - until then
    from empirical._ensemble import ensemble_kernels

__all__ = ["GDRun", "ensemble_kernels", "TanhReadout", "as_tensor", "hessian_spectral_norm", "ntk_numpy", "train_gd"]


def as_tensor(x: np.ndarray, model: nn.Module) -> torch.Tensor:
    """``x`` as a tensor on the model's device and dtype."""
    p = next(model.parameters())
    return torch.as_tensor(np.asarray(x), dtype=p.dtype, device=p.device)


def ntk_numpy(model: nn.Module, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
    """:func:`empirical.ntk` (method "auto") as a float64 numpy array."""
    with torch.no_grad():
        k = empirical.ntk(model, as_tensor(x1, model), None if x2 is None else as_tensor(x2, model))
    return k.detach().cpu().numpy().astype(np.float64)


class TanhReadout(nn.Module):
    """g(x) = tanh(f(x)): a network whose last layer is non-linear (Liu, Zhu & Belkin 2020, Sec. 4)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


@dataclass(frozen=True)
class GDRun:
    """Result of :func:`train_gd`.

    Attributes
    ----------
    loss
        Training loss at steps 0..steps (NaN after divergence), shape (steps + 1,).
    outputs
        Outputs on the evaluation points at each recorded step, shape (len(record), M).
    diverged
        True when the loss became non-finite or exceeded 1e6 times its initial value.
    diverged_step
        The step at which that happened (-1 if it did not).
    """

    loss: np.ndarray
    outputs: np.ndarray
    diverged: bool
    diverged_step: int


def train_gd(
    model: nn.Module,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    learning_rate: float,
    steps: int,
    record: Sequence[int] = (),
    x_eval: np.ndarray | None = None,
) -> GDRun:
    """Full-batch gradient descent on (1/2N)|f(X) - Y|^2, in place on ``model``.

    Parameters
    ----------
    model
        Any module with a scalar output per input (shape (N, 1) or (N,)).
    x_train, y_train
        Training inputs (N, d) and targets (N,).
    learning_rate
        eta (absolute; callers scale it by the NTK's largest eigenvalue).
    steps
        Number of gradient steps.
    record
        Steps (0..steps) at which outputs on ``x_eval`` are recorded.
    x_eval
        Evaluation points (M, d); default the training inputs.

    Returns
    -------
    GDRun
    """
    x = as_tensor(x_train, model)
    y = as_tensor(y_train, model).reshape(-1)
    xe = x if x_eval is None else as_tensor(x_eval, model)
    params = [p for p in model.parameters() if p.requires_grad]
    n = x.shape[0]
    record = sorted(set(int(s) for s in record))
    loss = np.full(steps + 1, np.nan)
    outputs = np.full((len(record), xe.shape[0]), np.nan)
    diverged, diverged_step = False, -1
    for t in range(steps + 1):
        if t in record:
            with torch.no_grad():
                outputs[record.index(t)] = model(xe).reshape(-1).cpu().numpy()
        f = model(x).reshape(-1)
        value = 0.5 * torch.sum((f - y) ** 2) / n
        loss[t] = float(value.detach())
        if not math.isfinite(loss[t]) or loss[t] > 1e6 * max(loss[0], 1e-12):
            diverged, diverged_step = True, t
            loss[t:] = np.nan
            break
        if t == steps:
            break
        grads = torch.autograd.grad(value, params, allow_unused=True)  # e.g. biases with bias_scale 0
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p.sub_(learning_rate * g)
    return GDRun(loss, outputs, diverged, diverged_step)


def hessian_spectral_norm(
    model: nn.Module, x: np.ndarray, *, iterations: int = 50, tol: float = 1e-6, seed: int = 0
) -> np.ndarray:
    r"""Spectral norm of the Hessian of the output f(x_i) w.r.t. the parameters, for each input.

    Power iteration v <- H v / |H v| on Hessian-vector products (double backward), stopped when
    |H v| changes by less than ``tol`` relatively; |H v| for the unit vector v tends to ||H||_2,
    the largest eigenvalue in absolute value, also when +lambda and -lambda are both eigenvalues
    (where the Rayleigh quotient would oscillate). Liu, Zhu & Belkin 2020 (arXiv:2010.01092, Thm. 3.2)
    bound this norm by O~(1/sqrt(m)) in the width m for a linear readout.

    Parameters
    ----------
    model
        A module with scalar output per input.
    x
        Inputs (M, d); one Hessian per input.
    iterations, tol
        Power-iteration budget and relative tolerance.
    seed
        Seed of the starting vector.

    Returns
    -------
    numpy.ndarray
        Shape (M,).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    xs = as_tensor(x, model)
    out = np.empty(xs.shape[0])
    for i in range(xs.shape[0]):
        f = model(xs[i : i + 1]).reshape(())
        pairs = [(p, g) for p, g in zip(params, torch.autograd.grad(f, params, create_graph=True, allow_unused=True))
                 if g is not None]
        params_used, grads = [p for p, _ in pairs], [g for _, g in pairs]
        v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) for p in params_used]
        norm = math.sqrt(sum(float(torch.sum(u * u)) for u in v))
        v = [u / norm for u in v]
        estimate = 0.0
        for _ in range(iterations):
            hv = torch.autograd.grad(grads, params_used, grad_outputs=v, retain_graph=True, allow_unused=True)
            hv = [torch.zeros_like(p) if h is None else h for h, p in zip(hv, params_used)]
            norm = math.sqrt(sum(float(torch.sum(h * h)) for h in hv))
            if norm == 0.0:
                estimate = 0.0
                break
            v = [h / norm for h in hv]
            converged = abs(norm - estimate) <= tol * norm
            estimate = norm
            if converged:
                break
        out[i] = estimate
    return out
