"""3. HTTP throughput and latency under gunicorn, driven by locust in another process.

For each library size one server runs with the product's settings (`recommender serve`: preloaded
app, 2 gthread workers of 4 threads). locust, headless in its own process, keeps a fixed number of
clients sending back to back for a fixed time, in turns: the empty route, `POST
/v1/recommendations` without a query, the empty route again, ..., and then with a query (a new
text each time, so the model runs on every request). The ratio "no query / empty" compares
requests per second in neighbouring turns; medians over the turns.

The load generator shares the machine's CPUs with the server: on 2 cores its own cost caps both
routes, so the ratio is a lower bound of what a separate client machine would measure.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import library
from benchmarks._common import RESULTS, Log, Table, bar_chart, median, size_label
from benchmarks.server import REPO, Server, serve

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CLIENTS = 8
WORKERS = 2


@dataclass(frozen=True)
class LoadRun:
    route: str
    requests: int
    failures: int
    per_second: float
    p50_ms: float
    p99_ms: float


def load(server: Server, route: str, seconds: float, clients: int = CLIENTS) -> LoadRun:
    """One locust run at `clients` concurrency for `seconds`; its aggregated statistics."""
    with tempfile.TemporaryDirectory(prefix="locust-") as folder:
        prefix = Path(folder) / "run"
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
            "-u", str(clients), "-r", str(clients), "-t", f"{max(seconds, 1):.0f}s", "--stop-timeout", "10",
            "--host", server.url, "--csv", str(prefix), "--loglevel", "WARNING",
        ]  # fmt: skip
        subprocess.run(
            command,
            cwd=REPO,
            env={**os.environ, "BENCH_ROUTE": route},
            capture_output=True,
            text=True,
            check=False,  # locust exits 1 when a request failed: the failures are reported, not raised
            timeout=seconds + 120,
        )
        with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
            row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return LoadRun(
        route,
        int(row["Request Count"]),
        int(row["Failure Count"]),
        float(row["Requests/s"]),
        _number(row["50%"]),
        _number(row["99%"]),
    )


def _number(cell: str) -> float:
    # locust writes N/A for the percentiles of a run in which no request finished.
    return float("nan") if cell == "N/A" else float(cell)


def measure_size(
    size: int, *, model: str, seconds: float, turns: int, log_file: Path, log: Log = print
) -> list[LoadRun]:
    built = library.ensure(size)
    runs = []
    with serve(built.index_dir, size=size, model=model, workers=WORKERS, log=log_file) as server:
        # Warm-up: each worker's caches (a buyer's first request ranks the whole library: 40 ms at a
        # million assets), the page cache, the model's runtime.
        for route in ("empty", "recommend", "query"):
            load(server, route, 3 + (15 * size / 1_000_000 if route == "recommend" else 0))
        for turn in range(turns):
            for route in ("empty", "recommend"):
                runs.append(load(server, route, seconds))
                log(f"  {size_label(size)} turn {turn + 1} {route}: {runs[-1].per_second:.0f} req/s")
        runs.append(load(server, "query", seconds))
        log(f"  {size_label(size)} query: {runs[-1].per_second:.1f} req/s")
    return runs


def run(sizes: Sequence[int], *, model: str, seconds: float, folder: Path = RESULTS, log: Log = print) -> Table:
    table = Table(
        "http",
        "HTTP throughput and latency (gunicorn, 2 workers x 4 threads, 8 concurrent clients)",
        ["assets", "route", "requests/s", "p50 ms", "p99 ms", "requests", "failures", "ratio to empty route"],
    )
    chart: dict[str, list[float]] = {"empty route": [], "no query": [], "with query": []}
    log_file = library.WORK / "http-server.log"  # git-ignored: logs are not results
    folder.mkdir(parents=True, exist_ok=True)
    log_file.unlink(missing_ok=True)
    for size in sizes:
        runs = measure_size(size, model=model, seconds=seconds, turns=3, log_file=log_file, log=log)
        by_route = {route: [r for r in runs if r.route == route] for route in ("empty", "recommend", "query")}
        empty = median([r.per_second for r in by_route["empty"]])
        for route, label in (("empty", "empty JSON route"), ("recommend", "no query"), ("query", "with query")):
            rs = by_route[route]
            rate = median([r.per_second for r in rs])
            table.add(
                f"{size:,}",
                label,
                f"{rate:,.1f}",
                f"{median([r.p50_ms for r in rs]):.0f}",
                f"{median([r.p99_ms for r in rs]):.0f}",
                sum(r.requests for r in rs),
                sum(r.failures for r in rs),
                f"{rate / empty:.2f}",
            )
        chart["empty route"].append(empty)
        chart["no query"].append(median([r.per_second for r in by_route["recommend"]]))
        chart["with query"].append(median([r.per_second for r in by_route["query"]]))
    table.notes.append(
        f"locust (FastHttpUser, {CLIENTS} clients without think time, {seconds:.0f} s a turn) in its own process on "
        "the same machine; empty route and no-query turns alternate three times (medians). Goal: without a query "
        "at least 0.5 of the empty route's requests per second, no failures. Without a query the clients cycle "
        "through 156 buyer contexts, so after each worker's first pass they are answered from its result cache "
        "(see the latency table for a request ranked anew). With a query every request has a new "
        "text, so the model encodes each one. p50/p99 are locust's (rounded to its histogram buckets)."
    )
    table.write(folder)
    bar_chart(folder / "http.png", "HTTP requests per second", [size_label(s) for s in sizes], chart, "requests/s")
    return table
