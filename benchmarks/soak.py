"""A bounded soak: a steady request rate against the real server on loopback, watched window by window.

    python -m benchmarks.soak --minutes 3 [--rate 20] [--workers 2] [--model NAME] [--assets N]

Builds an index from the shipped sample library (or serves --index-dir), starts the production command
(`recommender serve`: gunicorn, preloaded app, gthread workers) on a free loopback port and sends a
marketing site's mix of requests at a fixed rate: recommendations with a new query (each one fills
the query-embedding cache), with a popular query, with buying signals only, batches, nurture
sequences, asset reads, browsing, and re-writes of a few assets. The load is open-loop: each request
has a scheduled time and its latency counts from then, so a server that falls behind shows it.

Each window reports requests, errors, p50, p99 and the resident memory of the server (master and
workers). Three verdicts end the report, and the exit status is 1 if one fails:

* errors: none;
* memory: growth after the first window stays within the bound of the caches (the query-embedding
  LRU of every worker, full, plus the static-candidate cache) and a fixed allowance;
* p99: no window's p99 is above twice the median window's p99 plus 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from api.auth import hash_key
from api.serving import serve_command
from content_library import SAMPLE_LIBRARY, load_library
from recommender.build import build_index
from recommender.config import DEFAULT_MODEL
from recommender.embeddings import load_embedder
from recommender.store import IndexStore

#: Entries of the query-embedding LRU in each worker (Recommender's default `query_cache_size`).
QUERY_CACHE_ENTRIES = 4096
#: Bytes per cached query beyond its vector: the key string, the cache's links, the array header.
QUERY_ENTRY_OVERHEAD = 600
#: The static-candidate cache holds at most 1,025 row arrays (engine.py); their size at the soak's k.
STATIC_CACHE_BYTES = 1025 * 8 * 1000
#: Growth allowed beyond the caches: allocator arenas, gunicorn and Python's own bookkeeping.
MEMORY_ALLOWANCE = 64 * 2**20
POPULAR = [
    "invoice approval",
    "pricing",
    "security review",
    "roi calculator",
    "onboarding checklist",
    "erp integration",
    "case study manufacturing",
    "payroll for small teams",
]
WORDS = "invoice approval workflow pricing security audit onboarding erp cash forecast payroll shift fleet".split()


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss: int = 0


@dataclass
class Soak:
    base: str
    key: str
    asset_ids: list[str]
    writes: bool
    windows: list[Window]
    window_seconds: float
    began: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def record(self, scheduled: float, latency: float, error: str | None) -> None:
        index = min(int((scheduled - self.began) / self.window_seconds), len(self.windows) - 1)
        with self.lock:
            self.windows[index].latencies.append(latency)
            if error:
                self.windows[index].errors.append(error)

    def send(self, method: str, path: str, body: object = None, *, write: bool = False) -> int:
        """One request on this thread's keep-alive connection (opened again after an error)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if write:
            headers["Authorization"] = f"Bearer {self.key}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            connection = getattr(self.local, "connection", None)
            if connection is None:
                host, port = self.base.removeprefix("http://").split(":")
                connection = self.local.connection = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                response.read()
                return response.status
            except (http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


#: What the soak writes over a few assets, now and then (the title changes each time).
REWRITE = {
    "body": "A short note on invoice approval, rewritten now and then by the soak.",
    "asset_type": "guide",
    "language": "en",
    "url": "https://example.com/soak",
    "segments": ["enterprise"],
    "stages": ["consideration"],
    "roles": ["finance"],
}


def request_mix(soak: Soak, n: int, rng: random.Random) -> tuple[str, str, object, bool]:
    """The n-th request: (method, path, body, needs the key)."""
    roll = rng.random()
    segment = rng.choice(["enterprise", "smb"])
    if roll < 0.45:
        query = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}"  # new every time: a cache miss, then an entry
        return "POST", "/v1/recommendations", {"segment": segment, "query": query, "k": 10}, False
    if roll < 0.65:
        return "POST", "/v1/recommendations", {"segment": segment, "query": rng.choice(POPULAR), "k": 5}, False
    if roll < 0.75:
        signals = rng.sample(["site_visit", "pricing_page_view", "demo", "trial_signup", "meeting"], 2)
        return "POST", "/v1/recommendations", {"segment": segment, "signals": signals, "k": 10}, False
    if roll < 0.80:
        batch = [{"id": f"c{i}", "segment": segment, "query": rng.choice(POPULAR), "k": 3} for i in range(20)]
        return "POST", "/v1/recommendations/batch", {"requests": batch}, False
    if roll < 0.85:
        stage = rng.choice(["awareness", "consideration"])
        return "POST", "/v1/sequences", {"segment": segment, "stage": stage, "steps": 4}, False
    if roll < 0.92:
        return "GET", f"/v1/assets/{rng.choice(soak.asset_ids)}", None, False
    if roll < 0.98 or not soak.writes:
        return "GET", f"/v1/assets?segment={segment}&limit=20", None, False
    # Rewrites of a few assets: the writes' in-memory part stays the same size.
    asset_id = soak.asset_ids[n % 5]
    return "PUT", f"/v1/assets/{asset_id}", {"title": f"Rewritten {n}", **REWRITE}, True


