"""Provenance attrs of every xarray Dataset that ntkgap writes: one builder, one schema.

Every Dataset of the three packages (``ntktheory``, ``empirical``, ``compare``) carries

* ``conventions``: the mathematical conventions in words, one of :data:`CONVENTIONS` (one text per
  family, each defined here once);
* ``ntkgap_version``: the package version (:mod:`ntktheory._version`, from pyproject.toml);
* ``creation_time``: when the Dataset was made, ISO 8601 in UTC to the second;
* ``config``: the full configuration that produced it, as JSON text with sorted keys (numbers,
  strings, booleans, null, lists and string-keyed objects only);

and, for data measured on finite networks, ``device``, ``dtype`` and ``seeds`` (JSON list of ints).
Domain attrs that code reads (``activation``, ``depth``, ``quadrature``, ``x2_is_x1``, ...) stay
flat next to these. :func:`provenance` builds the attrs, :func:`check_provenance` checks them.

This module imports neither torch nor xarray.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._version import __version__

__all__ = [
    "CONVENTIONS",
    "EMPIRICAL_KEYS",
    "REQUIRED_KEYS",
    "check_provenance",
    "config_json",
    "provenance",
]

#: Keys every Dataset carries.
REQUIRED_KEYS: tuple[str, ...] = ("conventions", "ntkgap_version", "creation_time", "config")
#: Keys of data measured on finite networks (present when given to :func:`provenance`).
EMPIRICAL_KEYS: tuple[str, ...] = ("device", "dtype", "seeds")

# ---------------------------------------------------------------------- the conventions texts
# The fully-connected network, shared by the analytic, empirical and sweep texts.
_FC_NETWORK = (
    "Fully-connected network, `depth` hidden layers of width n, readout included. "
    "NTK parameterisation: h^1 = (sigma_w/sqrt(d)) W^1 x + sigma_b b^1, "
    "h^{l+1} = (sigma_w/sqrt(n)) W^{l+1} phi(h^l) + sigma_b b^{l+1}, all W, b ~ N(0, 1). "
    "Standard parameterisation: same forward function, trained parameters W ~ N(0, sigma_w^2/fan_in), "
    "b ~ N(0, sigma_b^2) (biases always trained)."
)
# Its infinite-width kernels.
_FC_KERNELS = (
    "NNGP: Sigma^1 = sigma_w^2 x.x'/d + sigma_b^2, "
    "Sigma^{l+1} = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2 with (u, v) ~ N(0, Sigma^l on {x, x'}). "
    "NTK (ntk): Theta^1 = Sigma^1, Theta^{l+1} = Sigma^{l+1} + sigma_w^2 E[phi'(u) phi'(v)] Theta^l. "
    "NTK (standard, width n): Theta^1 = x.x' + 1, Theta^{l+1} = n E[phi phi] + 1 + "
    "sigma_w^2 E[phi' phi'] Theta^l. Reported: the readout's Sigma^{L+1}, Theta^{L+1} (depth L); "
    "depth 0 is the linear model."
)

FULLY_CONNECTED = f"{_FC_NETWORK} {_FC_KERNELS} Infinite width; float64."

ARCHITECTURE = (
    "Layers of ntktheory.layers, neural-tangents stax conventions; images NCHW. Conv (NTK "
    "parameterisation): h = (sigma_w/sqrt(C_in k_h k_w)) W * z + sigma_b b, W, b ~ N(0, 1), zero padding for "
    "'same' (extra row/column after), so Sigma'_{pp'} = sigma_w^2 mean_delta Sigma_{p+delta, p'+delta} + "
    "sigma_b^2 and Theta'_{pp'} = Sigma'_{pp'} + sigma_w^2 mean_delta (E[phi' phi'] Theta)_{p+delta, p'+delta} "
    "(positions outside the image contribute 0, the mean is over all k_h k_w offsets); standard: Theta' = "
    "C_in k_h k_w mean_delta Sigma + 1 + sigma_w^2 mean_delta Theta. Input covariance x_p.x'_p'/C per pair of "
    "positions (x.x'/d for flat inputs). AvgPool and GlobalAvgPool average Sigma and Theta over pairs of "
    "positions; Flatten + Dense averages the diagonal p = p' (fan_in C H W); LayerNorm (over channels) divides "
    "Sigma and Theta by sqrt(Sigma_pp(x, x) Sigma_p'p'(x', x')); Residual z + f(z) adds the kernels of both "
    "branches. Dense acts on flat inputs only. Reported: the kernels of the network's (flat) output. "
    "Infinite width; float64."
)

EMPIRICAL = (
    f"{_FC_NETWORK} Readout width k. Empirical NTK: "
    "Theta(x, x') = sum_p df(x)/dp df(x')/dp over trained parameters p; empirical NNGP of the readout: "
    "sigma_w^2/n phi(h^L(x)).phi(h^L(x')) + sigma_b^2. Reported per output: mean over the k diagonal "
    "output blocks unless outputs='full' or 'trace'. Networks from empirical.build follow ntktheory.layers: "
    "Conv h = (sigma_w/sqrt(C_in k_h k_w)) W * z + sigma_b b (NTK parameterisation; zero padding for 'same', "
    "extra row/column after), AvgPool/GlobalAvgPool means, Flatten in (C, H, W) order, LayerNorm over channels "
    "without affine (eps 1e-12), Residual z + f(z); images NCHW."
)

SWEEP = (
    f"{_FC_NETWORK} {_FC_KERNELS} Readout width k: neural-tangents stax.serial(Dense, phi, ..., Dense(k)) with "
    "W_std = sigma_w, b_std = sigma_b. Configuration grids are over variances sigma_w2 = sigma_w^2 "
    "and sigma_b2 = sigma_b^2. Variables *_theory are infinite-width (analytic) values, "
    "*_empirical are measured on finite torch networks. Diverged values are NaN with the flag "
    "variable `diverged` True; failed tasks have `failed` True and the message in `error`. "
    "Training: full-batch gradient descent on (1/2N)|f - Y|^2 (Lee et al. 2019, arXiv:1902.06720)."
)

MEAN_FIELD = (
    "Mean field of a fully-connected network (Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. "
    "2017, arXiv:1611.01232), z ~ N(0, 1): length map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2, "
    "q_star its fixed point reached from q^1 = sigma_w^2 + sigma_b^2 (an input with |x|^2 = d), inf "
    "where it diverges (length_diverges = 1); correlation map c -> (sigma_w^2 E[phi(u1) phi(u2)] + "
    "sigma_b^2) / q_star with unit-correlation-c Gaussians of variance q_star, c_star its stable fixed "
    "point in [0, 1]; chi_1 = sigma_w^2 E[phi'(sqrt(q_star) z)^2]; chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] "
    "at c_star; xi_q = -1/log(chi_1 + sigma_w^2 E[phi'' phi]); xi_c = -1/log(chi_c) (inf where the "
    "argument is >= 1, i.e. on the critical line); phase 0 ordered (chi_1 < 1), 1 critical, 2 chaotic "
    "(chi_1 > 1). Grids are over the variances sigma_w2 = sigma_w^2 and sigma_b2 = sigma_b^2. Values "
    "that do not exist where the length map diverges are NaN."
)

LARGE_DEPTH = (
    "NTK parameterisation (the README's conventions); Theta at depth l is the readout NTK of a "
    "network with l hidden layers; rates are slopes per layer of natural logs."
)

PREDICTION = (
    "Infinitely wide networks (Lee et al. 2019, arXiv:1902.06720, Sec. 2.3, Eq. 16). K = NNGP, Theta = NTK "
    "(train-train, test-train, test-test blocks), X the N training points, k outputs (Theta (x) I over "
    "outputs: outputs are independent with the same covariance), loss 1/(2 N k) |f(X) - Y|^2, learning "
    "rate eta. gradient_descent: mean and covariance over initialisations after gradient flow for time t, "
    "E_t = I - exp(-eta Theta t / (N k)) (with `steps`: s steps of gradient descent, "
    "E_s = I - (I - eta Theta / (N k))^s); mean = Theta(x,X) Theta^-1 E_t Y; covariance = K(x,x') + "
    "Theta(x,X) Theta^-1 E_t K(X,X) E_t Theta^-1 Theta(X,x') - [Theta(x,X) Theta^-1 E_t K(X,x') + (x <-> x')]; "
    "t = 0 gives the NNGP prior. kernel='ntk': all layers trained; kernel='nngp': readout only (Theta -> K "
    "everywhere). bayesian: exact GP posterior with the chosen kernel as prior covariance, mean = "
    "K(x,X) K_r^-1 Y, covariance = K(x,x') - K(x,X) K_r^-1 K(X,x'). diag_reg (neural-tangents' "
    "convention): the train block of the dynamics (or prior) kernel becomes K + r I, r = diag_reg * tr(K) / N "
    "(diag_reg_absolute: r = diag_reg); inside the NTK covariance the NNGP train block stays unregularised, "
    "with NNGP dynamics and in the Bayesian posterior the regularised block is also the prior (observation "
    "noise r). One eigendecomposition of the train kernel for all times (negative rounding eigenvalues "
    "clipped to 0, their modes dropped); Cholesky for the Bayesian posterior. float64."
)

KERNEL_REGRESSION = (
    "t = inf kernel regression from a blocked kernel-matrix store: mean(x) = K(x, X) alpha with "
    "(K(X, X) + r I) alpha = Y; K is the NTK (kernel='ntk': the trained infinite network's mean, "
    "Lee et al. 2019 Eq. 16 at t = inf) or the NNGP (kernel='nngp': the NNGP posterior mean); "
    "r = diag_reg tr(K)/N (neural-tangents' convention), or r = diag_reg with diag_reg_absolute. "
    "relative_residual = |Y - (K + r I) alpha| / |Y| per output."
)

#: The ``conventions`` text of each family of Datasets, by family name.
CONVENTIONS: dict[str, str] = {
    "fully_connected": FULLY_CONNECTED,  # ntktheory.kernels of the fully-connected preset
    "architecture": ARCHITECTURE,  # ntktheory.kernels(architecture=...)
    "empirical": EMPIRICAL,  # empirical's measurements on finite torch networks
    "sweep": SWEEP,  # compare's sweeps and recipes (theory next to measurements)
    "mean_field": MEAN_FIELD,  # phase diagrams and mean-field trajectories
    "large_depth": LARGE_DEPTH,  # ntktheory.large_depth_analysis
    "prediction": PREDICTION,  # ntktheory.predict / predict_from_kernels
    "kernel_regression": KERNEL_REGRESSION,  # compare.predict_from_store
}


# ---------------------------------------------------------------------- builder
def config_json(config: Mapping[str, Any] | None) -> str:
    """The configuration as JSON text with sorted keys (stable, so it can be compared and hashed).

    Parameters
    ----------
    config
        A mapping with string keys whose values are numbers, strings, booleans, None, lists (or
        tuples) and such mappings, at any depth. numpy scalars and arrays count as numbers and
        lists. None is the empty configuration.

    Returns
    -------
    str
        ``json.dumps`` of the configuration with ``sort_keys=True``.

    Raises
    ------
    TypeError
        If ``config`` is not a mapping, or holds a value of another type (the message names its
        path, e.g. ``config['model']``).

    Examples
    --------
    >>> config_json({"depth": 3, "activation": "relu", "widths": (16, 64)})
    '{"activation": "relu", "depth": 3, "widths": [16, 64]}'
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise TypeError(f"`config` must be a mapping (JSON object); got {config!r} of type {type(config).__name__}.")
    return json.dumps(_plain(config, "config"), sort_keys=True)


