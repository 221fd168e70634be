"""5. Batch: the batch issue's benchmark (`benchmarks.batch_throughput`), run as its own process.

Its report (tagging rates against raw encode, locally and on Spark local[2], and peak memory) is
written to results/batch.md by that module; its tables are carried into this suite's summary.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks._common import RESULTS, Table
from benchmarks.server import REPO


def run(*, model: str, quick: bool, folder: Path = RESULTS) -> Table:
    report = folder / "batch.md"
    command = [sys.executable, "-m", "benchmarks.batch_throughput", "--results", str(report)]
    command += ["--model", "fake" if model == "stand-in" else model]
    if quick:
        command += ["--assets", "64", "--memory-assets", "20000", "--no-spark"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.batch_throughput failed:\n{done.stderr[-2000:]}")
    return from_markdown("batch", "Batch tagging", report.read_text(encoding="utf-8"))


def from_markdown(name: str, title: str, text: str) -> Table:
    """The first Markdown table of `text` as a Table; the paragraphs and tables after it as its notes."""
    blocks = text.strip().split("\n\n")
    first = next(i for i, block in enumerate(blocks) if block.startswith("|"))
    lines = blocks[first].splitlines()
    table = Table(name, title, _cells(lines[0]))
    for line in lines[2:]:
        table.rows.append(_cells(line))
    table.notes = blocks[first + 1 :]
    return table


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]
