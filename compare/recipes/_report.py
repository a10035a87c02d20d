"""Claims checked against measurements, and the ``report.md`` that lists them.

A recipe reproduces one paper's central experiment and ends with a report: each claim of the paper,
the number measured here with its uncertainty, the criterion it was judged by, and whether it
held. A claim that cannot be judged at the scale run (too few widths, a diverged fit) is reported
as "not testable" with the reason, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "VERDICT_GROUPS", "Claim", "judge_band", "judge_below", "judge_interval", "judge_threshold", "verdict_counts",
    "write_report",
]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of a paper next to what was measured.

    Parameters
    ----------
    statement
        The paper's claim, in words.
    quantity
        What was measured, e.g. "log-log slope of the NTK's relative Frobenius gap vs width".
    value
        The measured value (NaN when it could not be measured).
    uncertainty
        Half-width of the 95% confidence interval (or the stated standard error), or None.
    criterion
        How the claim is judged, in words, e.g. "95% CI overlaps [-0.6, -0.4]".
    held
        True / False, or None when not testable at this scale.
    note
        Anything the reader needs: the scale, why a claim was not testable, a caveat.
    """

    statement: str
    quantity: str
    value: float
    uncertainty: float | None
    criterion: str
    held: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "held", False: "not held", None: "not testable"}[self.held]

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
        f"**{verdict_counts(claims)}** (generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}).",
        "",
        "| # | claim | measured | value | criterion | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, claim in enumerate(claims, 1):
        cells = [str(i), claim.statement, claim.quantity, claim.measured(), claim.criterion, f"**{claim.verdict}**"]
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


#: Verdict vocabularies, each in report order: a check's (:class:`Claim`) and a paper claim's
#: (reproduced / not reproduced / inconclusive, for claims whose ``verdict`` uses those words).
VERDICT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("reproduced", "not reproduced", "inconclusive"),
    ("held", "not held", "not testable"),
)


def verdict_counts(claims: Sequence[Claim]) -> str:
    """The report's count line: "2 held, 1 not held, 0 not testable", one group per vocabulary in use.

    A vocabulary appears when at least one claim uses it; with no claims (or only the default
    words) the line is the held / not held / not testable one.

    Examples
    --------
    >>> verdict_counts([Claim("s", "q", 1.0, None, "c", True), Claim("s", "q", 1.0, None, "c", None)])
    '1 held, 0 not held, 1 not testable'
    """
    used = {c.verdict for c in claims}
    groups = [g for g in VERDICT_GROUPS if used & set(g)] or [VERDICT_GROUPS[-1]]
    known = {v for g in VERDICT_GROUPS for v in g}
    parts = [", ".join(f"{sum(c.verdict == v for c in claims)} {v}" for v in g) for g in groups]
    parts += [f"{sum(c.verdict == v for c in claims)} {v}" for v in sorted(used - known)]
    return "; ".join(parts)


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
