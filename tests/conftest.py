"""Shared fixtures: a tiny deterministic embedder, small libraries, and indexes built from them."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from content_library import Asset
from recommender.build import build_index
from recommender.engine import Recommender

REPO = Path(__file__).resolve().parent.parent


class HashEmbedder:
    """A stand-in for tests that are not about the model: hashed bag of words, L2-normalised.

    Texts sharing words are similar, so ranking tests have a known right answer, and it costs
    microseconds instead of loading a transformer.
    """

    def __init__(self, dimension: int = 64, name: str = "test-hash-64") -> None:
        self._dimension = dimension
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[i, bucket % self._dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def make_asset(asset_id: str, **fields) -> Asset:
    """An asset with plausible defaults; pass any field to override it."""
    values = {
        "id": asset_id,
        "title": f"Title of {asset_id}",
        "body": f"Body of {asset_id} about invoice approval workflows.",
        "asset_type": "whitepaper",
        "language": "en",
        "url": f"https://example.com/{asset_id}",
        "published": dt.date(2025, 1, 1),
        "segments": ["enterprise"],
        "stages": ["awareness"],
        "roles": ["finance"],
    }
    values.update(fields)
    return Asset.model_validate(values)


def write_jsonl(path: Path, assets: Sequence[Asset | dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for asset in assets:
            data = asset.model_dump(mode="json") if isinstance(asset, Asset) else asset
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def small_library() -> list[Asset]:
    """Twelve labelled assets spanning segments, stages, roles, types and two languages."""
    rows = [
        (
            "ent-aware-1",
            "whitepaper",
            "en",
            ["enterprise"],
            ["awareness"],
            ["executive"],
            "hidden cost of manual invoices",
        ),
        (
            "ent-aware-2",
            "report",
            "en",
            ["enterprise"],
            ["awareness"],
            ["finance"],
            "analyst report on payables automation",
        ),
        (
            "ent-cons-1",
            "webinar",
            "en",
            ["enterprise"],
            ["consideration"],
            ["it"],
            "integrating payables with your ERP",
        ),
        ("ent-cons-2", "guide", "de", ["enterprise"], ["consideration"], ["finance"], "Rechnungsfreigabe im Konzern"),
        (
            "ent-dec-1",
            "case_study",
            "en",
            ["enterprise"],
            ["decision"],
            ["finance"],
            "global manufacturer cut invoice approval time",
        ),
        ("ent-dec-2", "datasheet", "en", ["enterprise"], ["decision"], ["it"], "security and SSO datasheet"),
        (
            "ent-dec-3",
            "checklist",
            "en",
            ["enterprise"],
            ["decision"],
            ["procurement"],
            "vendor due diligence checklist",
        ),
        ("ent-ret-1", "guide", "en", ["enterprise"], ["retention"], ["end_user"], "admin guide for approval rules"),
        ("smb-aware-1", "blog_post", "en", ["smb"], ["awareness"], ["owner"], "stop paying bills late"),
        ("smb-dec-1", "pricing", "en", ["smb"], ["decision"], ["owner"], "plans and prices per month"),
        ("smb-dec-2", "review", "en", ["smb"], ["decision"], ["owner"], "five star review from a bakery owner"),
        ("smb-cons-1", "video", "id", ["smb"], ["consideration"], ["owner"], "cara membayar tagihan lebih cepat"),
    ]
    return [
        make_asset(
            asset_id,
            title=title,
            body=f"{title}. A resource about paying suppliers and approving invoices.",
            asset_type=asset_type,
            language=language,
            segments=segments,
            stages=stages,
            roles=roles,
            topic="payables",
        )
        for asset_id, asset_type, language, segments, stages, roles, title in rows
    ]


@pytest.fixture
def library_file(tmp_path: Path, small_library: list[Asset]) -> Path:
    return write_jsonl(tmp_path / "library.jsonl", small_library)


@pytest.fixture
def index_dir(tmp_path: Path, library_file: Path, embedder: HashEmbedder) -> Path:
    folder = tmp_path / "index"
    build_index([library_file], folder, embedder, tagger=None)
    return folder


@pytest.fixture
def recommender(index_dir: Path, embedder: HashEmbedder) -> Recommender:
    return Recommender(index_dir, embedder, today=lambda: dt.date(2026, 1, 1))


@pytest.fixture
def small_tagger(small_library: list[Asset], embedder: HashEmbedder):
    """A tagger trained on the small library's curated labels and HashEmbedder vectors."""
    from recommender.tagging import Tagger, TaggerInput
    from recommender.training import curated_labels

    data = TaggerInput.of(small_library, embedder.encode([a.text for a in small_library]))
    return Tagger(text_features=2**10).fit(data, curated_labels(small_library), model=embedder.name)


# -- the HTTP API (tests/test_api_*.py) ------------------------------------------------------------------

API_WRITE_KEY = "test-write-key-0123456789abcdef"
API_READ_KEY = "test-read-key-0123456789abcdef"
API_ORIGIN = "https://www.example.com"


@pytest.fixture
def api_app(recommender: Recommender):
    """The API over the small library, with a write key, a read-only key and one allowed browser origin."""
    from api import create_app
    from api.auth import hash_key

    return create_app(
        {
            "RECOMMENDER": recommender,
            "API_KEYS": [f"{hash_key(API_WRITE_KEY)}:write,read", f"{hash_key(API_READ_KEY)}:read"],
            "CORS_ORIGINS": [API_ORIGIN],
        }
    )


