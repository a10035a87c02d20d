"""Claims checked against measurements, and the ``report.md`` that lists them.

A recipe reproduces one paper's central experiment and ends with a report: each claim of the paper
(in the paper's own direction, quoted or paraphrased, with its section or figure), the number
measured here with its uncertainty, the criterion it was judged by (fixed in code before the run),
and the verdict: **reproduced**, **not reproduced**, or **inconclusive** when the measurement
cannot decide at the scale run (an interval that straddles the criterion, too few widths, a diverged
fit), with the reason, never silently dropped.

A :class:`Claim` with a ``source`` (the paper's section, figure or theorem) is one of the paper's
claims and uses that vocabulary. A claim without one keeps the older wording held / not held / not
testable, for recipes that have not yet been rewritten to state the paper's own claims.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "LEGACY_VERDICTS",
    "PAPER_VERDICTS",
    "Claim",
    "judge_band",
    "judge_below",
    "judge_ci_threshold",
    "judge_interval",
    "judge_threshold",
    "verdict_counts",
    "write_report",
]

#: Verdict words of a paper's claim (a :class:`Claim` with a ``source``), by ``held``.
PAPER_VERDICTS: dict[bool | None, str] = {True: "reproduced", False: "not reproduced", None: "inconclusive"}
#: The older words, kept for claims without a ``source``.
LEGACY_VERDICTS: dict[bool | None, str] = {True: "held", False: "not held", None: "not testable"}


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of a paper next to what was measured.

    Parameters
    ----------
    statement
        The paper's claim, in words (quoted or paraphrased, in the paper's direction: what the
        paper reports, not its negation).
    quantity
        What was measured, e.g. "log-log slope of the NTK's relative Frobenius gap vs width".
    value
        The measured value (NaN when it could not be measured).
    uncertainty
        Half-width of the 95% confidence interval (or the stated standard error), or None.
    criterion
        How the claim is judged, in words, e.g. "95% CI overlaps [-0.6, -0.4]".
    held
        True (the measurement agrees with the claim), False (it contradicts it), or None when the
        measurement cannot decide at this scale.
    note
        Anything the reader needs: the scale, why a claim was inconclusive, a caveat.
    source
        Where the paper makes the claim ("Sec. 4, Fig. 2", "Thm. 1"). With a source the verdict
        reads reproduced / not reproduced / inconclusive; without, held / not held / not testable.
    """

    statement: str
    quantity: str
    value: float
    uncertainty: float | None
    criterion: str
    held: bool | None
    note: str = ""
    source: str = ""

    @property
    def vocabulary(self) -> dict[bool | None, str]:
        """:data:`PAPER_VERDICTS` for a paper's claim (with a ``source``), else :data:`LEGACY_VERDICTS`."""
        return PAPER_VERDICTS if self.source else LEGACY_VERDICTS

    @property
    def verdict(self) -> str:
        """The verdict word: reproduced / not reproduced / inconclusive (or the legacy words)."""
        return self.vocabulary[self.held]

    def stated(self) -> str:
        """The statement with its source, as the report's claim cell shows it."""
        return f"{self.statement} ({self.source})" if self.source else self.statement

    def measured(self) -> str:
        """The measured value with its uncertainty, formatted for the report."""
        if not math.isfinite(self.value):
            return "n/a"
        if self.uncertainty is None or not math.isfinite(self.uncertainty):
            return f"{self.value:.4g}"
        return f"{self.value:.4g} ± {self.uncertainty:.2g}"


def judge_interval(value: float, half_width: float, low: float, high: float) -> bool | None:
    """True if [value - half_width, value + half_width] overlaps [low, high]; None if not finite.

    Examples
    --------
    >>> judge_interval(-0.48, 0.05, -0.6, -0.4)
    True
    >>> judge_interval(-0.1, 0.05, -0.6, -0.4)
    False
    """
    if not (math.isfinite(value) and math.isfinite(half_width)):
        return None
    return value + half_width >= low and value - half_width <= high


def judge_threshold(value: float, threshold: float, *, above: bool) -> bool | None:
    """True if ``value`` is above (or below) ``threshold``; None if ``value`` is not finite.

    Examples
    --------
    >>> judge_threshold(3.0, 2.0, above=True)
    True
    >>> judge_threshold(float("nan"), 2.0, above=False) is None
    True
    """
    if not math.isfinite(value):
        return None
    return value > threshold if above else value < threshold


