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
