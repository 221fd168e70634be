"""What every benchmark shares: timing, percentiles, Markdown tables and PNG charts."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
#: Where a benchmark reports progress (print by default).
Log = Callable[[str], None]


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def percentile(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile of `seconds`, in milliseconds."""
    return float(np.percentile(np.asarray(seconds), q)) * 1000.0


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values)))


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, load {load:.1f}"


@dataclass
class Table:
    """One benchmark's result: a Markdown table with a title and notes, and the chart drawn from it."""

    name: str  # file stem under results/
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([_cell(c) for c in cells])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.md"
        head = f"# {self.title}\n\nMeasured {dt.date.today().isoformat()} on {machine()} with `{invocation()}`.\n\n"
        notes = "".join(f"\n{note}\n" for note in self.notes)
        path.write_text(head + self.markdown() + "\n" + notes, encoding="utf-8")
        return path


def invocation() -> str:
    """The command line that is running, as a user would type it."""
    return shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]])


def bar_chart(
    path: Path,
    title: str,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    *,
    log: bool = False,
    line: float | None = None,
) -> Path:
    """Grouped bars (one group per x label, one bar per series), an optional horizontal goal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=label)
    if line is not None:
        ax.axhline(line, color="black", linestyle="--", linewidth=1, label="goal")
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
