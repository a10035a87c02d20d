"""Empirical NTK and NNGP of finite networks.

Three NTK methods:

* ``"structured"``: for networks made of Linear maps and elementwise nonlinearities (:class:`MLP`,
  or ``nn.Sequential`` of ``nn.Linear`` / elementwise activation modules). With
  ``h^l = a_l W^l z^{l-1} + c_l b^l``, the gradient of output f_k with respect to W^l is
  ``a_l delta^l_k z^{l-1}^T`` with ``delta^l_k = df_k/dh^l``, so

      Theta_{kk'}(x, x') = sum_l <delta^l_k(x), delta^l_k'(x')> (a_l^2 <z^{l-1}(x), z^{l-1}(x')> + c_l^2),

  a sum of Hadamard products of two Gram matrices per layer. The signals delta are backpropagated
  for a whole block of inputs at once with matrix products; no per-example Jacobian is formed.
* ``"jacobian"``: per-example Jacobians with ``torch.func.vmap(jacrev)`` contracted over parameters
  (PyTorch's NTK tutorial, "Jacobian contraction"); any ``nn.Module``.
* ``"ntk_vp"``: NTK-vector products, a vjp followed by a jvp for each output basis vector
  (PyTorch's NTK tutorial); any ``nn.Module``.

All three chunk over inputs so that memory stays bounded for large N.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from ntktheory._validate import check_choice, check_int, validate_inputs

from ._activations import TorchActivation
from ._build import Network, ScaledLinear
from ._device import exact_matmul
from ._structured import network_ntk

__all__ = ["nngp", "ntk"]

METHODS = ("auto", "structured", "jacobian", "ntk_vp")
OUTPUTS = ("mean", "trace", "full")
#: Default memory budget (bytes) for the per-chunk intermediate arrays of each method.
DEFAULT_CHUNK_BYTES = 1 << 30

_ELEMENTWISE_MODULES = (
    TorchActivation,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Mish,
    nn.Softsign,
    nn.Hardtanh,
    nn.Tanhshrink,
    nn.Identity,
)


# ---------------------------------------------------------------------------- layered form
@dataclasses.dataclass(frozen=True)
class Layered:
    """A network ``h^l = a_l z^{l-1} W_l^T + c_l b_l``, ``z^l = phi_l(h^l)``, batched over seeds.

    Attributes
    ----------
    weights
        Per linear map, shape (S, out, in): S stacked networks (S = 1 for one model).
    biases
        Per linear map, shape (S, out), or None for a map without bias.
    weight_scales, bias_scales
        The fixed multipliers a_l, c_l.
    weight_trained, bias_trained
        Whether the parameter is trained (contributes to the NTK).
    activations
        The elementwise nonlinearity after each map but the last.
    weight_vars, bias_vars
        Effective initial variances (sigma_w^2/fan_in, sigma_b^2) for the NNGP; None when unknown.
    """

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor | None, ...]
    weight_scales: tuple[float, ...]
    bias_scales: tuple[float, ...]
    weight_trained: tuple[bool, ...]
    bias_trained: tuple[bool, ...]
    activations: tuple[Callable[[torch.Tensor], torch.Tensor], ...]
    weight_vars: tuple[float, ...] | None = None
    bias_vars: tuple[float, ...] | None = None

    @property
    def out_features(self) -> int:
        return self.weights[-1].shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def device(self) -> torch.device:
        return self.weights[0].device


def _compose(fns: Sequence[Callable]) -> Callable:
    if len(fns) == 1:
        return fns[0]

    def composed(u):
        for f in fns:
            u = f(u)
        return u

    return composed


def layered(model: nn.Module) -> Layered:
    """Read an :class:`MLP` or an ``nn.Sequential`` of Linear maps and elementwise modules.

    Raises
    ------
    NotImplementedError
        If the model is not of that form (use ``method="jacobian"`` or ``"ntk_vp"``).
    """
    net = _read_layered(model)
    if isinstance(net, str):
        raise NotImplementedError(net)
    return net


def _read_layered(model: nn.Module) -> Layered | str:
    """The layered form of ``model``, or the reason (a message) why it has none; see :func:`layered`."""
    if isinstance(model, nn.Sequential):
        mods = list(model)
    else:
        return (
            f"method='structured' needs a network from empirical.build (or empirical.MLP) or an nn.Sequential "
            f"of nn.Linear and elementwise activation modules; got {type(model).__name__}. "
            "Use method='jacobian' or method='ntk_vp' for other models."
        )
    linears: list[nn.Module] = []
    acts: list[list[Callable]] = []
    for m in mods:
        if isinstance(m, (nn.Linear, ScaledLinear)):
            if linears and not acts[-1]:
                acts[-1].append(nn.Identity())
            linears.append(m)
            acts.append([])
        elif isinstance(m, _ELEMENTWISE_MODULES) and linears:
            acts[-1].append(m)
        else:
            return (
                f"method='structured' needs a network from empirical.build, or an nn.Sequential of nn.Linear "
                f"(first and last) and elementwise activation modules; found {type(m).__name__} at its position. "
                "Use method='jacobian' or method='ntk_vp' for other models."
            )
    if not linears or acts[-1]:
        return (
            "method='structured' needs the model to start and end with a linear map; "
            "use method='jacobian' or method='ntk_vp' otherwise."
        )
    ws, bs, a, c, wt, bt, wv, bv = [], [], [], [], [], [], [], []
    for m in linears:
        ws.append(m.weight.detach()[None])
        bias = m.bias
        bs.append(None if bias is None else bias.detach()[None])
        if isinstance(m, ScaledLinear):
            a.append(m.weight_scale)
            c.append(m.bias_scale)
            wv.append(m.weight_var)
            bv.append(m.bias_var)
        else:
            a.append(1.0)
            c.append(1.0)
        wt.append(m.weight.requires_grad)
        bt.append(bias is not None and bias.requires_grad and c[-1] != 0.0)
    known = len(wv) == len(linears)
    return Layered(
        weights=tuple(ws),
        biases=tuple(bs),
        weight_scales=tuple(a),
        bias_scales=tuple(c),
        weight_trained=tuple(wt),
        bias_trained=tuple(bt),
        activations=tuple(_compose(f) for f in acts[:-1]),
        weight_vars=tuple(wv) if known else None,
        bias_vars=tuple(bv) if known else None,
    )


# ---------------------------------------------------------------------------- input handling
def as_inputs(model_dtype: torch.dtype, device: torch.device, name: str, x: object,
              shape: int | tuple[int, ...] | None) -> torch.Tensor:
    """A tensor of the model's dtype and device, checked by :func:`ntktheory._validate.validate_inputs`.

    ``shape``: the number of features of 2-D inputs (int or a 1-tuple), the shape of one input
    (tuple, e.g. (C, H, W)), or None for any batch of at least one axis besides the batch axis. A
    tensor is checked where it is (no copy off its device) and then moved once to ``device``.
    """
    if isinstance(shape, tuple) and len(shape) == 1:
        shape = shape[0]
    if isinstance(x, torch.Tensor):
        x = x.detach()
    if isinstance(shape, int):
        x = validate_inputs(name, x, ndims=(2,), features=shape, expected_by="the model")
    else:
        x = validate_inputs(name, x, ndims=None, sample_shape=shape, expected_by="the model")
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"`{name}` must be a tensor or array of real numbers; got {type(x).__name__} "
                            f"that numpy cannot read ({err}).") from err
    return x.to(device=device, dtype=model_dtype)


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(iter(model.parameters()), None)
    if p is None:
        raise ValueError("`model` has no parameters; its NTK is zero.")
    return p.dtype, p.device


def sample_shape(model: nn.Module) -> int | tuple[int, ...] | None:
    """What one input of ``model`` looks like: features (int), a shape (tuple) or None (unknown)."""
    if isinstance(model, Network):
        return model.in_shape[0] if len(model.in_shape) == 1 else model.in_shape
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], (nn.Linear, ScaledLinear)):
        return model[0].weight.shape[1]
    return None


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


# ---------------------------------------------------------------------------- structured
def _forward_features(net: Layered, x: torch.Tensor):
    """Inputs z^{l-1} of every map and phi'(h^l) of every hidden layer, batched over S."""
    zs, dphis = [], []
    z = x.expand(net.weights[0].shape[0], *x.shape)
    for l, phi in enumerate(net.activations):
        zs.append(z)
        h = _affine(net, l, z)
        with torch.enable_grad():
            hh = h.detach().requires_grad_(True)
            zz = phi(hh)
            (d,) = torch.autograd.grad(zz, hh, grad_outputs=torch.ones_like(zz))
        dphis.append(d)
        z = zz.detach()
    zs.append(z)
    return zs, dphis


