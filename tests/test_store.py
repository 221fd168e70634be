"""The index directory: build, load, manifest, single-asset writes, durability, rebuilds, compaction."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbedder, make_asset, write_jsonl

from content_library import Asset, Stage
from recommender import ann
from recommender.build import build_index, compact, library_checksum
from recommender.engine import Recommender
from recommender.errors import AssetNotFound, IndexNotFound, VersionChanged
from recommender.features import FeatureTable
from recommender.snapshot import Snapshot, open_snapshot
from recommender.store import FORMAT_VERSION, KEEP_VERSIONS, IndexStore

TESTS = Path(__file__).resolve().parent
FEATURE_FILES = [f"features/{f.name}.npy" for f in dataclasses.fields(FeatureTable)]


def living(snapshot: Snapshot) -> dict[str, np.ndarray]:
    """Every current asset id of a snapshot with its vector."""
    rows = snapshot.living_rows()
    return dict(zip(snapshot.ids_of(rows), snapshot.vectors_of(rows), strict=True))


def search_ids(recommender: Recommender, text: str, k: int = 12) -> list[str]:
    return [asset_id for asset_id, _, _ in recommender.search(text, k)]


def board_pack() -> Asset:
    return make_asset("board-pack", title="Quarterly board pack template", body="Slides for the quarterly board.")


class EncodeHook:
    """An embedder that runs `action` once, the first time a build asks it to encode the library.

    The build is then between reading the served version's write log and publishing the new one,
    so `action` plays another process writing while a long build runs.
    """

    def __init__(self, inner: HashEmbedder, action: Callable[[], None]) -> None:
        self.inner = inner
        self.action: Callable[[], None] | None = action

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if self.action is not None:
            action, self.action = self.action, None
            action()
        return self.inner.encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self.inner.encode_query(text)


# -- build and load ----------------------------------------------------------------------------------


def test_a_build_publishes_one_complete_version_named_by_current(index_dir: Path):
    store = IndexStore(index_dir)
    version = store.current()
    folder = store.version_dir(version)

    assert (index_dir / "CURRENT").read_text(encoding="utf-8") == f"{version}\n"
    assert [p.name for p in (index_dir / "versions").iterdir()] == [version]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        [
            "assets.sqlite",
            "ids.npy",
            "language_means.npy",
            "manifest.json",
            "neighbour_means.npy",
            "neighbours.npy",
            "type_means.npy",
            "url_index.npy",
            "vectors.faiss",
            *FEATURE_FILES,
        ]
    )
    assert list(index_dir.glob(".build-*")) == []


def test_the_manifest_records_format_model_counts_and_a_checksum_of_every_file(
    index_dir: Path, small_library: list[Asset]
):
    store = IndexStore(index_dir)
    manifest = store.manifest()
    folder = store.version_dir(manifest.version)

    assert manifest.version == store.current()
    assert manifest.format_version == FORMAT_VERSION == 1
    assert (manifest.model, manifest.dimension, manifest.asset_count) == ("test-hash-64", 64, 12)
    assert manifest.index_kind == "flat"
    assert manifest.library_checksum == library_checksum(small_library)
    assert manifest.tagger_version is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest.built_at)
    assert sorted(manifest.files) == sorted(
        [
            "ids.npy",
            "language_means.npy",
            "neighbour_means.npy",
            "neighbours.npy",
            "type_means.npy",
            "url_index.npy",
            "vectors.faiss",
            *FEATURE_FILES,
        ]
    )
    for name, recorded in manifest.files.items():
        data = (folder / name).read_bytes()
        assert recorded == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8")) == dataclasses.asdict(manifest)


def test_the_library_checksum_ignores_asset_order_and_sees_any_edit(small_library: list[Asset]):
    edited = [*small_library[:-1], small_library[-1].model_copy(update={"title": "Edited title"})]
    assert library_checksum(small_library[::-1]) == library_checksum(small_library)
    assert library_checksum(edited) != library_checksum(small_library)


def test_a_loaded_index_holds_every_asset_with_its_vector_labels_and_features(
    index_dir: Path, small_library: list[Asset], embedder: HashEmbedder
):
    snapshot = open_snapshot(index_dir)
    try:
        rows = snapshot.living_rows()
        ids = snapshot.ids_of(rows)
        stored = snapshot.assets(ids)

        assert ids == [asset.id for asset in small_library]
        assert snapshot.asset_count == snapshot.base_count == 12
        np.testing.assert_array_equal(snapshot.vectors_of(rows), embedder.encode([a.text for a in small_library]))
        assert [stored[i][0] for i in ids] == small_library
        for asset in small_library:
            labels = stored[asset.id][1]
            assert labels.stages.labels == tuple(stage.value for stage in asset.stages)
            assert labels.stages.source == "curated"
        expected = FeatureTable.from_assets(small_library, [stored[i][1] for i in ids])
        loaded = snapshot.features_of(rows)
        for field in dataclasses.fields(FeatureTable):
            np.testing.assert_array_equal(getattr(loaded, field.name), getattr(expected, field.name))
    finally:
        snapshot.close()


def test_search_ranks_the_asset_with_the_query_words_first(recommender: Recommender):
    hits = recommender.search("security and SSO datasheet", 3)
    assert [asset_id for asset_id, _, _ in hits][0] == "ent-dec-2"
    assert hits[0][1] > hits[1][1] >= hits[2][1]


def test_loading_a_folder_without_an_index_names_the_command_that_builds_one(tmp_path: Path, embedder):
    with pytest.raises(IndexNotFound, match=r"^no index in .*empty: build one with `recommender build-index"):
        Recommender(tmp_path / "empty", embedder)


def test_writing_to_a_folder_without_an_index_raises_index_not_found(tmp_path: Path):
    with pytest.raises(IndexNotFound):
        IndexStore(tmp_path / "empty").apply(deletes=["a"])


# -- single-asset writes -----------------------------------------------------------------------------


def test_an_upserted_asset_is_searchable_stored_and_counted(recommender: Recommender, embedder: HashEmbedder):
    asset = board_pack()

    seq = recommender.upsert([asset])

    assert seq == 1
    assert recommender.get("board-pack")[0] == asset
    assert search_ids(recommender, "quarterly board pack template", 1) == ["board-pack"]
    np.testing.assert_array_equal(living(recommender.snapshot)["board-pack"], embedder.encode([asset.text])[0])
    info = recommender.info()
    assert (info["asset_count"], info["pending_writes"]) == (13, 1)


def test_upserting_an_existing_id_replaces_its_vector_labels_and_features(
    recommender: Recommender, embedder: HashEmbedder
):
    new = make_asset("ent-dec-2", title="Kubernetes runbook", body="Helm charts.", stages=["retention"], roles=["it"])

    recommender.upsert([new])

    snapshot = recommender.snapshot
    rows = snapshot.living_rows()
    ids = snapshot.ids_of(rows)
    row = rows[ids.index("ent-dec-2")]
    assert ids.count("ent-dec-2") == 1
    assert snapshot.asset_count == 12
    np.testing.assert_array_equal(snapshot.vectors_of(np.array([row]))[0], embedder.encode([new.text])[0])
    np.testing.assert_array_equal(snapshot.features_of(np.array([row])).stages, [[0.0, 0.0, 0.0, 1.0]])
    assert recommender.get("ent-dec-2")[1].stages.labels == ("retention",)
    assert search_ids(recommender, "Kubernetes runbook", 1) == ["ent-dec-2"]


def test_a_deleted_asset_is_gone_from_search_get_and_counts(recommender: Recommender):
    recommender.delete(["ent-dec-2"])

    assert recommender.get("ent-dec-2") is None
    assert "ent-dec-2" not in search_ids(recommender, "security and SSO datasheet")
    info = recommender.info()
    assert info["asset_count"] == 11
    assert "datasheet" not in info["asset_types"]


def test_deleting_an_unknown_id_raises_and_deletes_nothing_of_the_batch(recommender: Recommender):
    with pytest.raises(AssetNotFound, match="^no asset with id 'missing' in the index$"):
        recommender.delete(["ent-dec-1", "missing"])

    assert recommender.get("ent-dec-1") is not None
    assert recommender.info()["asset_count"] == 12
    assert recommender.snapshot.state.seq == 0


def test_an_asset_deleted_then_upserted_again_is_served_once(recommender: Recommender, small_library: list[Asset]):
    recommender.delete(["ent-dec-2"])
    recommender.upsert([small_library[5]])

    ids = list(living(recommender.snapshot))
    assert ids.count("ent-dec-2") == 1
    assert recommender.info()["asset_count"] == 12
    assert search_ids(recommender, "security and SSO datasheet", 1) == ["ent-dec-2"]


def test_writes_survive_into_a_fresh_snapshot_of_the_directory(recommender: Recommender, index_dir: Path):
    recommender.upsert([board_pack()])
    recommender.delete(["ent-dec-1"])

    fresh = open_snapshot(index_dir)
    try:
        before, after = living(recommender.snapshot), living(fresh)
        assert sorted(after) == sorted(before)
        for asset_id, vector in before.items():
            np.testing.assert_array_equal(after[asset_id], vector)
    finally:
        fresh.close()


def neighbour_ids(snapshot: Snapshot, asset_id: str) -> list[str]:
    rows = snapshot.living_rows()
    row = rows[snapshot.ids_of(rows).index(asset_id)]
    listed = snapshot.neighbours_of(np.array([row]))[0]
    return snapshot.ids_of(listed[listed >= 0])


def test_an_asset_written_after_the_build_lists_a_twin_written_before_it_as_neighbour(recommender: Recommender):
    recommender.upsert([board_pack()])
    recommender.upsert([board_pack().model_copy(update={"id": "board-pack-copy"})])

    assert neighbour_ids(recommender.snapshot, "board-pack-copy")[0] == "board-pack"


def test_a_refresh_searches_neighbours_only_for_the_assets_just_written(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
):
    recommender.upsert([make_asset(f"note-{i}", title=f"Release note {i}") for i in range(20)])
    snapshot = recommender.snapshot
    searched = []
    original = snapshot.search
    monkeypatch.setattr(snapshot, "search", lambda *args: searched.append(args) or original(*args))

    recommender.upsert([board_pack()])

    assert len(searched) == 1


def test_rewriting_one_asset_many_times_keeps_the_delta_bounded_and_neighbours_right(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("recommender.snapshot._DELTA_SLACK", 8)
    recommender.upsert([board_pack()])
    recommender.upsert([board_pack().model_copy(update={"id": "board-pack-copy"})])

    for i in range(40):
        recommender.upsert([make_asset("changelog", title=f"Changelog, edition {i}")])

    snapshot = recommender.snapshot
    assert len(snapshot.state.ids) <= 2 * 8
    assert sorted(snapshot.state.delta_rows) == ["board-pack", "board-pack-copy", "changelog"]
    assert neighbour_ids(snapshot, "board-pack-copy")[0] == "board-pack"
    assert search_ids(recommender, "Changelog, edition 39", 1) == ["changelog"]
    assert recommender.get("changelog")[0].title == "Changelog, edition 39"
    assert recommender.info()["asset_count"] == 15


def test_a_write_meant_for_a_replaced_version_is_refused_and_writes_nothing(
    recommender: Recommender, index_dir: Path, tmp_path: Path, small_library: list[Asset], embedder: HashEmbedder
):
    old = recommender.version
    new = build_index([write_jsonl(tmp_path / "again.jsonl", small_library)], index_dir, embedder, None).manifest
    vector = embedder.encode([board_pack().text])[0]
    labels = recommender.tag([board_pack()])[0]

    with pytest.raises(VersionChanged, match=f"^index version {new.version} replaced {old}$"):
        recommender.store.apply(upserts=[(board_pack(), labels, vector)], version=old)

    assert Recommender(index_dir, embedder).get("board-pack") is None


def test_a_write_made_just_after_a_rebuild_lands_in_the_new_version(
    recommender: Recommender, index_dir: Path, tmp_path: Path, small_library: list[Asset], embedder: HashEmbedder
):
    new = build_index([write_jsonl(tmp_path / "again.jsonl", small_library)], index_dir, embedder, None).manifest

    recommender.upsert([board_pack()])

    assert recommender.version == new.version
    assert Recommender(index_dir, embedder).get("board-pack") is not None


def test_only_an_index_opened_without_verification_and_not_verified_before_a_fork_asks_to_warm_the_page_cache(
    index_dir: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
):
    warmed = []
    monkeypatch.setattr("recommender.snapshot._warm_page_cache", lambda paths: warmed.append(sorted(paths)))

    unverified = Recommender(index_dir, embedder, verify=False)
    forked = unverified.reopened()
    Recommender(index_dir, embedder)

    folder = unverified.store.version_dir(unverified.version)
    assert warmed == [[folder / "neighbour_means.npy", folder / "neighbours.npy", folder / "vectors.faiss"]]
    assert forked.version == unverified.version


KILLED_AFTER_WRITING = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from conftest import HashEmbedder, make_asset
from recommender.engine import Recommender

recommender = Recommender(sys.argv[1], HashEmbedder())
recommender.upsert([make_asset("acknowledged", title="Written by a process killed right after")])
recommender.delete(["ent-dec-1"])
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_acknowledged_by_a_process_killed_right_after_is_durable(index_dir: Path, embedder: HashEmbedder):
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_WRITING, str(index_dir), str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    assert done.stdout == "acknowledged\n"

    reader = Recommender(index_dir, embedder)
    assert reader.get("acknowledged") is not None
    assert reader.get("ent-dec-1") is None
    assert search_ids(reader, "Written by a process killed right after", 1) == ["acknowledged"]
    assert reader.info()["asset_count"] == 12


def test_writes_from_one_recommender_reach_another_on_the_same_directory_after_refresh(
    recommender: Recommender, index_dir: Path, embedder: HashEmbedder
):
    other = Recommender(index_dir, embedder)
    recommender.upsert([board_pack()])
    recommender.delete(["ent-dec-1"])

    other.refresh()

    assert sorted(living(other.snapshot)) == sorted(living(recommender.snapshot))
    assert search_ids(other, "quarterly board pack template", 1) == ["board-pack"]
    assert "ent-dec-1" not in search_ids(other, "global manufacturer cut invoice approval time")
    assert other.info()["asset_count"] == 12


def test_a_rebuilt_version_reaches_another_recommender_after_refresh(
    recommender: Recommender, index_dir: Path, tmp_path: Path, small_library: list[Asset], embedder: HashEmbedder
):
    old = recommender.version
    bigger = write_jsonl(tmp_path / "bigger.jsonl", [*small_library, board_pack()])
    manifest = build_index([bigger], index_dir, embedder, None).manifest

    recommender.refresh()

    assert recommender.version == manifest.version != old
    assert search_ids(recommender, "quarterly board pack template", 1) == ["board-pack"]
    assert recommender.info()["asset_count"] == 13


# -- rebuilds keep the vectors of unchanged texts ----------------------------------------------------


class CountingEmbedder(HashEmbedder):
    """HashEmbedder that records the texts it is asked to encode."""

    def __init__(self, name: str = "test-hash-64") -> None:
        super().__init__(name=name)
        self.encoded: list[str] = []

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False):
        self.encoded += texts
        return super().encode(texts, batch_size=batch_size, progress=progress)


def vectors_by_id(index_dir: Path) -> dict[str, np.ndarray]:
    snapshot = open_snapshot(index_dir)
    try:
        rows = snapshot.living_rows()
        return dict(zip(snapshot.ids_of(rows), snapshot.vectors_of(rows).copy(), strict=True))
    finally:
        snapshot.close()


def test_a_rebuild_embeds_only_the_assets_whose_text_changed_and_keeps_the_other_vectors(
    index_dir: Path, tmp_path: Path, small_library: list[Asset]
):
    before = vectors_by_id(index_dir)
    retitled = small_library[2].model_copy(update={"title": "Retitled since the last build"})
    relabelled = small_library[3].model_copy(update={"stages": (Stage.DECISION,)})  # labels are not embedded
    library = write_jsonl(
        tmp_path / "changed.jsonl", [*small_library[:2], retitled, relabelled, *small_library[4:], board_pack()]
    )
    embedder = CountingEmbedder()

    summary = build_index([library], index_dir, embedder, None)

    assert embedder.encoded == [retitled.text, board_pack().text]
    assert (summary.embedded, summary.reused) == (2, 11)
    after = vectors_by_id(index_dir)
    for asset in small_library:
        if asset.id != retitled.id:
            assert np.array_equal(after[asset.id], before[asset.id])
    assert np.array_equal(after[retitled.id], HashEmbedder().encode([retitled.text])[0])
    assert Recommender(index_dir, embedder).get(relabelled.id)[0].stages == (Stage.DECISION,)


def test_an_asset_upserted_with_only_its_url_or_labels_changed_keeps_its_vector_without_the_model(
    index_dir: Path, small_library: list[Asset]
):
    embedder = CountingEmbedder()
    recommender = Recommender(index_dir, embedder)
    built = vectors_by_id(index_dir)[small_library[0].id]
    moved = small_library[0].model_copy(update={"url": "https://example.com/moved"})
    recommender.upsert([moved, board_pack()])
    written = vectors_by_id(index_dir)["board-pack"]

    recommender.upsert([board_pack().model_copy(update={"stages": (Stage.RETENTION,)})])

    assert embedder.encoded == [board_pack().text]  # once, when it was new
    after = vectors_by_id(index_dir)
    assert (after[moved.id].tolist(), after["board-pack"].tolist()) == (built.tolist(), written.tolist())
    assert recommender.get(moved.id)[0].url == "https://example.com/moved"
    assert recommender.get("board-pack")[0].stages == (Stage.RETENTION,)


def test_an_asset_upserted_with_a_new_title_is_embedded_again(index_dir: Path, small_library: list[Asset]):
    embedder = CountingEmbedder()
    retitled = small_library[0].model_copy(update={"title": "A title of this year"})

    Recommender(index_dir, embedder).upsert([retitled])

    assert embedder.encoded == [retitled.text]
    assert vectors_by_id(index_dir)[retitled.id].tolist() == HashEmbedder().encode([retitled.text])[0].tolist()


def test_a_rebuild_keeps_the_vector_of_an_asset_written_since_the_last_build(
    recommender: Recommender, index_dir: Path, tmp_path: Path, small_library: list[Asset]
):
    recommender.upsert([board_pack()])
    written = vectors_by_id(index_dir)["board-pack"]
    embedder = CountingEmbedder()

    build_index([write_jsonl(tmp_path / "with.jsonl", [*small_library, board_pack()])], index_dir, embedder, None)

    assert (embedder.encoded, vectors_by_id(index_dir)["board-pack"].tolist()) == ([], written.tolist())


@pytest.mark.parametrize(
    ("model", "options"),
    [("another-model", {}), ("test-hash-64", {"reuse_vectors": False})],
    ids=["another model", "reuse off"],
)
def test_a_rebuild_with_another_model_or_told_not_to_reuse_embeds_every_asset(
    index_dir: Path, library_file: Path, small_library: list[Asset], model: str, options: dict
):
    rebuilder = CountingEmbedder(name=model)

    summary = build_index([library_file], index_dir, rebuilder, None, **options)

    assert rebuilder.encoded == [asset.text for asset in small_library]
    assert (summary.embedded, summary.reused) == (12, 0)


def test_a_rebuild_over_a_damaged_served_version_embeds_every_asset_and_publishes(
    index_dir: Path, library_file: Path, caplog: pytest.LogCaptureFixture
):
    store = IndexStore(index_dir)
    damaged = store.version_dir(store.require_current()) / "vectors.faiss"
    damaged.write_bytes(damaged.read_bytes()[:-8] + b"\x00" * 8)
    embedder = CountingEmbedder()

    summary = build_index([library_file], index_dir, embedder, None)

    assert (summary.embedded, summary.reused) == (12, 0)
    assert store.current() == summary.manifest.version
    assert "embedding every asset: the served version" in caplog.text


# -- rebuilds while writes go on ---------------------------------------------------------------------


def test_writes_made_while_a_build_embeds_are_carried_into_the_new_version(
    recommender: Recommender, index_dir: Path, library_file: Path, small_library: list[Asset], embedder
):
    old = recommender.version
    retitled = small_library[2].model_copy(update={"title": "Retitled while the build ran"})

    def write() -> None:
        recommender.upsert([board_pack(), retitled])
        recommender.delete(["ent-dec-1"])

    # Every asset embedded again: an unchanged library would keep its vectors and embed nothing.
    build_index([library_file], index_dir, EncodeHook(embedder, write), None, reuse_vectors=False)

    fresh = Recommender(index_dir, embedder)
    assert fresh.version != old
    assert fresh.get("board-pack")[0] == board_pack()
    assert fresh.get(retitled.id)[0].title == "Retitled while the build ran"
    assert fresh.get("ent-dec-1") is None
    assert fresh.info()["asset_count"] == 12
    assert search_ids(fresh, "quarterly board pack template", 1) == ["board-pack"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
def test_a_write_made_while_the_build_reads_the_library_is_carried_into_the_new_version(
    recommender: Recommender, index_dir: Path, tmp_path: Path, small_library: list[Asset], embedder: HashEmbedder
):
    # The library arrives through a pipe (as from `<(export-command)`): the write lands while it is read.
    pipe = tmp_path / "exported.jsonl"
    os.mkfifo(pipe)
    lines = "".join(json.dumps(asset.model_dump(mode="json")) + "\n" for asset in small_library)

    def export() -> None:
        with open(pipe, "w", encoding="utf-8") as fh:  # blocks until the build opens the library
            recommender.upsert([board_pack()])
            fh.write(lines)

    exporter = threading.Thread(target=export, daemon=True)
    exporter.start()
    try:
        build_index([pipe], index_dir, embedder, None)
    finally:
        exporter.join(timeout=60)

    fresh = Recommender(index_dir, embedder)
    assert fresh.get("board-pack") is not None
    assert fresh.info()["asset_count"] == 13


def test_compaction_keeps_every_asset_with_its_vector_and_labels_and_empties_the_write_log(
    recommender: Recommender, index_dir: Path
):
    recommender.upsert([board_pack(), make_asset("ent-dec-2", title="Kubernetes runbook", body="Helm charts.")])
    recommender.delete(["ent-dec-1", "smb-aware-1"])
    before = living(recommender.snapshot)
    stored_before = recommender.snapshot.assets(list(before))
    answers_before = {asset_id: score for asset_id, score, _ in recommender.search("invoice approval for finance")}

    manifest = compact(index_dir)

    fresh = open_snapshot(index_dir)
    try:
        after = living(fresh)
        assert fresh.version == manifest.version != recommender.version
        assert (fresh.base_count, len(fresh.state.ids), fresh.state.dead_count) == (len(before), 0, 0)
        assert sorted(after) == sorted(before)
        for asset_id, vector in before.items():
            np.testing.assert_array_equal(after[asset_id], vector)
        assert fresh.assets(list(before)) == stored_before
        assert manifest.model == "test-hash-64"
        assert manifest.library_checksum == library_checksum([asset for asset, _ in stored_before.values()])
    finally:
        fresh.close()
    recommender.refresh()
    assert recommender.version == manifest.version
    answers_after = {asset_id: score for asset_id, score, _ in recommender.search("invoice approval for finance")}
    assert answers_after == pytest.approx(answers_before, abs=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_compaction_builds_the_index_kind_asked_for(index_dir: Path, kind: str):
    manifest = compact(index_dir, index_kind=kind)

    assert manifest.index_kind == kind
    vectors = IndexStore(index_dir).version_dir(manifest.version) / "vectors.faiss"
    assert ann.kind_of(ann.read(vectors)) is ann.IndexKind(kind)


# -- old versions ------------------------------------------------------------------------------------


def test_builds_keep_the_newest_versions_and_remove_the_older_ones(
    tmp_path: Path, library_file: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
):
    # Builds one after another within a second, with random name suffixes that sort against build order.
    suffixes = iter(f"{n:06x}" for n in range(0xFFFFFF, 0, -1))
    monkeypatch.setattr("recommender.store.secrets.token_hex", lambda _: next(suffixes))
    index = tmp_path / "index"

    versions = [build_index([library_file], index, embedder, None).manifest.version for _ in range(KEEP_VERSIONS + 2)]

    assert sorted(p.name for p in (index / "versions").iterdir()) == sorted(versions[-KEEP_VERSIONS:])
    assert IndexStore(index).current() == versions[-1]


def test_the_current_version_is_never_removed_even_when_it_is_the_oldest(
    tmp_path: Path, library_file: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
):
    """Overlapping builds: the one that finishes last is served, though others were named after it."""
    index = tmp_path / "index"
    write = ann.write
    newer: list[str] = []

    def write_then_let_other_builds_finish(faiss_index, path: Path) -> None:
        monkeypatch.setattr(ann, "write", write)
        write(faiss_index, path)
        newer.extend(build_index([library_file], index, embedder, None).manifest.version for _ in range(KEEP_VERSIONS))

    monkeypatch.setattr(ann, "write", write_then_let_other_builds_finish)
    slow = build_index([library_file], index, embedder, None).manifest.version

    store = IndexStore(index)
    assert store.current() == slow
    assert slow < min(newer)
    assert sorted(p.name for p in (index / "versions").iterdir()) == sorted([slow, *newer])
    assert Recommender(index, embedder).info()["asset_count"] == 12