def _plain(value: Any, path: str) -> Any:
    """``value`` as plain JSON types; a TypeError that names ``path`` for anything else."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic) and isinstance(value, (np.number, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray) and (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"`{path}` must have string keys (a JSON object); key {k!r} is of type {type(k).__name__}."
                )
            out[k] = _plain(v, f"{path}[{k!r}]")
        return out
    raise TypeError(
        f"`{path}` is {value!r} of type {type(value).__name__}, which is not JSON: a configuration holds only "
        "numbers, strings, booleans, None, lists and mappings with string keys (pass a description as a string)."
    )


def creation_time() -> str:
    """Now, in UTC, ISO 8601 to the second (e.g. ``2026-01-31T12:00:00+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance(
    config: Mapping[str, Any] | None,
    *,
    conventions: str,
    device: object = None,
    dtype: object = None,
    seeds: object = None,
    created: str | None = None,
) -> dict[str, str]:
    """The provenance attrs of a Dataset, as strings (NetCDF- and Zarr-safe).

    Parameters
    ----------
    config
        The full configuration that produced the Dataset (see :func:`config_json`); stored as
        JSON text under ``config``.
    conventions
        The family of the Dataset, a key of :data:`CONVENTIONS` (``"fully_connected"``,
        ``"architecture"``, ``"empirical"``, ``"sweep"``, ...); its text is stored.
    device, dtype, seeds
        Provenance of data measured on finite networks, stored when not None: the device
        (``str``), the dtype (``str``, without a ``torch.`` prefix) and the seeds (a JSON list of
        ints; one int counts as a list of one).
    created
        ISO 8601 creation time; now (UTC, to the second) when None. A resumed computation passes
        the time its store was created.

    Returns
    -------
    dict
        ``conventions``, ``ntkgap_version``, ``creation_time``, ``config`` and, when given,
        ``device``, ``dtype``, ``seeds``.

    Raises
    ------
    ValueError
        If ``conventions`` is not a family of :data:`CONVENTIONS`.
    TypeError
        If the configuration is not JSON (see :func:`config_json`) or a seed is not an integer.

    Examples
    --------
    >>> attrs = provenance({"depth": 2}, conventions="fully_connected", seeds=[0, 1])
    >>> sorted(attrs)
    ['config', 'conventions', 'creation_time', 'ntkgap_version', 'seeds']
    >>> attrs["config"], attrs["seeds"]
    ('{"depth": 2}', '[0, 1]')
    """
    if conventions not in CONVENTIONS:
        raise ValueError(
            f"`conventions` must be one of {', '.join(map(repr, CONVENTIONS))} (a family of conventions texts); "
            f"got {conventions!r}."
        )
    attrs = {
        "conventions": CONVENTIONS[conventions],
        "ntkgap_version": __version__,
        "creation_time": created or creation_time(),
        "config": config_json(config),
    }
    if device is not None:
        attrs["device"] = str(device)
    if dtype is not None:
        attrs["dtype"] = str(dtype).removeprefix("torch.")
    if seeds is not None:
        seed_list = np.atleast_1d(np.asarray(seeds, dtype=object)).tolist()
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed_list):
            raise TypeError(f"`seeds` must be integers; got {seeds!r}.")
        attrs["seeds"] = json.dumps([int(s) for s in seed_list])
    return attrs