def _affine(net: Layered, l: int, z: torch.Tensor) -> torch.Tensor:
    """a_l z W_l^T + c_l b_l as one fused baddbmm (bmm when there is no bias term)."""
    w_t = net.weights[l].transpose(1, 2)
    b = net.biases[l]
    if z.stride(0) == 0:  # the shared input x expanded over seeds
        z = z.contiguous() if z.shape[0] > 1 else z[:1].clone()
    if b is not None and net.bias_scales[l] != 0.0:
        return torch.baddbmm(b[:, None, :], z, w_t, beta=net.bias_scales[l], alpha=net.weight_scales[l])
    h = torch.bmm(z, w_t)
    return h if net.weight_scales[l] == 1.0 else h.mul_(net.weight_scales[l])


def layered_forward(net: Layered, x: torch.Tensor) -> torch.Tensor:
    """Outputs, shape (S, N, k)."""
    z = x.expand(net.weights[0].shape[0], *x.shape)
    for l, phi in enumerate(net.activations):
        z = phi(_affine(net, l, z))
    return _affine(net, len(net.activations), z)


def _input_factor(net: Layered, l: int, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor | float:
    """a_l^2 <z1, z2> [weight trained] + c_l^2 [bias trained], shape (S, N1, N2) or a float."""
    bias_term = net.bias_scales[l] ** 2 if net.bias_trained[l] else 0.0
    if not net.weight_trained[l]:
        return bias_term
    if z1.stride(0) == 0:
        z1, z2 = z1[:1], z2[:1]  # the raw inputs, identical for every seed
    gram = torch.bmm(z1, z2.transpose(1, 2))
    if net.weight_scales[l] != 1.0:
        gram.mul_(net.weight_scales[l] ** 2)
    return gram.add_(bias_term) if bias_term else gram


def structured_block(net: Layered, x1: torch.Tensor, x2: torch.Tensor | None, outputs: str) -> torch.Tensor:
    """Empirical NTK block for all S stacked networks: (S, N1, N2) or (S, N1, N2, k, k).

    ``outputs="trace"`` sums the k diagonal output blocks (``"mean"`` is handled by the caller).
    The backpropagated signals are kept without the weight multipliers a_l, whose running product
    enters each layer's Gram as one scalar (no elementwise pass over weights or signals).
    """
    same = x2 is None
    zs1, dp1 = _forward_features(net, x1)
    zs2, dp2 = (zs1, dp1) if same else _forward_features(net, x2)
    S, n1, n2, k = net.weights[0].shape[0], x1.shape[0], (x1 if same else x2).shape[0], net.out_features
    L = len(net.activations)
    full = outputs == "full"
    theta = torch.zeros((S, n1, n2, k, k) if full else (S, n1, n2), dtype=net.dtype, device=net.device)
    # readout: delta^{L+1} = identity, so the signal Gram is I_k (trace k)
    factor = _input_factor(net, L, zs1[L], zs2[L])
    if full:
        eye = torch.eye(k, dtype=net.dtype, device=net.device)
        theta += (factor[..., None, None] if isinstance(factor, torch.Tensor) else factor) * eye
    else:
        theta += k * factor
    if L == 0:
        return theta
    # delta^L[s, i, a, :] = a_{L+1} W_{L+1}[s, a, :] * phi'(h^L)[s, i, :]; a_{L+1} kept in `scale`
    w = net.weights[L]
    d1 = w[:, None, :, :] * dp1[L - 1][:, :, None, :]
    d2 = d1 if same else w[:, None, :, :] * dp2[L - 1][:, :, None, :]
    scale = net.weight_scales[L]
    for l in range(L - 1, -1, -1):
        factor = _input_factor(net, l, zs1[l], zs2[l])
        if not isinstance(factor, float) or factor != 0.0:
            width = d1.shape[-1]
            if full:
                g = torch.bmm(d1.reshape(S, n1 * k, width), d2.reshape(S, n2 * k, width).transpose(1, 2))
                g = g.reshape(S, n1, k, n2, k).permute(0, 1, 3, 2, 4)
                f = factor[..., None, None] if isinstance(factor, torch.Tensor) else factor
                theta.add_(g * f, alpha=scale**2)
            else:
                g = torch.bmm(d1.reshape(S, n1, k * width), d2.reshape(S, n2, k * width).transpose(1, 2))
                if isinstance(factor, torch.Tensor):
                    theta.addcmul_(g, factor, value=scale**2)
                else:
                    theta.add_(g, alpha=scale**2 * factor)
        if l == 0:
            break
        w = net.weights[l]
        scale *= net.weight_scales[l]
        width_in = w.shape[2]
        d1 = torch.bmm(d1.reshape(S, n1 * k, -1), w).reshape(S, n1, k, width_in).mul_(dp1[l - 1][:, :, None, :])
        if not same:
            d2 = torch.bmm(d2.reshape(S, n2 * k, -1), w).reshape(S, n2, k, width_in).mul_(dp2[l - 1][:, :, None, :])
        else:
            d2 = d1
    return theta


def _structured_chunk(net: Layered, n_in: int) -> int:
    """Rows per chunk so that stored features (z, phi', delta for both inputs) fit the budget."""
    S, k = net.weights[0].shape[0], net.out_features
    per_row = sum(w.shape[2] for w in net.weights) * 2 + k * max(w.shape[2] for w in net.weights) * 2
    per_row *= 2 * S * torch.finfo(net.dtype).bits // 8
    return max(1, min(n_in, DEFAULT_CHUNK_BYTES // max(per_row, 1)))


def structured_ntk(net: Layered, x1, x2, outputs: str, chunk_size: int | None) -> torch.Tensor:
    """Chunked :func:`structured_block`; x2 None exploits symmetry."""
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    size = chunk_size or _structured_chunk(net, max(n1, n2))
    if n1 <= size and n2 <= size:
        return structured_block(net, x1, x2, outputs)
    S, k = net.weights[0].shape[0], net.out_features
    shape = (S, n1, n2, k, k) if outputs == "full" else (S, n1, n2)
    theta = torch.empty(shape, dtype=net.dtype, device=net.device)
    for i in _chunks(n1, size):
        for j in _chunks(n2, size):
            if x2 is None and j.start < i.start:
                block = theta[:, j, i].transpose(1, 2)
                theta[:, i, j] = block.transpose(-1, -2) if outputs == "full" else block
                continue
            if x2 is None and i == j:
                theta[:, i, j] = structured_block(net, x1[i], None, outputs)
            else:
                theta[:, i, j] = structured_block(net, x1[i], (x1 if x2 is None else x2)[j], outputs)
    return theta


# ---------------------------------------------------------------------------- torch.func methods
def _functional(model: nn.Module):
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    frozen = {k: v.detach() for k, v in model.named_parameters() if not v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def fnet_single(p, x):
        out = functional_call(model, (p, frozen, buffers), (x.unsqueeze(0),))
        return out.reshape(-1)

    return fnet_single, params


def _jacobians(fnet_single, params, x):
    """PyTorch tutorial: per-example Jacobians by vmap(jacrev), one (N, k, P_tensor) per tensor."""
    jac = vmap(jacrev(fnet_single), (None, 0))(params, x)
    return [j.flatten(2) for j in jac.values()]


def _jacobian_contract(jac1, jac2, outputs):
    """PyTorch tutorial: contract two Jacobians over parameters, tensor by tensor."""
    expr = "Naf,Mbf->NMab" if outputs == "full" else "Naf,Maf->NM"
    return torch.stack([torch.einsum(expr, j1, j2) for j1, j2 in zip(jac1, jac2)]).sum(0)


def _ntk_vp_block(fnet_single, params, x1, x2, outputs):
    """PyTorch tutorial: NTK-vector products (vjp then jvp for each output basis vector)."""

    def get_ntk(a, b):
        def func_a(p):
            return fnet_single(p, a)

        def func_b(p):
            return fnet_single(p, b)

        output, vjp_fn = vjp(func_a, params)

        def get_ntk_slice(vec):
            (vjps,) = vjp_fn(vec)
            _, jvps = jvp(func_b, (params,), (vjps,))
            return jvps

        basis = torch.eye(output.numel(), dtype=output.dtype, device=output.device).view(output.numel(), -1)
        return vmap(get_ntk_slice)(basis)

    result = vmap(vmap(get_ntk, (None, 0)), (0, None))(x1, x1 if x2 is None else x2)
    if outputs == "full":
        return result
    return torch.einsum("NMKK->NM", result)


def _func_ntk(model, x1, x2, outputs, chunk_size, method):
    fnet_single, params = _functional(model)
    if not params:
        raise ValueError("`model` has no trainable parameters (requires_grad); its NTK is zero.")
    n_params = sum(p.numel() for p in params.values())
    k = fnet_single(params, x1[0]).numel()
    itemsize = torch.finfo(x1.dtype).bits // 8
    if method == "jacobian":
        size = chunk_size or max(1, DEFAULT_CHUNK_BYTES // (2 * n_params * k * itemsize))
        rows, cols = size, size
    else:  # ntk_vp vmaps over (rows x cols) pairs, each holding a k x n_params vjp
        budget = max(1, DEFAULT_CHUNK_BYTES // (n_params * k * itemsize * 4))
        rows = chunk_size or max(1, int(np.sqrt(budget)))
        cols = chunk_size or max(1, budget // rows)
    n1 = x1.shape[0]
    xb = x1 if x2 is None else x2
    n2 = xb.shape[0]
    shape = (n1, n2, k, k) if outputs == "full" else (n1, n2)
    theta = torch.empty(shape, dtype=x1.dtype, device=x1.device)
    for i in _chunks(n1, rows):
        # Jacobian contraction: each row chunk's Jacobian once; x2 = None fills the lower triangle
        # by symmetry (same chunk grid on both axes).
        jac1 = _jacobians(fnet_single, params, x1[i]) if method == "jacobian" else None
        for j in _chunks(n2, cols):
            same = x2 is None and i == j
            if method == "jacobian":
                if x2 is None and j.start < i.start:
                    block = theta[j, i].transpose(0, 1)
                    theta[i, j] = block.transpose(-1, -2) if outputs == "full" else block
                    continue
                jac2 = jac1 if same else _jacobians(fnet_single, params, xb[j])
                theta[i, j] = _jacobian_contract(jac1, jac2, outputs).detach()
            else:
                theta[i, j] = _ntk_vp_block(fnet_single, params, x1[i], None if same else xb[j], outputs).detach()
    return theta


def _choose_method(model: nn.Module, method: str, net: Layered | str) -> str:
    """Resolve ``method="auto"`` and refuse "structured" for a model it does not cover.

    ``net`` is the model's layered form, or the reason why it has none (from :func:`_read_layered`).
    """
    covered = not isinstance(net, str) or isinstance(model, Network)
    if method == "auto":
        return "structured" if covered else "jacobian"
    if method == "structured" and not covered:
        raise NotImplementedError(net)
    return method


def _compute_ntk(model: nn.Module, net: Layered | None, method: str, x1: torch.Tensor, x2: torch.Tensor | None,
                 outputs: str, chunk_size: int | None) -> tuple[torch.Tensor, int | None]:
    """The NTK summed over outputs ("trace") or per output pair ("full"), and the number of outputs
    when the method knows it (None otherwise)."""
    if method == "structured" and net is not None:
        return structured_ntk(net, x1, x2, outputs, chunk_size)[0], net.out_features
    if method == "structured":
        return network_ntk(model, x1, x2, outputs, chunk_size)
    return _func_ntk(model, x1, x2, outputs, chunk_size, method), None


# ---------------------------------------------------------------------------- public
def ntk(
    model: nn.Module,
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    method: str = "auto",
    outputs: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Empirical neural tangent kernel ``Theta(x, x') = sum_p df(x)/dp df(x')/dp``.

    The sum runs over the model's trained parameters (``requires_grad``). For an :class:`MLP` in
    the NTK parameterisation, the mean over seeds tends to ``ntktheory.kernels(...)["ntk"]`` as
    the width grows; in the standard parameterisation to the kernel with the width factor
    (``ntktheory.kernels(..., parameterization="standard", width=n)``). For a network from
    ``empirical.build(architecture, ...)`` it tends to ``ntktheory.kernels(x, architecture=...)``.

    Parameters
    ----------
    model
        A network mapping (N, ...) inputs to (N, k) outputs: any ``nn.Module`` for ``"jacobian"``
        and ``"ntk_vp"``.
    x1, x2
        Inputs of shape (N1, d) and (N2, d), or images (N1, C, H, W) and (N2, C, H, W) (any shape
        the model takes); ``x2=None`` means ``x2 = x1`` (symmetry is used). Converted to the
        model's dtype and device.
    method
        ``"structured"`` (per-layer Gram factorisation: networks from :func:`empirical.build`,
        :class:`MLP`, or ``nn.Sequential`` of ``nn.Linear`` and elementwise activations),
        ``"jacobian"`` (Jacobian contraction), ``"ntk_vp"`` (NTK-vector products), or ``"auto"``:
        structured when the model allows it, else jacobian.
    outputs
        ``"mean"`` (default): the mean of the k diagonal output blocks, ``(1/k) sum_a Theta_aa``,
        shape (N1, N2) — at infinite width Theta_full = Theta (x) I_k, so this is Theta;
        ``"trace"``: the sum over outputs, (N1, N2); ``"full"``: shape (N1, N2, k, k).
    chunk_size
        Inputs per chunk; by default chosen so each method's intermediates stay within ~1 GiB.

    Returns
    -------
    torch.Tensor
        On the model's device and dtype; shape (N1, N2) or (N1, N2, k, k).

    Raises
    ------
    ValueError
        For an unknown ``method`` or ``outputs``, inputs of the wrong shape, or non-finite inputs.
    NotImplementedError
        For ``method="structured"`` on a model it does not cover.

    References
    ----------
    Jacot, Gabriel & Hongler 2018, arXiv:1806.07572, eq. (4); PyTorch tutorial "Neural Tangent
    Kernels" (torch.func).

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(3, width=32, depth=2, activation="relu", device="cpu")
    >>> x = torch.randn(4, 3, dtype=torch.float64)
    >>> K = empirical.ntk(net, x)
    >>> K.shape
    torch.Size([4, 4])
    >>> bool(torch.allclose(K, empirical.ntk(net, x, method="jacobian"), rtol=0, atol=1e-10))
    True
    """
    method = check_choice("method", method, METHODS)
    outputs = check_choice("outputs", outputs, OUTPUTS)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {model!r} of type {type(model).__name__}.")
    dtype, device = _model_dtype_device(model)
    shape = sample_shape(model)
    x1 = as_inputs(dtype, device, "x1", x1, shape)
    x2 = None if x2 is None else as_inputs(dtype, device, "x2", x2, tuple(x1.shape[1:]))
    with exact_matmul(), torch.no_grad():
        net = _read_layered(model)  # built once: the method choice and the computation share it
        method = _choose_method(model, method, net)
        theta, k = _compute_ntk(model, None if isinstance(net, str) else net, method, x1, x2,
                                "full" if outputs == "full" else "trace", chunk_size)
    if outputs == "mean":
        if k is None:
            with torch.no_grad():
                k = model(x1[:1]).reshape(-1).numel()
        theta = theta / k
    return theta


def nngp_layers(net: Layered, x1: torch.Tensor, x2: torch.Tensor | None) -> torch.Tensor:
    """Sigma^l for l = 1..L+1 (inputs to every map), shape (S, L+1, N1, N2)."""
    zs1, _ = _forward_features(net, x1)
    zs2 = zs1 if x2 is None else _forward_features(net, x2)[0]
    out = []
    for l in range(len(net.weights)):
        out.append(net.weight_vars[l] * torch.matmul(zs1[l], zs2[l].transpose(1, 2)) + net.bias_vars[l])
    return torch.stack(out, dim=1)


def nngp(
    model: nn.Module,
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    layers: str = "readout",
) -> torch.Tensor:
    r"""Empirical NNGP: the finite-width covariance ``Sigma^{l}`` given the network's features.

    ``Sigma^1 = sigma_w^2 x.x'/d + sigma_b^2`` and ``Sigma^{l+1} = (sigma_w^2/n) phi(h^l(x)).phi(h^l(x'))
    + sigma_b^2``, the covariance of the next pre-activation over a fresh draw of that layer's
    weights, in either parameterisation (both have the same forward distribution). Its mean over
    seeds tends to ``ntktheory.kernels(...)["nngp"]`` as the width grows. For a network from
    :func:`empirical.build` ending in a Dense readout, the readout's ``(sigma_w^2 / fan_in) z.z' +
    sigma_b^2`` with z the readout's input (after Flatten or GlobalAvgPool for CNNs).

    Parameters
    ----------
    model
        An :class:`MLP`, a network from :func:`empirical.build` whose last layer is Dense, or an
        ``nn.Sequential`` of :class:`ScaledLinear` maps and elementwise modules (which carry the
        initial variances).
    x1, x2
        Inputs (N1, d) or images (N1, C, H, W); ``x2=None`` means ``x2 = x1``.
    layers
        ``"readout"`` (default): Sigma^{L+1}, shape (N1, N2); ``"all"`` (fully-connected networks
        only): Sigma^1 .. Sigma^{L+1}, shape (L+1, N1, N2).

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=64, depth=1, activation="relu", sigma_w=1.0, device="cpu")
    >>> x = torch.eye(2, dtype=torch.float64)
    >>> empirical.nngp(net, x, layers="all")[0]
    tensor([[0.5000, 0.0000],
            [0.0000, 0.5000]], dtype=torch.float64)
    """
    layers = check_choice("layers", layers, ("readout", "all"))
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {model!r} of type {type(model).__name__}.")
    net = _read_layered(model)
    if isinstance(net, str) and isinstance(model, Network):
        if layers == "all":
            raise NotImplementedError("nngp(layers='all') is for fully-connected networks; use layers='readout'.")
        return _readout_nngp(model, x1, x2)
    if isinstance(net, str):  # says what the model has that is not supported
        raise NotImplementedError(net.replace("method='structured'", "nngp").replace(
            " Use method='jacobian' or method='ntk_vp' for other models.", "").replace(
            "; use method='jacobian' or method='ntk_vp' otherwise.", "."))
    if net.weight_vars is None:
        raise ValueError(
            "nngp needs the initial weight and bias variances; build the model with empirical.MLP "
            "(nn.Linear layers do not record sigma_w and sigma_b)."
        )
    x1 = as_inputs(net.dtype, net.device, "x1", x1, net.weights[0].shape[2])
    x2 = None if x2 is None else as_inputs(net.dtype, net.device, "x2", x2, x1.shape[1])
    with exact_matmul(), torch.no_grad():
        sig = nngp_layers(net, x1, x2)[0]
    return sig[-1] if layers == "readout" else sig


def _readout_nngp(model: Network, x1, x2) -> torch.Tensor:
    readout = model[-1]
    if not isinstance(readout, ScaledLinear):
        raise ValueError(
            f"nngp: the network must end in a Dense readout (its input features define the NNGP); its last "
            f"module is {type(readout).__name__}."
        )
    dtype, device = _model_dtype_device(model)
    x1 = as_inputs(dtype, device, "x1", x1, sample_shape(model))
    x2 = None if x2 is None else as_inputs(dtype, device, "x2", x2, tuple(x1.shape[1:]))
    body = model[:-1]
    with exact_matmul(), torch.no_grad():
        z1 = body(x1)
        z2 = z1 if x2 is None else body(x2)
        return readout.weight_var * (z1 @ z2.T) + readout.bias_var
