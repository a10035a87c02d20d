"""``ntkgap recipe list`` and ``ntkgap recipe run NAME --scale tiny``."""

from __future__ import annotations

from compare.cli import main


def test_recipe_list(capsys) -> None:
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("seleznova-kutyniok", "hanin-nica", "lee-wide-linear", "liu-zhu-belkin", "wenger-dangel-kristiadi"):
        assert name in out


def test_recipe_run_tiny(tmp_path, capsys) -> None:
    assert main(["recipe", "run", "hanin-nica", "--scale", "tiny", "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (tmp_path / "report.md").exists() and (tmp_path / "hanin-nica.nc").exists()
    assert any(word in out for word in ("held", "not held", "not testable"))


def test_recipe_run_errors(tmp_path, capsys) -> None:
    assert main(["recipe", "run", "nope", "--scale", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'; available: seleznova-kutyniok" in err
    assert main(["recipe", "run", "hanin-nica", "--scale", "big", "--out", str(tmp_path)]) == 2
    assert "unknown scale 'big' for recipe 'hanin-nica'; allowed: tiny, small, paper" in capsys.readouterr().err
    assert main(["recipe", "run", "hanin-nica", "--scale", "tiny", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads must be a positive integer; got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was measured or written
