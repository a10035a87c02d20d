"""README.md's examples cannot rot: every ```python block runs, in order, in one fresh interpreter.

The blocks are a tour: later ones use names defined by earlier ones (``x``, ``y``, ``net``), as a
reader who pastes them one after the other would. RuntimeWarnings are errors, so that the tour
also runs for users with ``-W error``.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    """The contents of the fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_a_tour():
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 6
    assert any("ntktheory.kernels" in b for b in blocks) and any("empirical.train" in b for b in blocks)


def test_every_python_block_of_the_readme_runs_in_order(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    script = "\n".join(f"# --- README block {i + 1}\n{block}" for i, block in enumerate(blocks))
    (tmp_path / "readme_tour.py").write_text(script)
    res = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(tmp_path / "readme_tour.py")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"a README block failed:\n{res.stderr[-4000:]}"


def test_no_shipped_file_points_to_notes_the_project_does_not_ship():
    """README, docs, examples and the packages' sources send readers only to files that ship."""
    shipped = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder in ("ntktheory", "empirical", "compare", "docs", "examples"):
        shipped += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".rst", ".txt", ".toml")
                    and "generated" not in p.parts and "auto_examples" not in p.parts]
    assert len(shipped) > 30
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in shipped for name in ("DESIGN.md", "THEORY.md")
                 if name in p.read_text(errors="replace")]
    assert not offenders, offenders
