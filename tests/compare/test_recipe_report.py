"""The claim/report machinery of the recipes."""

from __future__ import annotations

import math

import pytest

from compare.recipes import Claim, judge_ci_threshold, judge_interval, judge_threshold, verdict_counts, write_report


def test_judges() -> None:
    assert judge_interval(-0.48, 0.05, -0.6, -0.4) is True
    assert judge_interval(-0.30, 0.05, -0.6, -0.4) is False  # interval [-0.35, -0.25] misses the band
    assert judge_interval(-0.36, 0.05, -0.6, -0.4) is True  # touches the band within its CI
    assert judge_interval(math.nan, 0.05, -0.6, -0.4) is None
    assert judge_interval(-0.5, math.inf, -0.6, -0.4) is None
    assert judge_threshold(1.5, 1.0, above=True) is True
    assert judge_threshold(1.5, 1.0, above=False) is False
    assert judge_threshold(math.inf, 1.0, above=True) is None


def test_claim_formatting() -> None:
    claim = Claim("gap ~ n^-1/2", "slope", -0.512345, 0.0321, "CI overlaps [-0.6, -0.4]", True)
    assert claim.verdict == "held"
    assert claim.measured() == "-0.5123 ± 0.032"
    assert Claim("s", "q", math.nan, None, "c", None).measured() == "n/a"
    assert Claim("s", "q", 2.0, None, "c", False).verdict == "not held"


def test_report_lists_every_claim_with_verdict_counts(tmp_path) -> None:
    claims = [
        Claim("A holds", "a", 1.0, 0.1, "a > 0", True),
        Claim("B | pipes escaped", "b", -1.0, None, "b > 0", False, note="small scale"),
        Claim("C", "c", math.nan, None, "fit", None, note="fit diverged"),
    ]
    fig = tmp_path / "out" / "fig.png"
    fig.parent.mkdir()
    fig.write_bytes(b"")
    path = write_report(
        tmp_path / "out" / "report.md", title="T", reference="Ref 2020", summary="S",
        claims=claims, figures=[fig], configuration={"widths": [64, 128]},
    )
    text = path.read_text()
    assert "**1 held, 1 not held, 1 not testable**" in text
    assert "B \\| pipes escaped" in text
    assert "| 3 | C | c | n/a | fit | **not testable** |" in text
    assert "![fig](fig.png)" in text
    assert '"widths": [\n    64,\n    128\n  ]' in text
    assert "1. small scale" not in text and "2. small scale" in text and "3. fit diverged" in text


@pytest.mark.parametrize("held", [True, False, None])
def test_verdict_words(held) -> None:
    assert Claim("s", "q", 0.0, None, "c", held).verdict in {"held", "not held", "not testable"}


def test_a_papers_claim_reads_reproduced_not_reproduced_inconclusive(tmp_path) -> None:
    words = [Claim("s", "q", 1.0, None, "c", held, source="Fig. 2").verdict for held in (True, False, None)]
    assert words == ["reproduced", "not reproduced", "inconclusive"]
    paper = [Claim("networks memorise", "test acc", 0.1, 0.02, "CI < 0.2", True, source="Sec. 4, Fig. 3"),
             Claim("pooling helps", "gain", -0.05, 0.1, "CI > 0", None, source="Abstract")]
    text = write_report(tmp_path / "report.md", title="T", reference="R", summary="S", claims=paper).read_text()
    assert "**1 reproduced, 0 not reproduced, 1 inconclusive**" in text
    assert "| 1 | networks memorise (Sec. 4, Fig. 3) | test acc | 0.1 ± 0.02 | CI < 0.2 | **reproduced** |" in text
    assert "| 2 | pooling helps (Abstract) |" in text and text.rstrip().endswith("**inconclusive** |")
    # a mixed report (a recipe not yet rewritten beside a rewritten one) counts both vocabularies
    mixed = [*paper, Claim("old", "q", 1.0, None, "c", False)]
    assert verdict_counts(mixed) == "1 reproduced, 0 not reproduced, 1 inconclusive, 0 held, 1 not held, 0 not testable"


def test_judge_ci_threshold() -> None:
    assert judge_ci_threshold(1.3, 1.6, 1.2, above=True) is True
    assert judge_ci_threshold(0.9, 1.1, 1.2, above=True) is False
    assert judge_ci_threshold(1.1, 1.4, 1.2, above=True) is None
    assert judge_ci_threshold(0.02, 0.08, 0.1, above=False) is True
    assert judge_ci_threshold(0.12, 0.3, 0.1, above=False) is False
    assert judge_ci_threshold(0.3, 0.12, 0.1, above=False) is False  # bounds in either order
    assert judge_ci_threshold(math.nan, 0.3, 0.1, above=False) is None
