"""Readers and writers at once through a real gunicorn server with several workers, while it compacts.

Every asset written here carries its revision number in its title, body and topic. Readers check that
an asset never mixes two revisions (no torn read), that a bulk upsert is seen whole or not at all,
and that a reader never goes back to an older revision than one it has seen; writers check that the
next read, by whichever worker, sees their acknowledged write. `recommender compact` publishes new
index versions meanwhile. At the end every acknowledged write is there, and nothing else is.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, SERVER_KEY, LiveServer, build_with_cli, live_server, make_asset, write_jsonl

from content_library import Asset

WRITERS = 3
OWNED_PER_WRITER = 3
GROUP = [f"group-{i}" for i in range(5)]  # written together, always by one bulk upsert
GROUP_TYPE = "checklist"  # no other asset has this type, so a browse by type lists the group
TOGGLED = [f"toggled-{i}" for i in range(2)]  # deleted and written back in turn
PLAIN = [f"plain-{i:02d}" for i in range(20)]
_REVISION = re.compile(r"revision (\d+)\b")


def owned(writer: int) -> list[str]:
    return [f"writer{writer}-{j}" for j in range(OWNED_PER_WRITER)]


def revised_asset(asset_id: str, revision: int, **fields: Any) -> Asset:
    """The asset at `revision`: its title, body and topic all say which."""
    return make_asset(
        asset_id,
        title=f"{asset_id} revision {revision}",
        body=f"Invoice approval notes, revision {revision} of {asset_id}: what changed and why.",
        topic=f"revision {revision}",
        **fields,
    )


def revised(asset_id: str, revision: int, **fields: Any) -> dict[str, Any]:
    return revised_asset(asset_id, revision, **fields).model_dump(mode="json")


def revision_of(asset: dict[str, Any]) -> int:
    """The revision an asset is at; fails when its title, body and topic disagree (a torn read)."""
    found = {int(_REVISION.search(asset[name]).group(1)) for name in ("title", "body", "topic")}
    assert len(found) == 1, f"torn read of {asset['id']}: {asset}"
    return found.pop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("concurrency")
    assets = [make_asset(i, title=f"Plain asset {i}", body="Invoice approval basics.") for i in PLAIN]
    assets += [revised_asset(i, 0) for w in range(WRITERS) for i in owned(w)]
    assets += [revised_asset(i, 0, asset_type=GROUP_TYPE) for i in GROUP]
    assets += [revised_asset(i, 0, asset_type="video") for i in TOGGLED]
    build_with_cli(write_jsonl(folder / "library.jsonl", assets), folder / "index")
    with live_server(folder / "index", folder / "server.log", workers=3, threads=4) as running:
        yield running


@dataclass
class Run:
    """What the threads saw: acknowledged writes, and every problem, to be asserted on at the end."""

    server: LiveServer
    stop: threading.Event = field(default_factory=threading.Event)
    problems: list[str] = field(default_factory=list)
    acknowledged: dict[str, int | None] = field(default_factory=dict)  # id -> revision, None once deleted
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, path: str, body: Any = None, *, write: bool = False) -> tuple[int, Any]:
        with self.lock:
            self.requests += 1
        return self.server.call(method, path, body, key=SERVER_KEY if write else None)

    def expect(self, condition: bool, problem: str) -> bool:
        if not condition:
            with self.lock:
                self.problems.append(problem)
        return condition

    def loop(self, step: Callable[[int], None]) -> Callable[[], None]:
        def run() -> None:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    step(n)
                except Exception as exc:  # recorded, so that one failure does not hide the others
                    self.expect(False, f"{type(exc).__name__}: {exc}")

        return run


def writer(run: Run, ids: list[str]) -> Callable[[int], None]:
    def step(revision: int) -> None:
        asset_id = ids[revision % len(ids)]
        status, body = run.call("PUT", f"/v1/assets/{asset_id}", revised(asset_id, revision), write=True)
        if not run.expect(status == 200, f"PUT {asset_id} revision {revision}: {status} {body}"):
            return
        run.acknowledged[asset_id] = revision
        status, read = run.call("GET", f"/v1/assets/{asset_id}")
        run.expect(
            status == 200 and revision_of(read["asset"]) == revision,
            f"the read after the write of {asset_id} revision {revision} saw {status} {read}",
        )

    return step


def bulk_writer(run: Run) -> Callable[[int], None]:
    def step(revision: int) -> None:
        assets = [revised(i, revision, asset_type=GROUP_TYPE) for i in GROUP]
        status, body = run.call("POST", "/v1/assets:bulk", {"assets": assets}, write=True)
        if run.expect(status == 200, f"bulk revision {revision}: {status} {body}"):
            run.acknowledged.update(dict.fromkeys(GROUP, revision))

    return step


def toggler(run: Run) -> Callable[[int], None]:
    def step(n: int) -> None:
        asset_id = TOGGLED[n % len(TOGGLED)]
        if run.acknowledged.get(asset_id, 0) is None:
            status, body = run.call(
                "PUT", f"/v1/assets/{asset_id}", revised(asset_id, n, asset_type="video"), write=True
            )
            if run.expect(status == 200, f"PUT {asset_id} back: {status} {body}"):
                run.acknowledged[asset_id] = n
            return
        status, body = run.call("DELETE", f"/v1/assets/{asset_id}", write=True)
        if not run.expect(status == 204, f"DELETE {asset_id}: {status} {body}"):
            return
        run.acknowledged[asset_id] = None
        status, _ = run.call("GET", f"/v1/assets/{asset_id}")
        run.expect(status == 404, f"the read after deleting {asset_id} answered {status}")
        request = {"segment": "enterprise", "asset_types": ["video"], "k": 10}
        status, found = run.call("POST", "/v1/recommendations", request)
        run.expect(
            status == 200 and asset_id not in {item["id"] for item in found["items"]},
            f"{asset_id} was recommended after its deletion was acknowledged: {status} {found}",
        )

    return step


def reader(run: Run, seed: int) -> Callable[[int], None]:
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    every_owned = [i for w in range(WRITERS) for i in owned(w)]

    def step(n: int) -> None:
        kind = n % 3
        if kind == 0:
            asset_id = rng.choice(every_owned)
            status, body = run.call("GET", f"/v1/assets/{asset_id}")
            if run.expect(status == 200, f"GET {asset_id}: {status} {body}"):
                revision = revision_of(body["asset"])
                run.expect(revision >= seen.get(asset_id, 0), f"{asset_id} went back from {seen.get(asset_id)}")
                seen[asset_id] = max(revision, seen.get(asset_id, 0))
        elif kind == 1:
            status, body = run.call("GET", f"/v1/assets?asset_type={GROUP_TYPE}&limit=50")
            if run.expect(status == 200, f"browse the group: {status} {body}"):
                items = body["items"]
                revisions = {int(_REVISION.search(item["title"]).group(1)) for item in items}
                run.expect([item["id"] for item in items] == GROUP, f"the group is incomplete: {items}")
                run.expect(len(revisions) == 1, f"a bulk upsert was seen in part: {items}")
        else:
            # Without the toggled assets: one deleted between choosing and reading it would be left out.
            request = {"segment": "enterprise", "query": "invoice approval revision", "k": 10, "exclude": TOGGLED}
            status, body = run.call("POST", "/v1/recommendations", request)
            if run.expect(status == 200, f"recommend: {status} {body}"):
                ids = [item["id"] for item in body["items"]]
                scores = [item["score"] for item in body["items"]]
                run.expect(len(ids) == len(set(ids)) == 10, f"recommend returned {ids}")
                run.expect(scores == sorted(scores, reverse=True), f"scores out of order: {scores}")

    return step


def compactor(run: Run, index_dir: Path, every: float) -> Callable[[], None]:
    def compact() -> None:
        while not run.stop.wait(every):
            done = subprocess.run(
                [CLI, "compact", "--index-dir", str(index_dir)], capture_output=True, text=True, timeout=300
            )
            run.expect(done.returncode == 0, f"compact failed: {done.stderr}")

    return compact


def run_mixed_load(server: LiveServer, seconds: float, readers: int, compact_every: float) -> Run:
    run = Run(server)
    versions_before = server.call("GET", "/readyz")[1]["index_version"]
    threads = [threading.Thread(target=run.loop(writer(run, owned(w)))) for w in range(WRITERS)]
    threads += [threading.Thread(target=run.loop(bulk_writer(run))), threading.Thread(target=run.loop(toggler(run)))]
    threads += [threading.Thread(target=run.loop(reader(run, seed))) for seed in range(readers)]
    threads.append(threading.Thread(target=compactor(run, server.index_dir, compact_every)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    run.stop.set()
    for thread in threads:
        thread.join(timeout=600)
    assert server.call("GET", "/readyz")[1]["index_version"] != versions_before, "no compaction happened"
    return run


def assert_every_acknowledged_write_is_there(run: Run) -> None:
    server = run.server
    for asset_id, revision in sorted(run.acknowledged.items(), key=lambda kv: kv[0]):
        status, body = server.call("GET", f"/v1/assets/{asset_id}")
        if revision is None:
            assert status == 404, f"{asset_id} was deleted, yet answers {status}"
        else:
            assert (status, revision_of(body["asset"])) == (200, revision), f"{asset_id}: {status} {body}"
    expected = set(PLAIN) | {i for w in range(WRITERS) for i in owned(w)} | set(GROUP) | set(TOGGLED)
    expected -= {i for i, revision in run.acknowledged.items() if revision is None}
    listed = server.call("GET", "/v1/assets?limit=200")[1]["items"]
    assert sorted(item["id"] for item in listed) == sorted(expected)
    assert server.call("GET", "/readyz")[1]["asset_count"] == len(expected)


def test_readers_writers_and_compaction_at_once_see_no_error_and_no_torn_read(server: LiveServer):
    run = run_mixed_load(server, seconds=12, readers=4, compact_every=4)

    assert run.problems == []
    assert run.requests > 50
    assert_every_acknowledged_write_is_there(run)
    assert "Traceback" not in server.log_text()


@pytest.mark.slow
def test_a_minute_of_readers_writers_and_compaction_sees_no_error_and_no_torn_read(server: LiveServer):
    run = run_mixed_load(server, seconds=60, readers=8, compact_every=10)

    assert run.problems == []
    assert_every_acknowledged_write_is_there(run)
    assert "Traceback" not in server.log_text()
