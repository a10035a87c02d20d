"""``ntkgap phase``: NetCDF + PNG written, values equal to the library call, errors reported."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ntktheory
from compare.cli import main


def test_phase_writes_netcdf_and_png(tmp_path, capsys):
    out = tmp_path / "sub" / "phase.nc"
    rc = main(["phase", "--activation", "erf", "--sigma-w2", "0.5", "3", "12", "--sigma-b2", "0", "0.2", "5",
               "--out", str(out)])
    assert rc == 0
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    ds = xr.open_dataset(out).load()
    expected = ntktheory.phase_diagram("erf", sigma_w2=np.linspace(0.5, 3, 12), sigma_b2=np.linspace(0, 0.2, 5))
    for name in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase", "critical_sigma_w2"):
        np.testing.assert_array_equal(ds[name].values, expected[name].values)
    assert "wrote" in capsys.readouterr().out


def test_phase_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "phase" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sigma-w2", "1", "2", "1.5"], "--sigma-w2 NUM must be an integer >= 2, got 1.5"),
        (["--sigma-b2", "0.3", "0.1", "5"], "--sigma-b2 needs START < STOP"),
        (["--sigma-w2", "-1", "2", "5"], "`sigma_w2` must be > 0"),
        (["--activation", "foo(x)"], "calls unknown function"),
    ],
)
def test_phase_errors_are_reported(tmp_path, capsys, argv, message):
    assert main(["phase", *argv, "--out", str(tmp_path / "p.nc")]) == 2
    assert message in capsys.readouterr().err


def test_phase_rejects_non_netcdf_output(tmp_path, capsys):
    rc = main(["phase", "--sigma-w2", "1", "2", "3", "--sigma-b2", "0", "0.1", "2", "--out", str(tmp_path / "p.csv")])
    assert rc == 2 and "--out must end in .nc" in capsys.readouterr().err


def _relu_tanh_sweep_points():
    inits = ["ordered", "critical", "chaotic"]
    crit = np.array([ntktheory.critical_sigma_w2(a, 0.05) for a in ("tanh", "relu")])
    return xr.Dataset(coords={
        "activation": ["tanh", "relu"], "init": inits,
        "sigma_w2": (("activation", "init"), crit[:, None] * np.array([0.5, 1.0, 2.0])),
        "sigma_b2": (("activation", "init"), np.full((2, 3), 0.05)),
    })


def test_run_phase_figure_hatches_where_q_star_is_infinite(tmp_path, monkeypatch):
    """``ntkgap run``'s figure is ``ntkgap phase``'s, with the hatching where the length map explodes
    (ReLU beyond sigma_w^2 = 2: the chaotic star at sigma_w^2 = 4 sits in it)."""
    from matplotlib.figure import Figure

    from compare import _plot_phase, _report

    drawn = []
    original = _plot_phase.draw_phase_diagram

    def spy(ph, ax, **kw):
        handles = original(ph, ax, **kw)
        drawn.append((ph.attrs["activation"], [h.get_label() for h in handles], ax))
        return handles

    monkeypatch.setattr(_report, "draw_phase_diagram", spy)  # _report's own binding of _plot_phase's function
    _report.plot_phase_points(_relu_tanh_sweep_points(), tmp_path / "phase.png")
    assert [a for a, _, _ in drawn] == ["tanh", "relu"]
    relu_labels, relu_ax = drawn[1][1], drawn[1][2]
    assert any("q^*=\\infty" in label for label in relu_labels)
    legend = [t.get_text() for t in relu_ax.get_legend().get_texts()]
    assert any("length diverges" in t for t in legend) and "sweep: chaotic" in legend
    assert not any("length diverges" in label for label in drawn[0][1])  # tanh: q* finite everywhere
    ph = ntktheory.phase_diagram("relu", sigma_w2=np.linspace(0.5, 4, 30), sigma_b2=np.linspace(0, 0.3, 10))
    ax = Figure().add_subplot()
    _plot_phase.draw_phase_diagram(ph, ax)
    hatched = [c for c in ax.collections if any(getattr(c, "hatches", None) or [])]
    assert hatched, "no hatched region drawn"


@pytest.mark.parametrize("activation", ["tanh", "erf", "relu"])
def test_xi_c_labels_stay_clear_of_the_critical_line_the_frame_and_each_other(activation):
    from matplotlib.figure import Figure

    from compare._plot_phase import _LABEL_CLEARANCE, draw_phase_diagram

    w, b = np.linspace(0.5, 4, 120), np.linspace(0, 0.3, 100)
    ph = ntktheory.phase_diagram(activation, sigma_w2=w, sigma_b2=b)
    ax = Figure().add_subplot()
    draw_phase_diagram(ph, ax)
    labels = [(t.get_position(), t.get_text()) for t in ax.texts if "xi_c" in t.get_text()]
    assert len(labels) >= 4
    line_gap, frame_gap, label_gap = _LABEL_CLEARANCE
    crit = ph.critical_sigma_w2.values
    ok = np.isfinite(crit)
    uv = []
    for (x, y), _ in labels:
        u, v = (x - w[0]) / (w[-1] - w[0]), (y - b[0]) / (b[-1] - b[0])
        assert frame_gap * 0.9 < u < 1 - frame_gap * 0.9 and frame_gap * 0.9 < v < 1 - frame_gap * 0.9
        assert abs(x - np.interp(y, b[ok], crit[ok])) / (w[-1] - w[0]) > line_gap * 0.9
        uv.append((u, v))
    uv = np.array(uv)
    dist = np.hypot(*(uv[:, None, :] - uv[None, :, :]).transpose(2, 0, 1))
    assert dist[np.triu_indices(len(uv), 1)].min() > label_gap * 0.9
