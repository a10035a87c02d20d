"""Structured empirical NTK of built networks (convolutions, pooling, residual blocks, LayerNorm).

For a weighted layer h = a W * z + c b (Dense or Conv), the gradient of output f_k with respect
to W is a sum over output positions p of delta_k(p) (x) patch_p(z), delta_k = df_k/dh, and with
respect to b it is c sum_p delta_k(p). One forward pass records every weighted layer's input z and
output h; one backward pass per output unit gives all the signals delta at once (the examples are
independent, so the gradient of sum_x f_k(x) holds every delta_k(x)). Each layer then contributes
a Gram matrix (Novak et al. 2022, arXiv:2206.08720, "structured derivatives"):

* Dense: a^2 <delta(x), delta(x')> <z(x), z(x')> + c^2 <delta(x), delta(x')>, two small Grams
  and a Hadamard product (no per-example weight gradient is formed);
* Conv: the per-example weight gradients a sum_p delta(p) patch_p(z)^T (C_out x C_in k_h k_w, from
  unfolded patches, one batched matrix product) and bias gradients, contracted as one Gram.

The contributions are registered per module class (``functools.singledispatch``).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ._build import Network, Residual, ScaledConv2d, ScaledLinear

__all__ = ["network_ntk"]


def _trained(module: nn.Module) -> tuple[bool, bool]:
    bias_scale = getattr(module, "bias_scale", 1.0)
    bias = module.bias
    return module.weight.requires_grad, bias is not None and bias.requires_grad and bias_scale != 0.0


def patches(module: ScaledConv2d, z: torch.Tensor) -> torch.Tensor:
    """The input patches of a convolution, (N, C_in kh kw, P_out), in the weight's (C, kh, kw) order.

    A strided view of the padded input copied once (``F.unfold`` is several times slower in
    float64 on the CPU).
    """
    zp = module.pad(z)
    n, c, h, w = zp.shape
    (kh, kw), (sh, sw) = module.kernel_size, module.stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_n, s_c, s_h, s_w = zp.stride()
    view = zp.as_strided((n, c, kh, kw, ho, wo), (s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))
    return view.reshape(n, c * kh * kw, ho * wo)


def _forward(module: nn.Module, z: torch.Tensor, records: list) -> torch.Tensor:
    """The module's forward pass, recording (module, input or patches, output) of weighted layers."""
    if isinstance(module, nn.Sequential):
        for m in module:
            z = _forward(m, z, records)
        return z
    if isinstance(module, Residual):
        return z + _forward(module.branch, z, records)
    if isinstance(module, ScaledConv2d):
        h = module(z)
        records.append((module, patches(module, z.detach()), h))
        return h
    if isinstance(module, ScaledLinear):
        h = module(z)
        records.append((module, z.detach(), h))
        return h
    return module(z)


def features(net: Network, x: torch.Tensor) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """(module, input z (Dense) or patches (Conv), signals delta of shape (N, k, *h.shape[1:])) for
    every weighted module, in forward order."""
    records: list = []
    with torch.enable_grad():
        out = _forward(net, x, records)
        hs = [h for _, _, h in records]
        k = out.shape[1]
        deltas = [[] for _ in records]
        for unit in range(k):
            grads = torch.autograd.grad(out[:, unit].sum(), hs, retain_graph=unit < k - 1, allow_unused=True)
            for d, g, h in zip(deltas, grads, hs):
                d.append(torch.zeros_like(h) if g is None else g.detach())
    return [(m, z, d[0].unsqueeze(1) if k == 1 else torch.stack(d, dim=1)) for (m, z, _), d in zip(records, deltas)]


def _gram(a: torch.Tensor, b: torch.Tensor, full: bool) -> torch.Tensor:
    """Contract (N1, k, ...) with (N2, k, ...) over the trailing axes: (N1, N2) summed over k (trace)
    or (N1, N2, k, k) (full)."""
    n1, k = a.shape[:2]
    n2 = b.shape[0]
    if full:
        g = a.reshape(n1 * k, -1) @ b.reshape(n2 * k, -1).T
        return g.reshape(n1, k, n2, k).permute(0, 2, 1, 3)
    return a.reshape(n1, -1) @ b.reshape(n2, -1).T


