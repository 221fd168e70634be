"""Processes SIGKILLed at random points, many times over: nothing acknowledged is lost, nothing half-done is used.

Three kinds of work are killed in a loop: an index build (while another process keeps writing), bulk
upserts through the real API (its gunicorn workers are killed mid-request, then the whole server), and
a batch tagging run (resumed after each kill). tests/test_crash_safety.py kills a build once at each
named point; here the points are random and the kills many. The default run loops a few times; the
slow tests loop many more.

Builds and tagging runs are forked from a "zygote": a process that has imported everything once, so
that each killed run costs its work, not Python's start-up. Each forked run is a real process of its
own, killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SERVER_KEY,
    HashEmbedder,
    LiveServer,
    build_with_cli,
    live_server,
    make_asset,
    write_jsonl,
    write_rows,
)

from content_library import SAMPLE_LIBRARY, Asset, load_library
from recommender.engine import Recommender
from recommender.snapshot import open_snapshot
from recommender.store import KEEP_VERSIONS, IndexStore

TESTS = Path(__file__).resolve().parent

# Reads one job per line (JSON) on stdin, forks a child to run it, prints the child's pid, then its
# wait status once it has ended. The child's stdout goes nowhere, so it cannot garble the protocol.
ZYGOTE = """
import json, os, sys, time, traceback
sys.path.insert(0, sys.argv[1])
from conftest import HashEmbedder
import recommender.embeddings
recommender.embeddings.load_embedder = lambda spec: HashEmbedder()
from recommender.build import build_index
from recommender.cli import main

def run(job):
    if job["kind"] == "build":
        from recommender.store import IndexStore
        begin = IndexStore.begin_build

        def begin_and_say_so(store):  # from here on, a write made elsewhere belongs to this build
            start = begin(store)
            open(job["began"], "w").close()
            return start

        IndexStore.begin_build = begin_and_say_so
        build_index(job["library"], job["index_dir"], HashEmbedder(), None)
        return
    if "pause_once_exists" in job:  # stop for good at the first directory sync after that file appears
        from recommender import batch_io
        sync = batch_io._fsync_dir

        def sync_then_pause(folder):
            sync(folder)
            if os.path.exists(job["pause_once_exists"]):
                open(job["paused"], "w").close()
                time.sleep(3600)

        batch_io._fsync_dir = sync_then_pause
    main(job["argv"], prog_name="recommender")

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        code = 0
        try:
            run(job)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class Zygote:
    def __init__(self, log: Path) -> None:
        # One thread per library: nothing in the zygote runs threads that a fork could catch mid-way.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.log = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(TESTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )

    def start(self, **job: Any) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def wait(self) -> int:
        """The exit code of the last job: negative for the signal that killed it."""
        assert self.process.stdout is not None
        return os.waitstatus_to_exitcode(int(self.process.stdout.readline()))

    def run(self, **job: Any) -> tuple[int, float]:
        """Run a job to its end: its exit code and how long it took."""
        started = time.monotonic()
        self.start(**job)
        return self.wait(), time.monotonic() - started

    def kill_after(self, seconds: float, **job: Any) -> int:
        """Start a job, SIGKILL it after `seconds` (unless it ended before), return its exit code."""
        pid = self.start(**job)
        time.sleep(seconds)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # already ended, and reaped by the zygote
            pass
        return self.wait()

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.log.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    forks = Zygote(tmp_path_factory.mktemp("zygote") / "zygote.log")
    yield forks
    forks.close()


# -- index builds, killed while another process writes -----------------------------------------------


@dataclass
class Writes:
    """Single-asset writes this process makes while builds run, each acknowledged when `upsert` returns."""

    index_dir: Path
    acknowledged: dict[str, Asset] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    allowed: threading.Event = field(default_factory=threading.Event)
    writing: threading.Lock = field(default_factory=threading.Lock)

    def keep_writing(self) -> None:
        recommender = Recommender(self.index_dir, HashEmbedder())
        n = 0
        while not self.stop.is_set():
            if not self.allowed.wait(0.05):
                continue
            with self.writing:
                if not self.allowed.is_set():
                    continue
                n += 1
                asset = make_asset(f"written-{n}", title=f"Written while building, number {n}")
                try:
                    recommender.upsert([asset])
                except Exception as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    return
                self.acknowledged[asset.id] = asset
        recommender.close()

    def pause(self) -> None:
        """Return once no write is in progress, and none starts until `resume`."""
        self.allowed.clear()
        with self.writing:
            pass

    def resume(self) -> None:
        self.allowed.set()


def libraries(folder: Path) -> tuple[Path, Path]:
    """Two libraries whose sizes tell which one a version was built from."""
    assets = load_library(SAMPLE_LIBRARY).assets
    return write_jsonl(folder / "a.jsonl", assets[:300]), write_jsonl(folder / "b.jsonl", assets[:301])


def assert_the_index_is_whole(index_dir: Path, sizes: set[int], written: dict[str, Asset]) -> None:
    """The current version passes its checksums and holds one library whole plus exactly `written`."""
    snapshot = open_snapshot(index_dir)  # verifies every file against the manifest
    try:
        assert snapshot.manifest.asset_count in sizes
        assert snapshot.asset_count == snapshot.manifest.asset_count + len(written)
        found = snapshot.assets(list(written))
        assert {i: found[i][0] for i in found} == written
    finally:
        snapshot.close()