def drive(soak: Soak, rate: float, seconds: float, pids: psutil.Process) -> None:
    """Send `rate` requests per second for `seconds`, each at its scheduled time, and sample memory."""
    rng = random.Random(20260101)
    interval = 1.0 / rate
    total = int(seconds * rate)

    def one(n: int, scheduled: float, method: str, path: str, body: object, write: bool) -> None:
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        error = None
        try:
            status = soak.send(method, path, body, write=write)
            if status >= 400:
                error = f"{method} {path}: {status}"
        except (http.client.HTTPException, OSError) as exc:
            error = f"{method} {path}: {type(exc).__name__} {exc}"
        soak.record(scheduled, time.monotonic() - scheduled, error)

    with ThreadPoolExecutor(max_workers=64) as pool:
        next_sample = soak.began + soak.window_seconds
        for n in range(total):
            scheduled = soak.began + n * interval
            while time.monotonic() < scheduled - 0.5:
                time.sleep(0.05)
            if time.monotonic() >= next_sample:
                soak.windows[int((next_sample - soak.began) / soak.window_seconds) - 1].rss = server_rss(pids)
                next_sample += soak.window_seconds
            pool.submit(one, n, scheduled, *request_mix(soak, n, rng))
    soak.windows[-1].rss = server_rss(pids)


def server_rss(master: psutil.Process) -> int:
    """Resident bytes of the master and every worker."""
    processes = [master, *master.children()]
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def cache_bound(workers: int, dimension: int) -> int:
    per_worker = QUERY_CACHE_ENTRIES * (dimension * 4 + QUERY_ENTRY_OVERHEAD) + STATIC_CACHE_BYTES
    return workers * per_worker


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


def report(soak: Soak, workers: int, dimension: int) -> tuple[str, bool]:
    """The table and the verdicts, and whether every verdict holds."""
    lines = [
        "| window | requests | errors | p50 ms | p99 ms | server RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for i, window in enumerate(soak.windows, 1):
        lines.append(
            f"| {i} | {len(window.latencies)} | {len(window.errors)} | {percentile_ms(window.latencies, 50):.1f} "
            f"| {percentile_ms(window.latencies, 99):.1f} | {window.rss / 2**20:.1f} |"
        )
    errors = [e for w in soak.windows for e in w.errors]
    growth = soak.windows[-1].rss - soak.windows[0].rss
    bound = cache_bound(workers, dimension) + MEMORY_ALLOWANCE
    p99s = [percentile_ms(w.latencies, 99) for w in soak.windows]
    p99_limit = 2 * statistics.median(p99s) + 50
    checks = [
        (not errors, f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else "")),
        (
            growth <= bound,
            f"memory: grew {growth / 2**20:.1f} MiB after the first window; bound {bound / 2**20:.1f} MiB "
            f"(caches of {workers} workers, full, plus {MEMORY_ALLOWANCE / 2**20:.0f} MiB)",
        ),
        (
            max(p99s) <= p99_limit,
            f"p99: highest window {max(p99s):.1f} ms; limit {p99_limit:.1f} ms (twice the median window, +50 ms)",
        ),
    ]
    lines.append("")
    lines += [f"{'ok  ' if ok else 'FAIL'} {text}" for ok, text in checks]
    return "\n".join(lines), all(ok for ok, _ in checks)


@contextlib.contextmanager
def serving(index_dir: Path, workers: int, threads: int, key: str, log: Path) -> Iterator[tuple[str, psutil.Process]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RECOMMENDER_API_KEYS": f"{hash_key(key)}:write"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            serve_command(index_dir, "127.0.0.1", port, workers, threads),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        master = psutil.Process(process.pid)
        deadline = time.monotonic() + 600
        while not _ready(base, master, workers):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log}")
            time.sleep(0.3)
        yield base, master
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ready(base: str, master: psutil.Process, workers: int) -> bool:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200 and len(master.children()) == workers
    except OSError:
        return False
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to send requests (default 3)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    parser.add_argument("--windows", type=int, default=6, help="report windows (default 6)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"embedding model of the index (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--assets", type=int, default=None, help="sample library assets to index (default all)")
    parser.add_argument("--index-dir", type=Path, help="serve this index instead of building one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(tmp)
        index_dir = args.index_dir
        if index_dir is None:  # the soak's own index: it may rewrite a few of its assets
            index_dir = folder / "index"
            assets = load_library(SAMPLE_LIBRARY).assets[: args.assets]
            library = folder / "library.jsonl"
            library.write_text("".join(a.model_dump_json() + "\n" for a in assets), encoding="utf-8")
            print(f"building an index of {len(assets)} sample assets with {args.model} ...", flush=True)
            build_index([library], index_dir, load_embedder(args.model), None)
        manifest = IndexStore(index_dir).manifest()
        key = secrets.token_urlsafe(32)
        log = folder / "server.log"
        with serving(index_dir, args.workers, args.threads, key, log) as (base, master):
            seconds = args.minutes * 60
            windows = [Window() for _ in range(args.windows)]
            ids = _asset_ids(base)
            soak = Soak(base, key, ids, args.index_dir is None, windows, seconds / args.windows, time.monotonic() + 1)
            print(
                f"soak: {args.rate:g} requests/s for {args.minutes:g} min against {args.workers} workers "
                f"({manifest.asset_count} assets, {manifest.model})",
                flush=True,
            )
            drive(soak, args.rate, seconds, master)
        table, ok = report(soak, args.workers, manifest.dimension)
        print(table)
        return 0 if ok else 1


def _asset_ids(base: str) -> list[str]:
    """Ids of served assets to read (the first page of the library)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", "/v1/assets?limit=200")
        return [item["id"] for item in json.loads(connection.getresponse().read())["items"]]
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