@functools.singledispatch
def contribution(module: nn.Module, z1, d1, z2, d2, full: bool) -> torch.Tensor:
    """The NTK of one weighted module's parameters: (N1, N2) (trace over outputs) or (N1, N2, k, k)."""
    raise NotImplementedError(f"no structured NTK contribution for {type(module).__name__}")


@contribution.register
def _(module: ScaledLinear, z1, d1, z2, d2, full):
    w_trained, b_trained = _trained(module)
    factor = 0.0
    if w_trained:
        factor = module.weight_scale**2 * (z1 @ z2.T)
    if b_trained:
        factor = factor + module.bias_scale**2
    if full:
        g = torch.einsum("nkc,mlc->nmkl", d1, d2)
        return g * (factor[..., None, None] if isinstance(factor, torch.Tensor) else factor)
    return torch.einsum("nkc,mkc->nm", d1, d2) * factor


def _conv_gradients(module: ScaledConv2d, cols: torch.Tensor, d: torch.Tensor) -> list[torch.Tensor]:
    """Per-example, per-output gradients of the trained weight and bias, each (N, k, ...), from the
    patches ``cols`` (N, C_in kh kw, P)."""
    w_trained, b_trained = _trained(module)
    n, k, c_out = d.shape[:3]
    signals = d.reshape(n, k, c_out, -1)  # (N, k, C_out, P)
    out = []
    if w_trained:
        # (C_in kh kw, P) @ (P, k C_out) per example: the contiguous patches as the left factor is
        # 2-4x faster than signals @ patches^T (a transposed right factor of 576 rows)
        grad_w = torch.matmul(cols, signals.reshape(n, k * c_out, -1).transpose(1, 2))  # (N, F, k C_out)
        grad_w = grad_w.reshape(n, -1, k, c_out).transpose(1, 2) if k > 1 else grad_w.reshape(n, 1, -1)
        out.append(module.weight_scale * grad_w.reshape(n, k, -1))
    if b_trained:
        out.append(module.bias_scale * signals.sum(dim=-1))
    return out


@contribution.register
def _(module: ScaledConv2d, z1, d1, z2, d2, full):
    g1 = _conv_gradients(module, z1, d1)
    g2 = g1 if (z2 is z1 and d2 is d1) else _conv_gradients(module, z2, d2)
    total = None
    for a, b in zip(g1, g2):
        part = _gram(a, b, full)
        total = part if total is None else total + part
    return total


def network_ntk(net: Network, x1: torch.Tensor, x2: torch.Tensor | None, outputs: str,
                chunk_size: int | None) -> tuple[torch.Tensor, int]:
    """Empirical NTK of a built network by structured derivatives: (N1, N2) summed over the k
    outputs (``outputs="trace"``) or (N1, N2, k, k) (``"full"``), chunked over inputs; and k."""
    full = outputs == "full"
    n1 = x1.shape[0]
    xb = x1 if x2 is None else x2
    n2 = xb.shape[0]
    size = chunk_size or max(1, min(max(n1, n2), 256))
    theta = None
    rows = [slice(s, min(n1, s + size)) for s in range(0, n1, size)]
    cols = rows if x2 is None else [slice(s, min(n2, s + size)) for s in range(0, n2, size)]
    cache: dict[tuple[int, int], list] = {}

    def feats(x, which, sl):
        key = (which, sl.start)
        if key not in cache:
            cache[key] = features(net, x[sl])
        return cache[key]

    for i in rows:
        f1 = feats(x1, 1, i)
        for j in cols:
            if x2 is None and j.start < i.start:
                block = theta[j, i].transpose(0, 1)
                theta[i, j] = block.transpose(-1, -2) if full else block
                continue
            f2 = f1 if (x2 is None and i == j) else feats(xb, 1 if x2 is None else 2, j)
            block = None
            for (m, z1, d1), (_, z2, d2) in zip(f1, f2):
                part = contribution(m, z1, d1, z2, d2, full)
                block = part if block is None else block + part
            if theta is None:
                k = f1[0][2].shape[1]
                theta = torch.empty((n1, n2, k, k) if full else (n1, n2), dtype=block.dtype, device=block.device)
            theta[i, j] = block
    return theta, f1[0][2].shape[1]
