"""What `corral chaos` reports: the faults by kind with their recovery times, the tasks, the invariants, the
person's actions it took, and how to replay the campaign. `--json` prints `ChaosReport` as it is.

Pure: built from the records of a finished run (`FaultRecord`s, violations, counts); no store, no clock.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from frontends.cli.chaos_invariants import INVARIANTS, Violation
from frontends.cli.output import format_table

__all__ = [
    "ChaosReport",
    "FaultRecord",
    "InvariantResult",
    "KindStats",
    "by_kind",
    "format_report",
    "invariant_results",
    "percentile",
]

_EXAMPLES = 5


class FaultRecord(msgspec.Struct, frozen=True):
    """One injected fault: what, on what, when (seconds since the campaign began), and how long until the
    system moved again (`recovery_s`; None: it did not within the fault's time limit). `note` says what was
    seen (a refused signal's error, the hold's length)."""

    number: int
    kind: str
    target: str
    task: str
    at_s: float
    recovery_s: float | None
    note: str = ""


class KindStats(msgspec.Struct, frozen=True):
    kind: str
    injected: int
    recovered: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None


class InvariantResult(msgspec.Struct, frozen=True):
    name: str
    count: int  # violations; 0 when it held
    examples: tuple[str, ...] = ()


class ChaosReport(msgspec.Struct, frozen=True):
    """The whole report. `ok`: every invariant held and nothing unexpected happened (`errors`)."""

    ok: bool
    seed: int
    replay: str  # the command that runs the same campaign again
    seconds: float
    faults_requested: int
    faults_injected: int
    kinds: tuple[str, ...]
    by_kind: tuple[KindStats, ...]
    skipped: tuple[str, ...]  # kinds that could not be injected here, and why
    tasks_started: int
    tasks_done: int
    invariants: tuple[InvariantResult, ...]
    person_actions: dict[str, int]  # command → how often the campaign ran it as a person would
    errors: tuple[str, ...]  # unexpected outcomes outside the invariants (a traceback, a bad signal applied)
    faults: tuple[FaultRecord, ...]
    scratch: str = ""  # the sandbox's directory: removed at the end unless kept (--keep)
    kept: bool = False
    cleanup_problems: tuple[str, ...] = ()


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile `p` (0–100) of `values` (not empty): the smallest value with at least p %
    of the values at or below it."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


def by_kind(faults: Iterable[FaultRecord], kinds: Sequence[str]) -> tuple[KindStats, ...]:
    """Per kind, in `kinds` order: how many were injected and recovered, and the recovery times' p50, p99
    and maximum (None when none recovered)."""
    times: defaultdict[str, list[float]] = defaultdict(list)
    injected: Counter[str] = Counter()
    for fault in faults:
        injected[fault.kind] += 1
        if fault.recovery_s is not None:
            times[fault.kind].append(fault.recovery_s)
    out = []
    for kind in kinds:
        got = times.get(kind, [])
        out.append(
            KindStats(
                kind=kind,
                injected=injected.get(kind, 0),
                recovered=len(got),
                p50_s=round(percentile(got, 50), 3) if got else None,
                p99_s=round(percentile(got, 99), 3) if got else None,
                max_s=round(max(got), 3) if got else None,
            )
        )
    return tuple(out)


def invariant_results(violations: Iterable[Violation]) -> tuple[InvariantResult, ...]:
    """Each invariant with its number of violations and the first few, in INVARIANTS order."""
    seen: defaultdict[str, list[str]] = defaultdict(list)
    for violation in violations:
        seen[violation.invariant].append(violation.what)
    return tuple(
        InvariantResult(name, len(seen.get(name, [])), tuple(seen.get(name, [])[:_EXAMPLES]))
        for name in INVARIANTS
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_report(report: ChaosReport) -> str:
    """The report for a terminal."""
    verdict = "every invariant held" if report.ok else "INVARIANTS BROKEN"
    lines = [
        "",
        f"corral chaos: {verdict}; {report.faults_injected} faults in {report.seconds:.0f} s, "
        f"{report.tasks_done} of {report.tasks_started} tasks done (seed {report.seed})",
        "",
    ]
    rows = [
        (
            s.kind,
            str(s.injected),
            str(s.recovered),
            _seconds(s.p50_s),
            _seconds(s.p99_s),
            _seconds(s.max_s),
        )
        for s in report.by_kind
    ]
    lines += [format_table(("FAULT", "INJECTED", "RECOVERED", "P50 S", "P99 S", "MAX S"), rows), ""]
    lines += [f"not injected: {why}" for why in report.skipped]
    if report.skipped:
        lines.append("")
    rows = [(r.name, str(r.count), "held" if r.count == 0 else "BROKEN") for r in report.invariants]
    lines += [format_table(("INVARIANT", "VIOLATIONS", "RESULT"), rows)]
    for result in report.invariants:
        lines += [f"  {result.name}: {example}" for example in result.examples]
    lines.append("")
    if report.person_actions:
        lines.append("acting as the person the tasks waited for, the campaign ran:")
        lines += [f"  {count} × {command}" for command, count in sorted(report.person_actions.items())]
        lines.append("")
    lines += [f"error: {error}" for error in report.errors]
    lines += [f"warning: {problem}" for problem in report.cleanup_problems]
    if report.kept:
        lines.append(f"kept {report.scratch} (the repository; home/: the database; run/: the daemon's log)")
    lines.append(f"replay: {report.replay}")
    return "\n".join(lines)