def kill_builds(zygote: Zygote, tmp_path: Path, kills: int) -> None:
    """Builds killed at random points while this process writes.

    A build that publishes replaces what was written before it began with its library (README: a
    rebuild replaces earlier writes) and carries over every write acknowledged after it began; a
    killed one leaves the index as it was, writes included. Writes pause only while a build starts,
    so that each write is known to come before or after the moment it began.
    """
    index_dir = tmp_path / "index"
    small, large = libraries(tmp_path)
    began = tmp_path / "began"
    code, seconds = zygote.run(kind="build", library=[str(small)], index_dir=str(index_dir), began=str(began))
    assert code == 0
    writes = Writes(index_dir)
    writer = threading.Thread(target=writes.keep_writing)
    writer.start()
    rng = random.Random(7)
    outcomes = []
    expected: dict[str, Asset] = {}
    try:
        for i in range(kills):
            library = large if i % 2 else small
            before = dict(writes.acknowledged)
            version = IndexStore(index_dir).current()
            began.unlink(missing_ok=True)
            delay = rng.uniform(0, seconds * 1.2)
            started = time.monotonic()
            pid = zygote.start(kind="build", library=[str(library)], index_dir=str(index_dir), began=str(began))
            while not began.exists() and Path(f"/proc/{pid}").exists() and time.monotonic() - started < delay:
                time.sleep(0.001)
            writes.resume()
            time.sleep(max(0.0, delay - (time.monotonic() - started)))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            outcomes.append(zygote.wait())
            writes.pause()
            published = IndexStore(index_dir).current() != version
            since = {k: v for k, v in writes.acknowledged.items() if k not in before}
            expected = since if published else {**expected, **since}
            assert_the_index_is_whole(index_dir, {300, 301}, expected)
    finally:
        writes.stop.set()
        writes.resume()
        writer.join(timeout=60)
    assert writes.failures == []
    assert -signal.SIGKILL in outcomes, f"no build was killed before it ended: {outcomes}"
    assert set(outcomes) <= {0, -signal.SIGKILL}

    # The next build that is not killed publishes and clears what the killed ones left behind.
    assert zygote.run(kind="build", library=[str(large)], index_dir=str(index_dir), began=str(began))[0] == 0
    assert_the_index_is_whole(index_dir, {301}, {})
    assert list(index_dir.glob(".build-*")) == []
    assert len(list((index_dir / "versions").iterdir())) <= KEEP_VERSIONS


def test_builds_killed_at_random_points_leave_a_whole_index_with_every_acknowledged_write(zygote, tmp_path: Path):
    kill_builds(zygote, tmp_path, kills=8)


@pytest.mark.slow
def test_many_builds_killed_at_random_points_leave_a_whole_index_with_every_acknowledged_write(zygote, tmp_path):
    kill_builds(zygote, tmp_path, kills=60)


# -- batch tagging, killed and resumed until it finishes ---------------------------------------------


def kill_tagging(zygote: Zygote, tmp_path: Path, batch_assets: list[dict], tagger: Path, kills: int) -> None:
    source = write_rows(tmp_path / "assets.jsonl", batch_assets[:150])
    argv = ["tag", str(source), "--model", "fake", "--tagger", str(tagger), "--batch-size", "10", "--resume"]
    whole = tmp_path / "whole.jsonl"
    code, seconds = zygote.run(kind="cli", argv=[*argv[:2], str(whole), *argv[2:]])
    assert code == 0
    output = tmp_path / "out.jsonl"
    rng = random.Random(11)
    outcomes = []
    for _ in range(kills):
        if output.exists():
            break
        # A resumed run has less left to do: kill it within the first 60% of a whole run's time.
        run = [*argv[:2], str(output), *argv[2:]]
        outcomes.append(zygote.kill_after(rng.uniform(0, 0.6 * seconds), kind="cli", argv=run))
        # The output appears whole or not at all; what a killed run did is only in the partial file.
        assert not output.exists() or output.read_bytes() == whole.read_bytes()
    if not output.exists():
        assert zygote.run(kind="cli", argv=[*argv[:2], str(output), *argv[2:]])[0] == 0

    assert output.read_bytes() == whole.read_bytes()
    assert -signal.SIGKILL in outcomes, f"no run was killed before it ended: {outcomes}"
    assert set(outcomes) <= {0, -signal.SIGKILL}


def test_a_tagging_run_killed_at_random_points_and_resumed_writes_exactly_the_uninterrupted_output(
    zygote, tmp_path: Path, batch_assets: list[dict], batch_tagger: Path
):
    kill_tagging(zygote, tmp_path, batch_assets, batch_tagger, kills=6)


@pytest.mark.slow
def test_a_tagging_run_killed_many_times_and_resumed_writes_exactly_the_uninterrupted_output(
    zygote, tmp_path: Path, batch_assets: list[dict], batch_tagger: Path
):
    kill_tagging(zygote, tmp_path, batch_assets, batch_tagger, kills=40)


