"""Printing claim results for people (a table) and for machines (JSON)."""

import dataclasses
import json
import math
import shutil
import textwrap
from collections.abc import Sequence

from rdp_jax.experiments._codec_report import json_number
from rdp_jax.verify import ClaimResult

_SYMBOL = {"equal": "±", "at_most": "≤ +", "at_least": "≥ -", "report": ""}


def _number(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x) or x == 0:
        return str(x)
    return f"{x:.6g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"


def claim_row(result: ClaimResult) -> list[str]:
    """One table row: verdict, evidence, claim, measured, expected (with the comparison), time."""
    expected = _number(result.expected)
    if result.comparison != "report":
        expected += f" {_SYMBOL[result.comparison]}{_number(result.tolerance)}"
    return [
        result.verdict,
        result.evidence,
        result.name,
        _number(result.measured),
        expected,
        f"{result.seconds:.1f}s",
    ]


def format_table(results: Sequence[ClaimResult]) -> str:
    """A fixed-width table of results, with each claim's source and detail on a second line."""
    header = ["verdict", "evidence", "claim", "measured", "expected", "time"]
    rows = [claim_row(r) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    width = min(shutil.get_terminal_size((120, 20)).columns, 160)
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "-" * width]
    for result, row in zip(results, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(
            textwrap.wrap(
                f"{result.source}; {result.detail}",
                width=width,
                initial_indent=" " * (widths[0] + widths[1] + 4) + "↳ ",
                subsequent_indent=" " * (widths[0] + widths[1] + 6),
            )
        )
    return "\n".join(lines)


def summary(results: Sequence[ClaimResult]) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in ("PASS", "FAIL", "ERROR", "INFO")}
    return ", ".join(f"{n} {v.lower()}" for v, n in counts.items() if n) + (
        f" ({len(results)} claims, {sum(r.seconds for r in results):.1f}s)"
    )


def to_json(results: Sequence[ClaimResult]) -> str:
    """The results as a JSON array; NaN and ±∞ become null and "inf"/"-inf" strings."""
    rows = [{k: json_number(v) for k, v in dataclasses.asdict(r).items()} for r in results]
    return json.dumps(rows, indent=2, allow_nan=False)
