"""Shared fixtures: a tiny deterministic embedder, small libraries, and indexes built from them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

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


def write_rows(path: Path, rows: Sequence[dict]) -> Path:
    """Rows as the file type the suffix names: JSON Lines, CSV (lists joined with '|') or Parquet."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]), path)
        return path
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "|".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return path
