"""A gunicorn server of the benchmark app in a subprocess, with the product's settings, and its memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from api.serving import DEFAULT_THREADS, serve_command

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen

    def pids(self) -> list[int]:
        """The master first, then its workers."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [self.process.pid, *map(int, children)]


@dataclass(frozen=True)
class Memory:
    """Sums over the master and its workers, in bytes (from /proc/<pid>/smaps_rollup)."""

    rss: int
    pss: int
    pss_anon: int
    pss_file: int
    worker_rss: int  # the largest worker's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(index_dir: Path, *, size: int, model: str, workers: int, log: Path) -> Iterator[Server]:
    """gunicorn as `recommender serve` runs it (preloaded app, gthread workers), serving the benchmark app."""
    port = free_port()
    command = serve_command(index_dir, port=port, workers=workers, threads=DEFAULT_THREADS)
    command[-1] = "benchmarks.http_app:create_app()"
    env = {**os.environ, "BENCH_MODEL": model, "BENCH_SIZE": str(size), "RECOMMENDER_INDEX_DIR": str(index_dir)}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_ready(server, workers, timeout=600)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post(server: Server, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def memory(server: Server) -> Memory:
    totals = {"Rss": 0, "Pss": 0, "Pss_Anon": 0, "Pss_File": 0}
    worker_rss = 0
    for i, pid in enumerate(server.pids()):
        values = _rollup(pid)
        for key in totals:
            totals[key] += values.get(key, 0)
        if i:
            worker_rss = max(worker_rss, values.get("Rss", 0))
    return Memory(totals["Rss"], totals["Pss"], totals["Pss_Anon"], totals["Pss_File"], worker_rss)


def _rollup(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value, *_ = line.split()
        out[key.rstrip(":")] = int(value) * 1024
    return out


def _wait_ready(server: Server, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}; see its log")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=5) as response:
                if response.status == 200 and len(server.pids()) > workers:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer /readyz within {timeout:.0f} s")
