"""The tolerance tables of the test packages share one shape: ``TOLERANCES[(dtype, quantity)] =
(value, why)`` read with ``tol(quantity, dtype="float64")``; every entry says why, and every name a
test asks for exists and is used."""

import importlib.util
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
TABLES = sorted(TESTS.glob("**/tolerances_*.py"))
USE = re.compile(r"""\btol\(\s*f?(["'])([\w{}]+)\1(?:\s*,\s*(["'])(\w+)\3)?\s*\)""")


def _load(path):
    spec = importlib.util.spec_from_file_location(f"_table_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_table_per_test_folder():
    assert {p.parent.name for p in TABLES} == {"tests", "ntktheory", "empirical", "compare"}


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_table_shape_reasons_and_uses(path):
    module = _load(path)
    for (dtype, quantity), entry in module.TOLERANCES.items():
        assert dtype in ("float64", "float32") and re.fullmatch(r"[a-z0-9_]+", quantity), (dtype, quantity)
        value, why = entry
        assert isinstance(value, (float, tuple)) and len(why) > 20, (quantity, entry)
        assert module.tol(quantity, dtype) == value
    folder = path.parent
    sources = folder.glob("*.py") if folder != TESTS else TESTS.glob("test_*.py")
    used = set()
    for source in sources:
        for m in USE.finditer(source.read_text()):
            used.add((m.group(4) or "float64", m.group(2)))
    templated = {key for key in used if "{" in key[1]}
    for dtype, name in templated:  # tol(f"slope_band_{name}")
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(name)) + "$")
        used |= {key for key in module.TOLERANCES if key[0] == dtype and pattern.match(key[1])}
    used -= templated
    assert used <= set(module.TOLERANCES), sorted(used - set(module.TOLERANCES))
    assert set(module.TOLERANCES) <= used, sorted(set(module.TOLERANCES) - used)
