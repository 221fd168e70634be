"""The batch throughput benchmark runs end to end (at a tiny size, with the stand-in embedder)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def run_benchmark(tmp_path: Path, *options: str) -> str:
    results = tmp_path / "batch.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch_throughput", "--model", "fake", "--assets", "20"]
        + ["--memory-assets", "30", "60", "--results", str(results), *options],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return results.read_text(encoding="utf-8")


def test_the_benchmark_reports_throughput_ratios_and_peak_memory_with_a_chart(tmp_path: Path) -> None:
    report = run_benchmark(tmp_path, "--no-spark")

    assert re.search(r"^\| raw encode, one call \| [\d.]+ texts/s \| 1\.00 \| 1\.00 \|$", report, re.M)
    assert re.search(r"^\| tag, local engine \| [\d.]+ assets/s \| [\d.]+ \| [\d.]+ \|$", report, re.M)
    assert re.search(r"^\| 30 assets \| [\d,]+ MiB \| [\d,]+ s \|$", report, re.M)
    assert re.search(r"^\| 60 assets \| [\d,]+ MiB \| [\d,]+ s \|$", report, re.M)
    assert "Spark" not in report.split("\n\n")[2]
    assert (tmp_path / "batch.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_benchmark_measures_spark_local_2(tmp_path: Path) -> None:
    report = run_benchmark(tmp_path)

    for job in ("first", "next"):
        line = rf"^\| tag, Spark local\[2\], {job} job \| [\d.]+ assets/s \| [\d.]+ \| n/a \|$"
        assert re.search(line, report, re.M)