def write_report(
    path: str | Path,
    *,
    title: str,
    reference: str,
    summary: str,
    claims: Sequence[Claim],
    figures: Sequence[str | Path] = (),
    configuration: dict | None = None,
) -> Path:
    """Write ``report.md``: the claims table, figures and the configuration that produced them.

    Returns the path written. Figures are linked relative to the report's folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        f"*{reference}*",
        "",
        summary.strip(),
        "",
        f"**{verdict_counts(claims)}** "
        f"(generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}).",
        "",
        "| # | claim | measured | value | criterion | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, claim in enumerate(claims, 1):
        cells = [str(i), claim.stated(), claim.quantity, claim.measured(), claim.criterion, f"**{claim.verdict}**"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    notes = [(i, c.note) for i, c in enumerate(claims, 1) if c.note]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"{i}. {note}" for i, note in notes]
    if figures:
        lines += ["", "## Figures", ""]
        for fig in figures:
            rel = Path(fig)
            try:
                rel = rel.relative_to(path.parent)
            except ValueError:
                pass
            lines.append(f"![{rel.stem}]({rel.as_posix()})")
            lines.append("")
    if configuration is not None:
        lines += ["", "## Configuration", "", "```json", json.dumps(configuration, indent=2, default=str), "```"]
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def verdict_counts(claims: Sequence[Claim]) -> str:
    """"2 reproduced, 1 not reproduced, 0 inconclusive" (per vocabulary in use; legacy words for legacy claims).

    Examples
    --------
    >>> verdict_counts([Claim("s", "q", 1.0, None, "c", True, source="Fig. 1")])
    '1 reproduced, 0 not reproduced, 0 inconclusive'
    >>> verdict_counts([Claim("s", "q", 1.0, None, "c", None)])
    '0 held, 0 not held, 1 not testable'
    """
    parts = []
    for vocabulary in (PAPER_VERDICTS, LEGACY_VERDICTS):
        used = [c for c in claims if c.vocabulary is vocabulary]
        if used or (not claims and vocabulary is PAPER_VERDICTS):
            parts += [f"{sum(c.verdict == word for c in used)} {word}" for word in vocabulary.values()]
    return ", ".join(parts)


def judge_ci_threshold(low: float, high: float, threshold: float, *, above: bool) -> bool | None:
    """Decide "value > threshold" (``above=True``) or "value < threshold" from its interval [low, high].

    True when the whole interval lies on the claimed side, False when it lies entirely on the
    other side, None (inconclusive) when it straddles the threshold or a bound is not finite.

    Examples
    --------
    >>> judge_ci_threshold(1.3, 1.6, 1.2, above=True), judge_ci_threshold(0.9, 1.1, 1.2, above=True)
    (True, False)
    >>> judge_ci_threshold(1.1, 1.4, 1.2, above=True) is None
    True
    >>> judge_ci_threshold(0.02, 0.08, 0.1, above=False)
    True
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    low, high = min(low, high), max(low, high)
    if above:
        return True if low > threshold else False if high < threshold else None
    return True if high < threshold else False if low > threshold else None


def judge_band(value: float, half_width: float, low: float, high: float, *, max_half_width: float) -> bool | None:
    """:func:`judge_interval`, but None (not testable) when the interval is wider than ``max_half_width``.

    A confidence interval so wide that it overlaps any band says nothing; such a claim is reported
    as not testable at the scale run instead of "held".

    Examples
    --------
    >>> judge_band(-0.2, 0.7, -1.0, -0.5, max_half_width=0.3) is None
    True
    >>> judge_band(-0.7, 0.1, -1.0, -0.5, max_half_width=0.3)
    True
    """
    if not (math.isfinite(half_width) and half_width <= max_half_width):
        return None
    return judge_interval(value, half_width, low, high)


def judge_below(value: float, standard_error: float, threshold: float, *, z: float = 1.96) -> bool | None:
    """Decide "value < threshold" from a noisy estimate: held, not held, or not testable.

    True when the whole interval value ± z·se lies below ``threshold``, False when it lies above,
    None when the interval straddles the threshold (the measurement cannot decide at this scale)
    or is not finite.

    Examples
    --------
    >>> judge_below(0.05, 0.01, 0.1), judge_below(0.3, 0.05, 0.1), judge_below(0.09, 0.05, 0.1)
    (True, False, None)
    """
    if not (math.isfinite(value) and math.isfinite(standard_error)):
        return None
    if value + z * standard_error < threshold:
        return True
    if value - z * standard_error > threshold:
        return False
    return None
