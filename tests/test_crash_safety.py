"""A killed build, damaged files and a mismatched model never get a wrong index served."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HashEmbedder, make_asset, write_jsonl

from content_library import Asset
from recommender.build import build_index
from recommender.engine import Recommender
from recommender.errors import IndexCorrupt, ModelError
from recommender.store import IndexStore

TESTS = Path(__file__).resolve().parent

# Runs a build in a real process and stops it at one point: the parent kills it there with SIGKILL.
BUILD_UNTIL_PAUSED = """
import sys, time
sys.path.insert(0, sys.argv[3])
from conftest import HashEmbedder
from recommender import store
from recommender.build import build_index

def pause(*args, **kwargs):
    print("paused", flush=True)
    time.sleep(600)

point = sys.argv[4]
if point == "embedding":
    HashEmbedder.encode = pause
elif point == "writing-files":  # vectors, ids and features are in the temporary folder, the database not yet
    store._write_database = pause
elif point == "switching":  # the new version is complete in versions/, the lock is held, CURRENT not switched
    store.IndexStore._carry_over = pause
build_index([sys.argv[1]], sys.argv[2], HashEmbedder(), None)
"""


def version_files(index_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of the current version (SQLite's -wal and -shm side files aside)."""
    folder = IndexStore(index_dir).version_dir(IndexStore(index_dir).require_current())
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


def answers(recommender: Recommender) -> list[tuple[str, float]]:
    return [(asset_id, round(score, 6)) for asset_id, score, _ in recommender.search("invoice approval", 12)]