@pytest.fixture
def api_client(api_app):
    return api_app.test_client()


# -- batch runs (tests/test_batch*.py, tests/test_spark*.py) ----------------------------------------------


@pytest.fixture(scope="session")
def batch_tagger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tagger trained on HashEmbedder vectors of a quarter of the sample library, saved as a folder."""
    from content_library import SAMPLE_LIBRARY, load_library
    from recommender.tagging import Tagger, TaggerInput
    from recommender.training import curated_labels

    assets = load_library(SAMPLE_LIBRARY).assets[::4]
    embedder = HashEmbedder()
    data = TaggerInput.of(assets, embedder.encode([a.text for a in assets]))
    tagger = Tagger(text_features=1024).fit(data, curated_labels(assets), model=embedder.name)
    return tagger.save(tmp_path_factory.mktemp("batch-tagger"))


@pytest.fixture(scope="session")
def batch_assets() -> list[dict]:
    """300 sample assets as input rows: every other one without curated segments and stages, every
    seventh without roles, every fifth without a language (the tagger and the detector fill them in)."""
    from content_library import SAMPLE_LIBRARY, load_library

    rows = []
    for i, asset in enumerate(load_library(SAMPLE_LIBRARY).assets[:300]):
        row = asset.model_dump(mode="json", exclude_none=True)
        if i % 2:
            row["segments"], row["stages"] = [], []
        if i % 7 == 0:
            del row["roles"]
        if i % 5 == 0:
            del row["language"]
        rows.append(row)
    return rows


@pytest.fixture(scope="session")
def batch_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the whole sample library built with HashEmbedder."""
    from content_library import SAMPLE_LIBRARY

    folder = tmp_path_factory.mktemp("batch-index") / "index"
    build_index([SAMPLE_LIBRARY], folder, HashEmbedder(), tagger=None)
    return folder


@pytest.fixture(scope="session")
def batch_contacts() -> list[dict]:
    """200 contacts: the development set's requests (stages, signals, queries, languages) and variations."""
    rows = []
    with open(REPO / "content_library" / "devset" / "requests.jsonl", encoding="utf-8") as fh:
        requests = [json.loads(line) for line in fh]
    for i, request in enumerate(requests[:100]):
        row = {"contact_id": f"c{i:03d}", **{k: v for k, v in request.items() if k not in ("qid", "k")}}
        rows.append(row)
        rows.append(
            {"contact_id": f"c{i:03d}-b", "segment": row["segment"], "role": row.get("role"), "exclude": [], "k": 3}
            | ({"signals": ["site_visit", "pricing_page_view"]} if i % 2 else {"stage": "retention"})
        )
    return rows


def write_rows(path: Path, rows: Sequence[dict], delimiter: str = ",") -> Path:
    """Rows as the file type the suffix names: JSON Lines, a JSON array, CSV (lists joined with '|'; .tsv
    with tabs, `delimiter` otherwise) or Parquet."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    if path.suffix == ".json":
        path.write_text(json.dumps(list(rows), ensure_ascii=False), encoding="utf-8")
        return path
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]), path)
        return path
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns, delimiter="\t" if path.suffix == ".tsv" else delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "|".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return path


# -- real gunicorn servers (test_concurrency, test_kill_loops, test_corruption, test_access) -------------

#: A real packaged model that loads in about two seconds, so that each server under test starts fast.
SERVER_MODEL = "use-multilingual-v3"
SERVER_KEY = "live-server-key-0123456789abcdef"
CLI = str(Path(sys.executable).with_name("recommender"))


def build_with_cli(library: Path, index_dir: Path, model: str = SERVER_MODEL) -> str:
    """`recommender build-index` as users run it; returns the version it published."""
    done = subprocess.run(
        [CLI, "build-index", str(library), "--index-dir", str(index_dir), "--no-tagger", "--model", model],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`recommender serve` (gunicorn, preloaded app, gthread workers) in a process group of its own.

    `call` answers (status, JSON or text); a connection cut by a killed worker raises OSError.
    """

    def __init__(self, index_dir: Path, log: Path, *, workers: int = 2, threads: int = 4, **env: str) -> None:
        self.index_dir, self.log, self.workers, self.threads = index_dir, log, workers, threads
        from api.auth import hash_key

        self.env = {**os.environ, "RECOMMENDER_API_KEYS": f"{hash_key(SERVER_KEY)}:write", **env}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        from api import serve_command

        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                serve_command(self.index_dir, "127.0.0.1", self.port, self.workers, self.threads),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
                start_new_session=True,
            )
        self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout: float = 240) -> None:
        """Until /readyz answers 200 and every worker has been forked."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if self.call("GET", "/readyz")[0] == 200 and len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the server was not ready within {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the master and every worker at once."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, timeout: float = 120
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raw, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return status, json.loads(raw) if kind.startswith("application/json") and raw else raw.decode()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def live_server(index_dir: Path, log: Path, **options: Any) -> Iterator[LiveServer]:
    server = LiveServer(index_dir, log, **options).start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()