def check_provenance(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``attrs`` follow the provenance schema; the parsed configuration.

    Parameters
    ----------
    attrs
        A Dataset's attrs.

    Returns
    -------
    dict
        The configuration, parsed from ``config``.

    Raises
    ------
    ValueError
        Naming the first key that is missing or malformed.

    Examples
    --------
    >>> check_provenance(provenance({"depth": 2}, conventions="mean_field"))
    {'depth': 2}
    """
    missing = [k for k in REQUIRED_KEYS if k not in attrs]
    if missing:
        raise ValueError(f"provenance attrs missing: {', '.join(missing)} (have {sorted(attrs)!r}).")
    for key in (*REQUIRED_KEYS, *EMPIRICAL_KEYS):
        if key in attrs and not isinstance(attrs[key], str):
            raise ValueError(f"attr {key!r} must be a string; got {attrs[key]!r} of type {type(attrs[key]).__name__}.")
    if attrs["conventions"] not in CONVENTIONS.values():
        raise ValueError(f"attr 'conventions' is not one of the conventions texts: {attrs['conventions'][:80]!r}...")
    if attrs["ntkgap_version"] != __version__:
        raise ValueError(f"attr 'ntkgap_version' is {attrs['ntkgap_version']!r}, not {__version__!r}.")
    try:
        created = datetime.datetime.fromisoformat(attrs["creation_time"])
    except ValueError as err:
        raise ValueError(f"attr 'creation_time' is not ISO 8601: {attrs['creation_time']!r}.") from err
    if created.utcoffset() != datetime.timedelta(0):
        raise ValueError(f"attr 'creation_time' is not in UTC: {attrs['creation_time']!r}.")
    try:
        config = json.loads(attrs["config"])
    except json.JSONDecodeError as err:
        raise ValueError(f"attr 'config' is not JSON: {attrs['config'][:80]!r}.") from err
    if not isinstance(config, dict):
        raise ValueError(f"attr 'config' must be a JSON object; got {attrs['config'][:80]!r}.")
    if "seeds" in attrs:
        seeds = json.loads(attrs["seeds"])
        if not (isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)):
            raise ValueError(f"attr 'seeds' must be a JSON list of integers; got {attrs['seeds']!r}.")
    return config
