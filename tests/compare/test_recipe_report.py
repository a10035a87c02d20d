"""The claim/report machinery of the recipes."""

from __future__ import annotations

import math

import pytest

from compare.recipes import Claim, judge_interval, judge_threshold, write_report


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