def test_a_tagging_run_killed_just_after_moving_its_output_into_place_resumes_as_finished(
    zygote, tmp_path: Path, batch_assets: list[dict], batch_tagger: Path
):
    source = write_rows(tmp_path / "assets.jsonl", batch_assets[:30])
    output, paused = tmp_path / "out.jsonl", tmp_path / "paused"
    argv = ["tag", str(source), str(output), "--model", "fake", "--tagger", str(batch_tagger), "--resume"]
    pid = zygote.start(kind="cli", argv=argv, pause_once_exists=str(output), paused=str(paused))
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert time.monotonic() < deadline and Path(f"/proc/{pid}").exists(), "the run did not reach its end"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    assert zygote.wait() == -signal.SIGKILL
    finished = output.read_bytes()

    assert zygote.run(kind="cli", argv=argv)[0] == 0
    assert output.read_bytes() == finished
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.jsonl"]


# -- bulk upserts through the real API -----------------------------------------------------------------


@dataclass
class Bulks:
    """Bulk upserts sent by client threads: acknowledged (200) or not (an error, or the connection cut)."""

    server: LiveServer
    acknowledged: list[list[str]] = field(default_factory=list)
    interrupted: list[list[str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0

    def keep_sending(self, client: int) -> None:
        rng = random.Random(client)
        n = 0
        while not self.stop.is_set():
            n += 1
            ids = [f"bulk-{client}-{n}-{i}" for i in range(rng.randint(1, 30))]
            assets = [make_asset(i, title=f"Bulk upsert {i}").model_dump(mode="json") for i in ids]
            try:
                status, body = self.server.call("POST", "/v1/assets:bulk", {"assets": assets}, key=SERVER_KEY)
            # The worker was killed mid-request: before the answer, or after its headers (a cut body).
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.interrupted.append(ids)
                continue
            with self.lock:
                self.sent += 1
                if status == 200:
                    self.acknowledged.append(ids)
                else:
                    self.refused.append(f"{status} {body}")


def listed(server: LiveServer) -> set[str]:
    """Every asset id the server lists, page by page."""
    ids: set[str] = set()
    query = "limit=200"
    while True:
        status, page = server.call("GET", f"/v1/assets?{query}")
        assert status == 200, page
        ids |= {item["id"] for item in page["items"]}
        if "next_cursor" not in page:
            return ids
        query = f"limit=200&cursor={page['next_cursor']}"


def kill_bulk_upserts(tmp_path: Path, kills: int) -> None:
    library = [make_asset(f"seed-{i}", title=f"Seed asset {i}") for i in range(12)]
    version = build_with_cli(write_jsonl(tmp_path / "library.jsonl", library), tmp_path / "index")
    rng = random.Random(3)
    with live_server(tmp_path / "index", tmp_path / "server.log", workers=2, threads=2) as server:
        bulks = Bulks(server)
        clients = [threading.Thread(target=bulks.keep_sending, args=(c,)) for c in range(2)]
        for client in clients:
            client.start()
        try:
            for _ in range(kills):
                time.sleep(rng.uniform(0.3, 2.0))
                before = server.worker_pids()
                for pid in before:
                    os.kill(pid, signal.SIGKILL)
                server.wait_until_ready()
                assert not set(server.worker_pids()) & set(before), "gunicorn did not replace the killed workers"
                assert server.call("GET", "/readyz")[1]["index_version"] == version
        finally:
            bulks.stop.set()
            for client in clients:
                client.join(timeout=300)
        # The whole server, master included, killed at once while idle, then started again.
        server.kill()
    with live_server(tmp_path / "index", tmp_path / "restarted.log", workers=2, threads=2) as restarted:
        assert bulks.refused == []
        assert bulks.interrupted, "no kill landed while a bulk upsert was in flight"
        stored = listed(restarted)
        for ids in bulks.acknowledged:
            assert set(ids) <= stored
        for ids in bulks.interrupted:  # one transaction: all or nothing
            assert stored & set(ids) in (set(), set(ids))
        ready = restarted.call("GET", "/readyz")[1]
        assert ready["index_version"] == version
        written = sum(len(ids) for ids in bulks.acknowledged)
        assert written <= ready["asset_count"] - 12 <= written + sum(len(ids) for ids in bulks.interrupted)
        status, answer = restarted.call("POST", "/v1/recommendations", {"segment": "enterprise", "k": 5})
        assert status == 200 and len(answer["items"]) == 5
    snapshot = open_snapshot(tmp_path / "index")  # every file passes its checksum, the database its check
    assert snapshot.asset_count == ready["asset_count"]
    snapshot.close()
    assert IndexStore(tmp_path / "index").current() == version


def test_bulk_upserts_with_workers_killed_mid_request_keep_every_acknowledged_write(tmp_path: Path):
    kill_bulk_upserts(tmp_path, kills=3)


@pytest.mark.slow
def test_bulk_upserts_with_workers_killed_many_times_keep_every_acknowledged_write(tmp_path: Path):
    kill_bulk_upserts(tmp_path, kills=12)
