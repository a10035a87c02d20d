"""``ntkgap recipe list`` and ``ntkgap recipe run NAME --scale tiny``."""

from __future__ import annotations

from compare.cli import main


def test_recipe_list(capsys) -> None:
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("seleznova-kutyniok", "hanin-nica", "lee-wide-linear", "liu-zhu-belkin", "wenger-dangel-kristiadi",
                 "xiao-pennington-schoenholz"):
        assert name in out


def test_recipe_run_tiny(tmp_path, capsys) -> None:
    assert main(["recipe", "run", "hanin-nica", "--scale", "tiny", "--threads", "1", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "wrote" in out and (tmp_path / "report.md").exists() and (tmp_path / "hanin-nica.nc").exists()
    assert any(word in out for word in ("reproduced", "not reproduced", "inconclusive"))
    # progress on stderr: which part runs and how many of its tasks are done
    assert "ntkgap recipe run: hanin-nica (tiny)" in captured.err
    assert "NTK at init over seeds" in captured.err and "6/6" in captured.err
    # the report is regenerated from the stored dataset alone, with the same verdicts
    first = (tmp_path / "report.md").read_text()
    again = tmp_path / "again"
    assert main(["recipe", "report", str(tmp_path / "hanin-nica.nc"), "--out", str(again)]) == 0
    table = [line for line in first.splitlines() if line.startswith("| ")]
    assert table == [line for line in (again / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert (again / "hanin_nica_ratio.png").exists()


def test_recipe_run_errors(tmp_path, capsys) -> None:
    assert main(["recipe", "run", "nope", "--scale", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'; available: seleznova-kutyniok" in err
    assert main(["recipe", "run", "hanin-nica", "--scale", "big", "--out", str(tmp_path)]) == 2
    assert "unknown scale 'big' for recipe 'hanin-nica'; allowed: tiny, small, paper" in capsys.readouterr().err
    assert main(["recipe", "run", "hanin-nica", "--scale", "tiny", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads must be a positive integer; got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was measured or written
    import xarray as xr

    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(tmp_path / "plain.nc")
    assert main(["recipe", "report", str(tmp_path / "plain.nc")]) == 2
    assert "plain.nc' was not written by `ntkgap recipe run` (no 'recipe' attribute)" in capsys.readouterr().err
