"""Ensembles over initialisation seeds: mean, variance and standard error of empirical kernels."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

import numpy as np
import torch
import xarray as xr

from ntktheory import layers as L
from ntktheory._validate import check_int, validate_inputs
from ntktheory.activations import ActivationSpec

from ._build import build
from ._device import exact_matmul, provenance
from ._mlp import MLP
from ._ntk import Layered, as_inputs, layered, nngp, nngp_layers, ntk, structured_ntk

__all__ = ["ensemble_kernels", "stack_models"]


def stack_models(models: list[MLP]) -> Layered:
    """Stack networks of one architecture into a :class:`Layered` with a leading seed axis.

    Every computation on the stack is one batched matrix product per layer for all seeds.
    """
    parts = [layered(m) for m in models]
    first = parts[0]
    return dataclasses.replace(
        first,
        weights=tuple(torch.cat(ws) for ws in zip(*(p.weights for p in parts))),
        biases=tuple(torch.cat(bs) if bs[0] is not None else None for bs in zip(*(p.biases for p in parts))),
    )


def _seeds(seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = check_int("seeds", seeds, minimum=2)
        return list(range(n))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"`seeds` must be a count (int >= 2) or an iterable of ints; got {seeds!r}.")
    out = [check_int("seeds", s, minimum=0) for s in seeds]
    if len(out) < 2 or len(set(out)) != len(out):
        raise ValueError(f"`seeds` must hold at least two distinct seeds (for a variance); got {out!r}.")
    return out


def ensemble_kernels(
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    width: int | None = None,
    depth: int | None = None,
    activation: ActivationSpec | None = None,
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    parameterization: str = "ntk",
    out_features: int = 1,
    architecture: L.Layer | None = None,
    seeds: int | Iterable[int] = 16,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
    seed_batch: int | None = None,
    chunk_size: int | None = None,
) -> xr.Dataset:
    r"""Empirical NTK and NNGP of networks over many seeds, with their statistics.

    Fully-connected networks (``width``, ``depth``, ``activation``, ...): the networks of a batch
    of seeds are stacked and measured together: every layer is one batched matrix product for all
    seeds (``torch.matmul`` over a leading seed axis), not a Python loop over networks. Each seed's
    network is exactly ``MLP(..., seed=s)``. Any other network: ``architecture=`` (an
    :mod:`ntktheory.layers` description), each seed's network ``build(architecture, seed=s)``
    measured by the structured NTK, one after the other.

    Parameters
    ----------
    x1, x2
        Inputs (N1, d) and (N2, d), or images (N, C, H, W) for an architecture; ``x2=None`` means
        ``x2 = x1``.
    width, depth, activation, sigma_w, sigma_b, parameterization, out_features, dtype, device
        As for :class:`MLP` (``parameterization``, ``dtype``, ``device`` also with ``architecture``).
    architecture
        An :mod:`ntktheory.layers` architecture ending in a Dense readout, instead of the MLP
        arguments.
    seeds
        A count S (seeds 0..S-1) or an iterable of distinct seeds; at least 2.
    seed_batch
        Networks measured at once (default: all; lower it to bound memory).
    chunk_size
        Inputs per chunk of the NTK computation (see :func:`ntk`).

    Returns
    -------
    xarray.Dataset
        ``ntk_empirical`` and ``nngp_empirical`` on dims ("seed", "x1", "x2"), the NTK being the
        mean over the k diagonal output blocks (as ``ntk(..., outputs="mean")``); for each,
        ``*_mean``, ``*_var`` (unbiased, ddof = 1) and ``*_sem`` (standard error of the mean,
        sqrt(var / S)) on ("x1", "x2"). attrs carry the configuration, seeds, device, dtype and
        conventions.

    Examples
    --------
    >>> import numpy as np, empirical
    >>> x = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> ds = empirical.ensemble_kernels(x, width=64, depth=1, activation="erf", seeds=4, device="cpu")
    >>> ds["ntk_empirical"].dims
    ('seed', 'x1', 'x2')
    >>> bool(np.allclose(ds["ntk_empirical_sem"], np.sqrt(ds["ntk_empirical_var"] / 4)))
    True
    """
    seed_list = _seeds(seeds)
    if seed_batch is not None:
        seed_batch = check_int("seed_batch", seed_batch, minimum=1)
    if architecture is not None:
        given = [k for k, v in (("width", width), ("depth", depth), ("activation", activation)) if v is not None]
        if given:
            raise TypeError(f"`architecture` describes the whole network; do not also pass {', '.join(given)}.")
        return _architecture_ensemble(x1, x2, architecture, parameterization, seed_list, dtype, device, chunk_size)
    missing = [k for k, v in (("width", width), ("depth", depth), ("activation", activation)) if v is None]
    if missing:
        raise TypeError(f"ensemble_kernels needs {', '.join(missing)} (or an `architecture`).")
    config = dict(
        width=width, depth=depth, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b,
        parameterization=parameterization, out_features=out_features, dtype=dtype, device=device,
    )
    probe = MLP(_features(x1), seed=seed_list[0], **config)  # validates the configuration once
    x1t = as_inputs(probe.layers[0].weight.dtype, probe.layers[0].weight.device, "x1", x1, probe.in_features)
    x2t = None if x2 is None else as_inputs(x1t.dtype, x1t.device, "x2", x2, probe.in_features)
    batch = seed_batch or len(seed_list)
    ntks, nngps = [], []
    with exact_matmul(), torch.no_grad():
        for start in range(0, len(seed_list), batch):
            group = seed_list[start : start + batch]
            models = [probe if s == seed_list[0] else MLP(probe.in_features, seed=s, **config) for s in group]
            net = stack_models(models)
            ntks.append(structured_ntk(net, x1t, x2t, "trace", chunk_size) / net.out_features)
            nngps.append(nngp_layers(net, x1t, x2t)[:, -1])
    data = {"ntk_empirical": torch.cat(ntks).cpu().numpy(), "nngp_empirical": torch.cat(nngps).cpu().numpy()}
    cfg = dict(probe.config)
    cfg.pop("seed")
    return _dataset(data, seed_list, cfg, probe.layers[0].weight)


def _architecture_ensemble(x1, x2, architecture, parameterization, seed_list, dtype, device, chunk_size):
    shape = tuple(np.shape(x1)[1:]) if not isinstance(x1, torch.Tensor) else tuple(x1.shape[1:])
    if not shape:
        raise ValueError(f"`x1` must be (n_points, ...) with the shape of one input after the first axis; got "
                         f"shape {np.shape(x1)!r}.")
    ntks, nngps = [], []
    x1t = x2t = None
    for s in seed_list:
        net = build(architecture, shape, parameterization=parameterization, seed=s, dtype=dtype, device=device)
        if x1t is None:
            p = next(net.parameters())
            x1t = as_inputs(p.dtype, p.device, "x1", x1, net.in_shape)
            x2t = None if x2 is None else as_inputs(p.dtype, p.device, "x2", x2, net.in_shape)
        ntks.append(ntk(net, x1t, x2t, method="structured", chunk_size=chunk_size))
        nngps.append(nngp(net, x1t, x2t))
    data = {"ntk_empirical": torch.stack(ntks).cpu().numpy(), "nngp_empirical": torch.stack(nngps).cpu().numpy()}
    cfg = dict(net.config)
    cfg.pop("seed")
    return _dataset(data, seed_list, cfg, p)


def _dataset(data: dict, seed_list: list[int], cfg: dict, param: torch.Tensor) -> xr.Dataset:
    _, n1, n2 = data["ntk_empirical"].shape
    ds = xr.Dataset(coords={"seed": seed_list, "x1": np.arange(n1), "x2": np.arange(n2)})
    S = len(seed_list)
    for name, values in data.items():
        ds[name] = (("seed", "x1", "x2"), values)
        var = values.var(axis=0, ddof=1)
        ds[f"{name}_mean"] = (("x1", "x2"), values.mean(axis=0))
        ds[f"{name}_var"] = (("x1", "x2"), var)
        ds[f"{name}_sem"] = (("x1", "x2"), np.sqrt(var / S))
    ds.attrs.update(provenance(cfg, device=param.device, dtype=param.dtype, seeds=seed_list))
    ds.attrs.update({k: v for k, v in cfg.items() if isinstance(v, (int, float, str))})
    if isinstance(cfg.get("activation_params"), dict):
        ds.attrs["activation_params"] = json.dumps(cfg["activation_params"], sort_keys=True)
    return ds


def _features(x: object) -> int:
    """The number of features of the inputs x1 (N, d), checked by the one input validator."""
    return int(validate_inputs("x1", x).shape[1])