def kill_build_at(point: str, library: Path, index_dir: Path) -> int:
    """Start a build in a subprocess, SIGKILL it once it reaches `point`, return its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", BUILD_UNTIL_PAUSED, str(library), str(index_dir), str(TESTS), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line == "paused\n", process.stderr.read() if process.poll() is not None else line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    return process.pid


@pytest.fixture
def bigger_library(tmp_path: Path, small_library: list[Asset]) -> Path:
    extra = make_asset("board-pack", title="Quarterly board pack template", body="Slides for the quarterly board.")
    return write_jsonl(tmp_path / "bigger.jsonl", [*small_library, extra])


# -- a build killed midway ---------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["embedding", "writing-files", "switching"])
def test_a_build_killed_midway_leaves_the_previous_index_served_unchanged(
    point: str, index_dir: Path, bigger_library: Path, embedder: HashEmbedder
):
    before_version = IndexStore(index_dir).current()
    before_files = version_files(index_dir)
    before_answers = answers(Recommender(index_dir, embedder))

    kill_build_at(point, bigger_library, index_dir)

    assert IndexStore(index_dir).current() == before_version
    assert version_files(index_dir) == before_files
    recommender = Recommender(index_dir, embedder)
    assert answers(recommender) == before_answers
    assert recommender.info()["asset_count"] == 12
    # The lock a killed build held is released: writes go on.
    recommender.upsert([make_asset("written-after-the-kill")])
    assert recommender.info()["asset_count"] == 13


def test_the_next_build_after_a_killed_one_removes_its_temporary_folder_and_publishes(
    index_dir: Path, bigger_library: Path, embedder: HashEmbedder
):
    pid = kill_build_at("writing-files", bigger_library, index_dir)
    [stale] = index_dir.glob(".build-*")
    assert stale.name.startswith(f".build-{pid}-")
    assert (stale / "vectors.faiss").is_file()

    manifest = build_index([bigger_library], index_dir, embedder, None).manifest

    assert list(index_dir.glob(".build-*")) == []
    assert IndexStore(index_dir).current() == manifest.version
    assert Recommender(index_dir, embedder).info()["asset_count"] == 13


def test_the_temporary_folder_of_a_build_still_running_is_left_alone(
    index_dir: Path, library_file: Path, embedder: HashEmbedder
):
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        in_progress = index_dir / f".build-{running.pid}-20260101T000000.000000000Z-abcdef"
        in_progress.mkdir()

        build_index([library_file], index_dir, embedder, None)

        assert in_progress.is_dir()
    finally:
        running.kill()
        running.wait(timeout=60)


# -- damaged files -----------------------------------------------------------------------------------

CHECKED_FILES = [
    "vectors.faiss",
    "ids.npy",
    "neighbours.npy",
    "neighbour_means.npy",
    "language_means.npy",
    "type_means.npy",
    "url_index.npy",
    "features/segments.npy",
    "features/stages.npy",
    "features/roles.npy",
    "features/asset_type.npy",
    "features/language.npy",
    "features/published.npy",
]


def current_folder(index_dir: Path) -> Path:
    store = IndexStore(index_dir)
    return store.version_dir(store.require_current())


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", CHECKED_FILES)
@pytest.mark.parametrize("damage", [truncate, empty, flip_middle_byte])
def test_a_damaged_index_file_is_refused_at_load_naming_the_file(
    name: str, damage, index_dir: Path, embedder: HashEmbedder
):
    path = current_folder(index_dir) / name
    damage(path)

    with pytest.raises(IndexCorrupt, match=f"^{path} .*rebuild the index$"):
        Recommender(index_dir, embedder)


@pytest.mark.parametrize("name", CHECKED_FILES)
@pytest.mark.parametrize("damage", [truncate, empty])
def test_a_shortened_index_file_is_refused_even_without_checksum_verification(
    name: str, damage, index_dir: Path, embedder: HashEmbedder
):
    path = current_folder(index_dir) / name
    damage(path)

    with pytest.raises(IndexCorrupt, match=f"^{path} "):
        Recommender(index_dir, embedder, verify=False)


def overwrite_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"not SQLite at all" + data[17:])


def wipe_second_page(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:4096] + b"\0" * 100 + data[4196:])


@pytest.mark.parametrize("damage", [truncate, empty, overwrite_header, wipe_second_page])
def test_a_damaged_asset_database_is_refused_at_load_naming_it(damage, index_dir: Path, embedder: HashEmbedder):
    path = current_folder(index_dir) / "assets.sqlite"
    damage(path)

    with pytest.raises(IndexCorrupt, match=f"^{path} is not a readable SQLite database .*; rebuild the index$"):
        Recommender(index_dir, embedder)


@pytest.mark.parametrize("damage", [truncate, empty, overwrite_header])
def test_a_damaged_asset_database_is_refused_even_without_verification(damage, index_dir: Path, embedder: HashEmbedder):
    path = current_folder(index_dir) / "assets.sqlite"
    damage(path)

    with pytest.raises(IndexCorrupt, match=f"^{path} "):
        Recommender(index_dir, embedder, verify=False)


def edit_manifest(index_dir: Path, **changes) -> Path:
    path = current_folder(index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncate, "is not valid JSON"),
        (empty, "is not valid JSON"),
        (flip_middle_byte, "is not valid JSON"),
    ],
)
def test_a_damaged_manifest_is_refused_naming_it(damage, problem: str, index_dir: Path, embedder: HashEmbedder):
    path = current_folder(index_dir) / "manifest.json"
    damage(path)

    with pytest.raises(IndexCorrupt, match=f"^{path} {problem}"):
        Recommender(index_dir, embedder)


def test_a_manifest_of_another_format_version_is_refused_naming_both_versions(index_dir: Path, embedder):
    path = edit_manifest(index_dir, format_version=2)
    with pytest.raises(IndexCorrupt, match=f"^{path} has format version 2; this release reads 1: rebuild the index$"):
        Recommender(index_dir, embedder)


def test_a_manifest_with_unknown_fields_is_refused_naming_it(index_dir: Path, embedder: HashEmbedder):
    path = edit_manifest(index_dir, shards=4)
    with pytest.raises(IndexCorrupt, match=f"^{path} does not describe an index"):
        Recommender(index_dir, embedder)


def test_a_manifest_whose_counts_disagree_with_the_vectors_is_refused(index_dir: Path, embedder: HashEmbedder):
    edit_manifest(index_dir, asset_count=13)
    vectors = current_folder(index_dir) / "vectors.faiss"
    with pytest.raises(IndexCorrupt, match=f"^{vectors} holds 12 vectors of 64 dimensions, the manifest says 13 of 64"):
        Recommender(index_dir, embedder)


def test_a_manifest_checksum_that_does_not_match_its_file_is_refused(index_dir: Path, embedder: HashEmbedder):
    path = current_folder(index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"]["ids.npy"]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(IndexCorrupt, match=f"^{path.parent / 'ids.npy'} does not match its checksum in the manifest"):
        Recommender(index_dir, embedder)


@pytest.mark.parametrize("name", ["vectors.faiss", "assets.sqlite", "manifest.json"])
def test_a_damaged_index_can_be_rebuilt_in_place(
    name: str, index_dir: Path, bigger_library: Path, embedder: HashEmbedder
):
    overwrite_header(current_folder(index_dir) / name)

    manifest = build_index([bigger_library], index_dir, embedder, None).manifest

    recommender = Recommender(index_dir, embedder)
    assert recommender.version == manifest.version
    assert recommender.info()["asset_count"] == 13


def test_a_damaged_new_version_is_skipped_and_the_loaded_one_keeps_serving(
    index_dir: Path, bigger_library: Path, embedder: HashEmbedder, caplog: pytest.LogCaptureFixture
):
    recommender = Recommender(index_dir, embedder)
    served = recommender.version
    before = answers(recommender)
    damaged = build_index([bigger_library], index_dir, embedder, None).manifest.version
    truncate(current_folder(index_dir) / "vectors.faiss")

    with caplog.at_level(logging.ERROR, logger="recommender.engine"):
        recommender.refresh()

    assert recommender.version == served
    assert answers(recommender) == before
    assert f"index version {damaged} refused, still serving {served}" in caplog.text

    repaired = build_index([bigger_library], index_dir, embedder, None).manifest.version
    recommender.refresh()
    assert recommender.version == repaired
    assert recommender.info()["asset_count"] == 13


# -- another model -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loaded",
    [HashEmbedder(64, name="another-model"), HashEmbedder(32, name="test-hash-64")],
    ids=["other-name", "other-dimension"],
)
def test_an_index_loaded_with_another_model_is_refused_naming_both(index_dir: Path, loaded: HashEmbedder):
    with pytest.raises(
        ModelError,
        match=(
            r"^index version \S+ was built with model 'test-hash-64' \(64 dimensions\) "
            rf"but '{loaded.name}' \({loaded.dimension} dimensions\) is loaded; load the index with that model "
            r"or rebuild it$"
        ),
    ):
        Recommender(index_dir, loaded)


def test_a_rebuilt_version_of_another_model_is_skipped_by_a_running_recommender(
    index_dir: Path, library_file: Path, embedder: HashEmbedder
):
    recommender = Recommender(index_dir, embedder)
    served = recommender.version
    build_index([library_file], index_dir, HashEmbedder(64, name="another-model"), None)

    recommender.refresh()

    assert recommender.version == served
    assert recommender.search("security and SSO datasheet", 1)[0][0] == "ent-dec-2"


def test_loading_an_index_whose_model_is_not_installed_lists_the_models_that_are(index_dir: Path):
    with pytest.raises(ModelError, match="model 'test-hash-64' is neither a packaged model"):
        Recommender.load(index_dir)
