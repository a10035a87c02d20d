"""``import compare`` is light (no torch) and still reaches ``compare.recipes``, as the README writes it."""

import subprocess
import sys

_CODE = """
import sys
import compare
assert "compare.recipes" not in sys.modules and "torch" not in sys.modules, "import compare pulled in recipes"
print(compare.recipes.run_recipe.__module__, [r.name for r in compare.recipes.list_recipes()][:2])
"""


def test_compare_recipes_after_import_compare():
    res = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("compare.recipes._base ['seleznova-kutyniok', 'hanin-nica']")


def test_unknown_attribute_is_still_an_attribute_error():
    import pytest

    import compare

    with pytest.raises(AttributeError, match="module 'compare' has no attribute 'recipe'"):
        compare.recipe  # noqa: B018


def test_one_version_from_the_installed_metadata(capsys):
    """The three packages, the CLI and the provenance attrs all read the version from the
    distribution's metadata (pyproject.toml), not from copies."""
    from importlib.metadata import version

    import compare
    import empirical
    import ntktheory
    from compare.cli import main

    installed = version("ntkgap")
    assert ntktheory.__version__ == empirical.__version__ == compare.__version__ == installed
    try:
        main(["--version"])
    except SystemExit:
        pass
    assert installed in capsys.readouterr().out
