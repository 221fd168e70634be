"""The API as users run it: `recommender build-index`, then gunicorn with several workers, then a rebuild.

One real server in a subprocess over an index the real CLI built (default model) from a tiny library:
it starts, answers, picks up a rebuilt index version without restart and without failing a request
in flight, shares writes between its workers, adds up its metrics, logs JSON lines and stops cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import make_asset, write_jsonl

from api import serve_command
from api.auth import hash_key

KEY = "server-test-key-0123456789abcdef"
CLI = str(Path(sys.executable).with_name("recommender"))


def call(base: str, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            status = response.status
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if kind.startswith("application/json") and raw else raw.decode()


def build(library: Path, index_dir: Path) -> str:
    subprocess.run([CLI, "build-index", str(library), "--index-dir", str(index_dir), "--no-tagger"], check=True)
    return (index_dir / "CURRENT").read_text().strip()


def worker_pids(master: int) -> list[str]:
    return Path(f"/proc/{master}/task/{master}/children").read_text().split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if call(base, "GET", "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the server was not ready within 180 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def library(tmp_path: Path) -> list:
    rows = [
        ("inv-aware", "whitepaper", ["awareness"], ["finance"], "The hidden cost of manual invoice approval"),
        ("inv-cons", "webinar", ["consideration"], ["it"], "Connecting invoice approval to your ERP"),
        ("inv-dec", "case_study", ["decision"], ["finance"], "A manufacturer halves invoice approval time"),
        ("inv-dec-sec", "datasheet", ["decision"], ["it"], "Security and single sign-on datasheet"),
        ("inv-ret", "guide", ["retention"], ["end_user"], "Admin guide to approval rules"),
    ]
    return [
        make_asset(i, asset_type=t, stages=s, roles=r, title=title, body=f"{title}. For finance teams.")
        for i, t, s, r, title in rows
    ]


def test_a_gunicorn_server_serves_hot_reloads_shares_writes_and_stops(tmp_path: Path, library: list):
    index_dir = tmp_path / "index"
    first_version = build(write_jsonl(tmp_path / "library.jsonl", library), index_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "RECOMMENDER_API_KEYS": f"{hash_key(KEY)}:write"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            serve_command(index_dir, "127.0.0.1", port, workers=2, threads=4),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        wait_until_ready(base, server, log)
        request = {"segment": "enterprise", "role": "finance", "query": "invoice approval", "k": 5}
        posts = 0

        status, data = call(base, "POST", "/v1/recommendations", request)
        posts += 1
        assert status == 200
        assert data["index_version"] == first_version
        assert {item["id"] for item in data["items"]} == {a.id for a in library}

        # Rebuild with one more asset while a client keeps asking.
        answers: list[tuple[int, str]] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set() and len(answers) < 2000:
                code, body = call(base, "POST", "/v1/recommendations", request)
                answers.append((code, body["index_version"] if code == 200 else str(body)))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        extra = make_asset("inv-new", asset_type="checklist", stages=["decision"], roles=["procurement"])
        second_version = build(write_jsonl(tmp_path / "library2.jsonl", [*library, extra]), index_dir)
        time.sleep(1)
        stop.set()
        asker.join(timeout=120)
        posts += len(answers)

        assert second_version != first_version
        assert answers
        assert {code for code, _ in answers} == {200}
        assert {version for _, version in answers} <= {first_version, second_version}
        after = [call(base, "POST", "/v1/recommendations", request) for _ in range(10)]
        posts += len(after)
        assert [(code, body["index_version"]) for code, body in after] == [(200, second_version)] * 10
        assert "inv-new" in {item["id"] for item in after[0][1]["items"]}

        # A write acknowledged by one worker is read by both.
        new = make_asset("inv-written", title="Procurement terms explained").model_dump(mode="json")
        assert call(base, "PUT", "/v1/assets/inv-written", new, key=KEY)[0] == 200
        assert [call(base, "GET", "/v1/assets/inv-written")[0] for _ in range(10)] == [200] * 10
        assert call(base, "PUT", "/v1/assets/inv-written", new)[0] == 401

        metrics = call(base, "GET", "/metrics")[1]
        counted = f'recommender_http_requests_total{{method="POST",route="/v1/recommendations",status="200"}} {posts}.0'
        assert counted in metrics.splitlines()
        serving = [line for line in metrics.splitlines() if line.startswith("recommender_index_version_info{")]
        assert {line.split('pid="')[1].split('"')[0] for line in serving if line.endswith(" 1.0")} == set(
            worker_pids(server.pid)
        )
        assert all(f'version="{second_version}"' in line for line in serving if line.endswith(" 1.0"))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise

    assert server.returncode == 0
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    access = [e for e in entries if e["logger"] == "api.access"]
    assert len(access) >= posts
    assert KEY not in log.read_text()
    assert not [line for line in lines if not line.startswith("{")], "every log line is JSON"
