"""The soak (benchmarks/soak.py) runs end to end against a real server: a tiny run by default, minutes when slow.

Errors and memory are asserted from the report. Its p99 verdict is a wall-clock judgement, which no
test asserts on a shared machine: the suite checks that it is reported, and `python -m benchmarks.soak`
(run by hand or on a quiet machine) exits 1 when it fails.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO, SERVER_MODEL

from recommender.config import DEFAULT_MODEL

ROW = re.compile(r"^\| (\d+) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", re.M)


def soak(model: str, *options: str) -> tuple[str, list[tuple[int, ...]]]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--model", model, *options],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
    )
    assert done.returncode in (0, 1), done.stderr
    rows = [(int(w), int(n), int(e)) for w, n, e, *_ in ROW.findall(done.stdout)]
    return done.stdout, rows


def assert_no_errors_and_memory_within_the_cache_bound(report: str, rows: list[tuple[int, ...]], windows: int):
    assert [w for w, _, _ in rows] == list(range(1, windows + 1))
    assert all(n > 0 for _, n, _ in rows)
    assert [e for _, _, e in rows] == [0] * windows
    assert re.search(r"^ok   errors: 0$", report, re.M)
    assert re.search(r"^ok   memory: grew -?[\d.]+ MiB after the first window; bound [\d.]+ MiB", report, re.M)
    assert re.search(r"^(ok  |FAIL) p99: highest window [\d.]+ ms; limit [\d.]+ ms", report, re.M)


def test_a_short_soak_answers_every_request_and_stays_within_its_memory_bound():
    report, rows = soak(SERVER_MODEL, "--minutes", "0.2", "--rate", "6", "--windows", "2", "--assets", "30")

    assert_no_errors_and_memory_within_the_cache_bound(report, rows, windows=2)


@pytest.mark.slow
def test_a_three_minute_soak_with_the_default_model_answers_every_request_and_stays_within_its_memory_bound():
    report, rows = soak(DEFAULT_MODEL, "--minutes", "3", "--rate", "10", "--windows", "6", "--assets", "120")

    assert_no_errors_and_memory_within_the_cache_bound(report, rows, windows=6)
