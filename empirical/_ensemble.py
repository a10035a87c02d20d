"""Ensembles over initialisation seeds: mean, variance and standard error of empirical kernels."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

import numpy as np
import torch
import xarray as xr

from ntktheory._validate import check_int
from ntktheory.activations import ActivationSpec

from ._device import exact_matmul, provenance
from ._mlp import MLP
from ._ntk import Layered, as_inputs, layered, nngp_layers, structured_ntk

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
    width: int,
    depth: int,
    activation: ActivationSpec,
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    parameterization: str = "ntk",
    out_features: int = 1,
    seeds: int | Iterable[int] = 16,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
    seed_batch: int | None = None,
    chunk_size: int | None = None,
) -> xr.Dataset:
    r"""Empirical NTK and NNGP of :class:`MLP` networks over many seeds, with their statistics.

    The networks of a batch of seeds are stacked and measured together: every layer is one
    batched matrix product for all seeds (``torch.matmul`` over a leading seed axis), not a Python
    loop over networks. Each seed's network is exactly ``MLP(..., seed=s)``.

    Parameters
    ----------
    x1, x2
        Inputs (N1, d) and (N2, d); ``x2=None`` means ``x2 = x1``.
    width, depth, activation, sigma_w, sigma_b, parameterization, out_features, dtype, device
        As for :class:`MLP`.
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
    n1 = x1t.shape[0]
    n2 = n1 if x2t is None else x2t.shape[0]
    ds = xr.Dataset(coords={"seed": seed_list, "x1": np.arange(n1), "x2": np.arange(n2)})
    S = len(seed_list)
    for name, values in data.items():
        ds[name] = (("seed", "x1", "x2"), values)
        var = values.var(axis=0, ddof=1)
        ds[f"{name}_mean"] = (("x1", "x2"), values.mean(axis=0))
        ds[f"{name}_var"] = (("x1", "x2"), var)
        ds[f"{name}_sem"] = (("x1", "x2"), np.sqrt(var / S))
    cfg = dict(probe.config)
    cfg.pop("seed")
    ds.attrs.update(provenance(probe.layers[0].weight.device, probe.layers[0].weight.dtype))
    ds.attrs["configuration"] = json.dumps(cfg)
    ds.attrs["seeds"] = json.dumps(seed_list)
    ds.attrs.update({k: v for k, v in cfg.items() if isinstance(v, (int, float, str))})
    return ds


def _features(x: object) -> int:
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(
            f"`x1` must be 2-D with shape (n_points, n_features); got shape {tuple(shape)!r}. "
            "Reshape a single point with x[None, :]."
        )
    return int(shape[1])
