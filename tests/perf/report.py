"""Printing benchmark tables: one row per measure, with its goal and whether this run met it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def print_table(title: str, rows: Sequence[tuple[str, str, str, bool | None]]) -> None:
    """rows: (measure, value, goal, met) — met None when the row has no goal."""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("measure", "value", "goal"), strict=True)]
    print(f"\n== {title}")
    print(f"{'measure':<{widths[0]}}  {'value':>{widths[1]}}  {'goal':<{widths[2]}}  result")
    for measure, value, goal, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{measure:<{widths[0]}}  {value:>{widths[1]}}  {goal:<{widths[2]}}  {verdict}")
