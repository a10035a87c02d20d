"""Order/chaos phase diagrams as xarray Datasets (Schoenholz et al. 2017, Fig. 1)."""

from __future__ import annotations

import numpy as np

from ._meanfield import PHASE_CODES, _variance_array, critical_sigma_w2, mean_field
from ._provenance import MEAN_FIELD, provenance
from .activations import ActivationSpec, get_activation

__all__ = ["CONVENTIONS", "phase_diagram"]

#: The ``conventions`` attribute of every mean-field Dataset (defined in :mod:`ntktheory._provenance`).
CONVENTIONS = MEAN_FIELD

_DEFAULT_SIGMA_W2 = (1.0, 4.0, 400)
_DEFAULT_SIGMA_B2 = (0.0, 0.3, 400)


def _axis(name: str, value: object, default: tuple[float, float, int], *, positive: bool) -> np.ndarray:
    if value is None:
        start, stop, num = default
        return np.linspace(start, stop, num)
    arr = _variance_array(name, value, positive=positive)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise ValueError(f"`{name}` must be a 1-D array of grid values, got shape {arr.shape!r}.")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"`{name}` must not repeat values (it becomes a coordinate), got {value!r}.")
    return arr


def phase_diagram(
    activation: ActivationSpec = "tanh",
    *,
    sigma_w2: object = None,
    sigma_b2: object = None,
    critical_tol: float = 1e-12,
    critical_line: bool = True,
):
    """Mean-field quantities on a (sigma_w^2, sigma_b^2) grid.

    Parameters
    ----------
    activation
        Registry name, :class:`~ntktheory.activations.Activation`, or expression in ``x``.
    sigma_w2
        1-D weight variances > 0 (default ``np.linspace(1, 4, 400)``).
    sigma_b2
        1-D bias variances >= 0 (default ``np.linspace(0, 0.3, 400)``).
    critical_tol
        ``|chi_1 - 1|`` at most this is labelled critical.
    critical_line
        Also compute ``critical_sigma_w2`` on dim ``sigma_b2`` (the boundary chi_1 = 1).

    Returns
    -------
    xarray.Dataset
        On dims ``("sigma_w2", "sigma_b2")``: float64 ``q_star``, ``c_star``, ``chi_1``, ``chi_c``,
        ``xi_q``, ``xi_c``; int8 ``phase`` (0 ordered, 1 critical, 2 chaotic; CF ``flag_values``
        and ``flag_meanings``) and int8 ``length_diverges`` (1 where q_star = inf). With
        ``critical_line``, float64 ``critical_sigma_w2`` on dim ``sigma_b2``. attrs:
        the provenance (``conventions``, ``ntkgap_version``, ``creation_time`` (UTC, ISO 8601),
        ``config`` (JSON); see :func:`ntktheory._provenance.provenance`), ``activation``.

    Raises
    ------
    TypeError, ValueError
        For invalid grids (non-numeric, non-finite, sigma_w2 <= 0, sigma_b2 < 0, not 1-D,
        repeated values) or activation.

    References
    ----------
    Schoenholz et al. 2017, arXiv:1611.01232, Fig. 1 and eqs. 5-9.

    Examples
    --------
    >>> ds = phase_diagram("tanh", sigma_w2=[0.5, 1.5, 3.0], sigma_b2=[0.0, 0.05])
    >>> ds.phase.sel(sigma_b2=0.05).values.tolist()
    [0, 0, 2]
    >>> round(float(ds.critical_sigma_w2.sel(sigma_b2=0.05)), 7)
    1.7609546
    """
    import xarray as xr

    act = get_activation(activation)
    w = _axis("sigma_w2", sigma_w2, _DEFAULT_SIGMA_W2, positive=True)
    b = _axis("sigma_b2", sigma_b2, _DEFAULT_SIGMA_B2, positive=False)
    if not isinstance(critical_line, bool):
        raise TypeError(f"`critical_line` must be True or False, got {critical_line!r}.")
    W, B = np.meshgrid(w, b, indexing="ij")
    mf = mean_field(act, W, B, critical_tol=critical_tol)
    dims = ("sigma_w2", "sigma_b2")
    meta = {
        "q_star": ("fixed point of the length map", "1"),
        "c_star": ("stable fixed point of the correlation map in [0, 1]", "1"),
        "chi_1": ("sigma_w^2 E[phi'(sqrt(q*) z)^2]; ordered < 1 < chaotic", "1"),
        "chi_c": ("slope of the correlation map at c_star", "1"),
        "xi_q": ("depth scale of the length map, -1/log(slope at q*)", "layers"),
        "xi_c": ("depth scale of correlations, -1/log(chi_c)", "layers"),
    }
    data = {
        name: (dims, getattr(mf, name).astype(np.float64), {"long_name": text, "units": units})
        for name, (text, units) in meta.items()
    }
    data["phase"] = (dims, mf.phase.astype(np.int8), {
        "long_name": "order/chaos phase from chi_1",
        "flag_values": np.array(list(PHASE_CODES.values()), dtype=np.int8),
        "flag_meanings": " ".join(PHASE_CODES),
    })
    data["length_diverges"] = (dims, mf.length_diverges.astype(np.int8), {
        "long_name": "1 where the length map has no finite fixed point (q_star = inf)",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "finite diverges",
    })
    if critical_line:
        data["critical_sigma_w2"] = ("sigma_b2", np.atleast_1d(critical_sigma_w2(act, b)), {
            "long_name": "order/chaos boundary: sigma_w^2 where chi_1 = 1 (NaN if none)",
        })
    config = {
        "activation": act.name,
        "expression": str(act.expression),
        "activation_params": dict(act.params),
        "sigma_w2": {"min": float(w.min()), "max": float(w.max()), "num": int(w.size)},
        "sigma_b2": {"min": float(b.min()), "max": float(b.max()), "num": int(b.size)},
        "critical_tol": float(critical_tol),
        "q1": "sigma_w2 + sigma_b2",
    }
    return xr.Dataset(
        data,
        coords={
            "sigma_w2": ("sigma_w2", w, {"long_name": "weight variance sigma_w^2"}),
            "sigma_b2": ("sigma_b2", b, {"long_name": "bias variance sigma_b^2"}),
        },
        attrs={
            "title": f"mean-field phase diagram, activation {act.name}",
            **provenance(config, conventions="mean_field"),
            "activation": act.name,
            "references": "arXiv:1606.05340; arXiv:1611.01232",
        },
    )
