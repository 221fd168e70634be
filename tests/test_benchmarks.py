"""The benchmark suite runs end to end at a tiny size and writes its tables (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from benchmarks import library
from benchmarks.batch import from_markdown
from recommender import ann
from recommender.engine import Recommender
from recommender.store import IndexStore

TINY = 300
_NUMBER = r"[\d,.]+"


def run_suite(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", str(TINY), "--model", "stand-in"]
        + ["--results", str(tmp_path / "results"), "--work", str(tmp_path / "work"), *options],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_synthetic_library_is_a_real_index_of_clustered_vectors(tmp_path: Path) -> None:
    built = library.ensure(TINY, work=tmp_path, log=False)
    store = IndexStore(built.index_dir)
    manifest = store.manifest()
    vectors = ann.stored_vectors(ann.read(store.version_dir(manifest.version) / "vectors.faiss"))
    similarity = library.queries(TINY, 20) @ vectors.T

    assert (manifest.asset_count, manifest.dimension) == (TINY, library.DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Topics: each query's best match is far closer than a typical asset (uniform noise would give ~0).
    assert np.median(similarity.max(axis=1)) > 0.3 > 0.05 > abs(float(np.median(similarity)))


def test_a_synthetic_library_is_built_once_then_reused(tmp_path: Path) -> None:
    first = library.ensure(TINY, work=tmp_path, log=False)
    again = library.ensure(TINY, work=tmp_path, log=False)

    assert first.seconds > 0.0
    assert again.seconds == 0.0
    assert again.index_dir == first.index_dir


def test_the_stand_in_embedder_serves_a_synthetic_library(tmp_path: Path) -> None:
    built = library.ensure(TINY, work=tmp_path, log=False)
    recommender = Recommender(built.index_dir, library.StandInEmbedder(TINY))

    assert len(recommender.search("invoice approval", k=5)) == 5


def test_every_timed_request_with_a_query_runs_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import latency

    class Counting(library.StandInEmbedder):
        texts: list[str] = []

        def encode_query(self, text: str) -> np.ndarray:
            self.texts.append(text)
            return super().encode_query(text)

    ranked = []
    rank = Recommender._recommend
    monkeypatch.setattr(Recommender, "_recommend", lambda self, *a, **k: ranked.append(1) or rank(self, *a, **k))
    monkeypatch.setattr(library, "WORK", tmp_path)
    results = latency.measure_size(TINY, Counting(TINY), repeats=1, queries=4, log=lambda _: None)

    # Each kind ranks its own requests, none answered from the other's caches: per kind the 156 buyers
    # once, twice more with exclusions (one pass untimed), 4 requests with a query and the same 4 again,
    # 4 beside a read asset, and 2 sequences of one ranking per step.
    assert len(ranked) == 2 * (156 + 2 * 156 + 4 + 4 + 4 + 2 * latency.SEQUENCE_STEPS)
    # Per index kind: the baseline encodes 4 texts, then the 4 requests carrying them encode them again.
    assert [len(r.with_query.wall) for r in results] == [4, 4]
    assert [len(r.engine.wall) for r in results] == [4, 4]  # the same requests again, from the query cache
    assert [len(r.sequence.wall) for r in results] == [2, 2]  # their texts, from the query cache too
    assert [len(r.reading.wall) for r in results] == [4, 4]  # no text: the read asset's vector is the query
    assert len(Counting.texts) == 16
    assert len(set(Counting.texts)) == 8


def test_latency_and_build_benchmarks_write_their_tables_and_charts(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "--only", "build", "latency", "--quick")
    results = tmp_path / "results"
    latency = (results / "latency.md").read_text(encoding="utf-8")
    build = (results / "index_build.md").read_text(encoding="utf-8")

    for kind in ("exact", "approximate"):
        assert re.search(
            rf"^\| {TINY} \| {kind} \| {_NUMBER} / {_NUMBER} \| {_NUMBER} / {_NUMBER} \| {_NUMBER} \|", latency, re.M
        )
    assert re.search(r"^\| 300 \| approximate \|.*\| [01]\.\d{3} \|$", latency, re.M)  # recall@10
    assert re.search(rf"^\| raw encode, same texts, batch 64 \| {_NUMBER} \| .* \| 1\.00 \|$", build, re.M)
    assert re.search(rf"^\| build-index end to end .* \| {_NUMBER} \|$", build, re.M)
    assert re.search(rf"^\| rebuild, 7 of 64 titles changed .* \| {_NUMBER} \|$", build, re.M)
    assert (results / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert (results / "index_build.png").read_bytes().startswith(b"\x89PNG")
    summary = (results / "README.md").read_text(encoding="utf-8")
    assert "## Recommendation latency in process" in summary
    assert "## Index build against the model's own encode rate" in summary
    assert "latency:" in done.stdout


def test_the_campaign_benchmark_writes_its_table_with_a_ratio_per_mix(tmp_path: Path) -> None:
    run_suite(tmp_path, "--only", "campaign", "--quick")
    campaign = (tmp_path / "results" / "campaign.md").read_text(encoding="utf-8")

    for kind in ("exact", "approximate"):
        # contacts, then for lists, sequences and lists with a query each: together / alone, ratio
        pair = rf"{_NUMBER} / {_NUMBER} \| {_NUMBER}"
        assert re.search(rf"^\| {TINY} \| {kind} \| 64 \| {pair} \| {pair} \| {pair} \|$", campaign, re.M)
    assert "## Campaign batches" in (tmp_path / "results" / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_http_and_memory_benchmarks_drive_a_real_gunicorn_server(tmp_path: Path) -> None:
    run_suite(tmp_path, "--only", "http", "memory", "--seconds", "3")
    results = tmp_path / "results"
    http = (results / "http.md").read_text(encoding="utf-8")
    memory = (results / "memory.md").read_text(encoding="utf-8")

    for route in ("empty JSON route", "no query", "with query"):
        # requests/s, p50, p99, requests, failures (none), ratio
        assert re.search(
            rf"^\| {TINY} \| {route} \| {_NUMBER} \| \d+ \| \d+ \| [\d,]+ \| 0 \| {_NUMBER} \|$", http, re.M
        )
    for workers in (1, 4):
        assert re.search(rf"^\| {TINY} \| {workers} \| [\d,]+ \| [\d,]+ \|", memory, re.M)
    assert (results / "http.png").exists() and (results / "memory.png").exists()


def test_the_batch_report_becomes_a_table_of_the_summary() -> None:
    report = (
        "# Batch tagging throughput\n\nMeasured today.\n\n"
        "| measure | throughput | ratio to raw encode |\n|---|---:|---:|\n"
        "| raw encode, one call | 8.29 texts/s | 1.00 |\n| tag, local engine | 7.22 assets/s | 0.87 |\n\n"
        "| input | peak RSS | time |\n|---:|---:|---:|\n| 20,000 assets | 300 MiB | 9 s |\n\nRaw encode is one call.\n"
    )

    table = from_markdown("batch", "Batch", report)

    assert table.columns == ["measure", "throughput", "ratio to raw encode"]
    assert table.rows == [
        ["raw encode, one call", "8.29 texts/s", "1.00"],
        ["tag, local engine", "7.22 assets/s", "0.87"],
    ]
    assert table.notes[0].startswith("| input | peak RSS | time |")
    assert table.notes[1] == "Raw encode is one call."
