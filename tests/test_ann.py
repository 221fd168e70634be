"""FAISS paths against brute-force numpy, on random data with sizes that do not divide evenly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_asset

from recommender import ann
from recommender.errors import IndexCorrupt
from recommender.snapshot import Snapshot
from recommender.store import BuildStart, IndexStore
from recommender.tagging import merge_labels

DIMENSION = 24
SIZES = [1, 5, 17, 1003]
KINDS = [ann.IndexKind.FLAT, ann.IndexKind.HNSW]


def unit_rows(rng: np.random.Generator, n: int, d: int = DIMENSION) -> np.ndarray:
    rows = rng.standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    scores = vectors @ query
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return order[np.isfinite(scores[order])]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return len(set(found.tolist()) & set(truth.tolist())) / len(truth)


def assert_exact(vectors: np.ndarray, query: np.ndarray, k: int, scores: np.ndarray, rows: np.ndarray) -> None:
    truth = brute_force(vectors, query, k)
    np.testing.assert_array_equal(rows, truth)
    np.testing.assert_allclose(scores, vectors[truth] @ query, rtol=0, atol=1e-5)


# -- choosing the kind -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n", "expected"),
    [
        ("auto", 0, ann.IndexKind.FLAT),
        ("auto", ann.AUTO_APPROXIMATE_FROM - 1, ann.IndexKind.FLAT),
        ("auto", ann.AUTO_APPROXIMATE_FROM, ann.IndexKind.HNSW),
        ("flat", ann.AUTO_APPROXIMATE_FROM * 10, ann.IndexKind.FLAT),
        ("hnsw", 1, ann.IndexKind.HNSW),
    ],
)
def test_resolve_kind_picks_hnsw_from_the_size_threshold_unless_told(kind: str, n: int, expected: ann.IndexKind):
    assert ann.resolve_kind(kind, n) is expected


def test_an_unknown_kind_is_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match="'ivf' is not a valid IndexKind"):
        ann.resolve_kind("ivf", 10)


@pytest.mark.parametrize("kind", KINDS)
def test_build_makes_the_kind_asked_for_with_row_i_as_id_i(kind: ann.IndexKind):
    vectors = unit_rows(np.random.default_rng(1), 17)
    index = ann.build(vectors, kind)
    assert ann.kind_of(index) is kind
    assert (index.ntotal, index.d) == (17, DIMENSION)
    np.testing.assert_array_equal(ann.stored_vectors(index), vectors)


# -- search against brute force ----------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("k", [1, 5, 10])
def test_flat_search_equals_brute_force(n: int, k: int):
    rng = np.random.default_rng(n * 100 + k)
    vectors = unit_rows(rng, n)
    index = ann.build(vectors, ann.IndexKind.FLAT)
    for query in unit_rows(rng, 7):
        assert_exact(vectors, query, k, *ann.search(index, query, k))


@pytest.mark.parametrize("n", [1, 5, 17])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_hnsw_search_is_exact_when_the_graph_holds_fewer_nodes_than_ef(n: int, k: int):
    rng = np.random.default_rng(n * 100 + k)
    vectors = unit_rows(rng, n)
    index = ann.build(vectors, ann.IndexKind.HNSW)
    for query in unit_rows(rng, 7):
        assert_exact(vectors, query, k, *ann.search(index, query, k))


def test_hnsw_search_on_1003_rows_finds_the_true_neighbours_with_their_exact_scores():
    rng = np.random.default_rng(1003)
    vectors = unit_rows(rng, 1003)
    index = ann.build(vectors, ann.IndexKind.HNSW)
    recalls = []
    for query in unit_rows(rng, 40):
        scores, rows = ann.search(index, query, 10)
        assert len(rows) == 10
        np.testing.assert_allclose(scores, vectors[rows] @ query, rtol=0, atol=1e-5)
        assert np.all(np.diff(scores) <= 0)
        recalls.append(recall(rows, brute_force(vectors, query, 10)))
    # HNSW is approximate and its graph is built in parallel (not bit-reproducible): a margin, not equality.
    assert np.mean(recalls) >= 0.97


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 5, 17])
def test_asking_for_more_rows_than_exist_returns_every_row_without_padding(kind: ann.IndexKind, n: int):
    rng = np.random.default_rng(n)
    vectors = unit_rows(rng, n)
    query = unit_rows(rng, 1)[0]
    scores, rows = ann.search(ann.build(vectors, kind), query, n + 3)
    assert_exact(vectors, query, n, scores, rows)
    assert rows.dtype == np.int64


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_index_answers_with_empty_arrays(kind: ann.IndexKind):
    index = ann.build(np.zeros((0, DIMENSION), dtype=np.float32), kind)
    scores, rows = ann.search(index, unit_rows(np.random.default_rng(0), 1)[0], 5)
    assert (scores.shape, rows.shape) == ((0,), (0,))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", SIZES)
def test_search_limited_to_allowed_rows_equals_brute_force_over_them(kind: ann.IndexKind, n: int):
    rng = np.random.default_rng(n + 7)
    vectors = unit_rows(rng, n)
    index = ann.build(vectors, kind)
    for query in unit_rows(rng, 5):
        # A random third of the rows and the nearest ones themselves are excluded: a filter applied
        # after the search would come back short.
        allowed = rng.random(n) >= 1 / 3
        allowed[brute_force(vectors, query, min(n - 1, 20))] = False
        scores, rows = ann.search(index, query, 5, allowed)
        truth = brute_force(vectors, query, 5, allowed)
        assert not np.any(~allowed[rows])
        if n <= 17 or kind is ann.IndexKind.FLAT:
            np.testing.assert_array_equal(rows, truth)
        else:
            assert recall(rows, truth) >= 0.8
        np.testing.assert_allclose(scores, vectors[rows] @ query, rtol=0, atol=1e-5)


def test_an_exact_search_begins_with_the_rows_a_search_asking_fewer_finds_even_among_equal_scores():
    rng = np.random.default_rng(12)
    # Ten vectors, each stored five times in scattered rows: every score is shared by five rows.
    vectors = unit_rows(rng, 10)[rng.permutation(np.repeat(np.arange(10), 5))]
    index = ann.build(vectors, ann.IndexKind.FLAT)
    query = unit_rows(rng, 1)[0]

    _, most = ann.search(index, query, 50)
    for k in range(1, 50):
        np.testing.assert_array_equal(ann.search(index, query, k)[1], most[:k])


def test_an_approximate_search_begins_with_the_rows_a_search_asking_fewer_finds_up_to_its_consistent_rows():
    rng = np.random.default_rng(1003)
    index = ann.build(unit_rows(rng, 1003), ann.IndexKind.HNSW)
    most = ann.consistent_rows(index)

    for query in unit_rows(rng, 5):
        _, rows = ann.search(index, query, most)
        for k in (1, 10, 100, most - 1):
            np.testing.assert_array_equal(ann.search(index, query, k)[1], rows[:k])


# -- files -------------------------------------------------------------------------------------------


def mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the memory map of the process on Linux")
@pytest.mark.parametrize("kind", KINDS)
def test_read_memory_maps_the_file_and_answers_like_the_index_written(tmp_path: Path, kind: ann.IndexKind):
    rng = np.random.default_rng(5)
    vectors = unit_rows(rng, 1003)
    built = ann.build(vectors, kind)
    path = tmp_path / f"{kind}.faiss"
    ann.write(built, path)

    loaded = ann.read(path)

    assert str(path) in mapped_files()
    assert ann.kind_of(loaded) is kind
    np.testing.assert_array_equal(ann.stored_vectors(loaded)[[0, 500, 1002]], vectors[[0, 500, 1002]])
    for query in unit_rows(rng, 5):
        np.testing.assert_array_equal(ann.search(loaded, query, 10)[1], ann.search(built, query, 10)[1])


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the memory map of the process on Linux")
def test_read_without_mmap_loads_the_file_into_memory(tmp_path: Path):
    vectors = unit_rows(np.random.default_rng(6), 17)
    path = tmp_path / "copy.faiss"
    ann.write(ann.build(vectors, ann.IndexKind.FLAT), path)

    loaded = ann.read(path, mmap=False)

    assert str(path) not in mapped_files()
    np.testing.assert_array_equal(ann.stored_vectors(loaded), vectors)


@pytest.mark.parametrize("content", [b"", b"not a faiss index", b"IxFI" + b"\0" * 40])
def test_reading_a_file_that_is_not_an_index_raises_index_corrupt_naming_it(tmp_path: Path, content: bytes):
    path = tmp_path / "vectors.faiss"
    path.write_bytes(content)
    with pytest.raises(IndexCorrupt, match=f"^{path} is not a readable FAISS index"):
        ann.read(path)


# -- Snapshot.search: the memory-mapped base, dead rows and delta rows together --------------------


def publish(store: IndexStore, vectors: np.ndarray, kind: ann.IndexKind) -> None:
    assets = [make_asset(f"base-{i}") for i in range(len(vectors))]
    labels = [merge_labels(asset, None) for asset in assets]
    store.write_version(
        assets,
        labels,
        vectors,
        model="random",
        index_kind=kind,
        library_checksum="-",
        tagger_version=None,
        start=BuildStart(None, 0),
    )


def write(store: IndexStore, vectors: dict[str, np.ndarray], ids: list[str], rng: np.random.Generator) -> None:
    """Upsert `ids` with fresh random vectors, recording them in `vectors`."""
    upserts = []
    for asset_id, vector in zip(ids, unit_rows(rng, len(ids)), strict=True):
        asset = make_asset(asset_id)
        upserts.append((asset, merge_labels(asset, None), vector))
        vectors[asset_id] = vector
    store.apply(upserts=upserts)


def assert_search_equals_brute_force(snapshot: Snapshot, vectors: dict[str, np.ndarray], query: np.ndarray, n: int):
    ids = sorted(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    truth = [ids[i] for i in brute_force(matrix, query, n)]
    scores, rows = snapshot.search(query, n)
    assert snapshot.ids_of(rows) == truth
    np.testing.assert_allclose(scores, matrix[brute_force(matrix, query, n)] @ query, rtol=0, atol=1e-5)
    np.testing.assert_allclose(snapshot.vectors_of(rows), np.stack([vectors[i] for i in truth]), atol=1e-6)


def assert_search_close_to_brute_force(
    snapshot: Snapshot, vectors: dict[str, np.ndarray], query: np.ndarray, n: int
) -> None:
    """For HNSW over many rows: living ids only, exact scores, most of the true neighbours."""
    ids = sorted(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    truth = [ids[i] for i in brute_force(matrix, query, n)]
    scores, rows = snapshot.search(query, n)
    found = snapshot.ids_of(rows)
    assert len(found) == n and set(found) <= set(vectors)
    np.testing.assert_allclose(scores, np.stack([vectors[i] for i in found]) @ query, rtol=0, atol=1e-5)
    assert len(set(found) & set(truth)) / n >= 0.75


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", SIZES)
def test_snapshot_search_over_base_dead_and_delta_rows_equals_brute_force(tmp_path: Path, kind, n: int):
    rng = np.random.default_rng(n)
    base = unit_rows(rng, n)
    store = IndexStore(tmp_path / "index")
    publish(store, base, kind)
    living = {f"base-{i}": base[i] for i in range(n)}
    # Rewrite a third of the base, delete another third, add new assets: a mix of every row kind.
    rewritten = [f"base-{i}" for i in range(0, n, 3)]
    deleted = [f"base-{i}" for i in range(1, n, 3)]
    write(store, living, rewritten + [f"new-{i}" for i in range(n // 2 + 1)], rng)
    store.apply(deletes=deleted)
    for asset_id in deleted:
        del living[asset_id]

    snapshot = Snapshot(store, store.require_current())
    try:
        assert snapshot.asset_count == len(living)
        for query in unit_rows(rng, 5):
            for k in (1, 4, 10):
                if kind is ann.IndexKind.FLAT or n <= 17:
                    assert_search_equals_brute_force(snapshot, living, query, k)
                else:
                    assert_search_close_to_brute_force(snapshot, living, query, k)
    finally:
        snapshot.close()


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_search_finds_living_rows_when_every_nearest_base_row_is_dead(tmp_path: Path, kind):
    rng = np.random.default_rng(11)
    base = unit_rows(rng, 200)
    store = IndexStore(tmp_path / "index")
    publish(store, base, kind)
    query = unit_rows(rng, 1)[0]
    nearest = brute_force(base, query, 60)
    store.apply(deletes=[f"base-{i}" for i in nearest])
    living = {f"base-{i}": base[i] for i in range(200) if i not in set(nearest.tolist())}

    snapshot = Snapshot(store, store.require_current())
    try:
        for k in (1, 3):
            assert_search_equals_brute_force(snapshot, living, query, k)
    finally:
        snapshot.close()


def test_snapshot_search_sees_writes_only_after_refresh(tmp_path: Path):
    rng = np.random.default_rng(3)
    base = unit_rows(rng, 17)
    store = IndexStore(tmp_path / "index")
    publish(store, base, ann.IndexKind.FLAT)
    snapshot = Snapshot(store, store.require_current())
    try:
        living = {f"base-{i}": base[i] for i in range(17)}
        query = unit_rows(rng, 1)[0]
        # A new asset equal to the query is the nearest possible one.
        asset = make_asset("exact-match")
        store.apply(upserts=[(asset, merge_labels(asset, None), query)])
        assert_search_equals_brute_force(snapshot, living, query, 3)

        assert snapshot.refresh() is True
        living["exact-match"] = query
        assert_search_equals_brute_force(snapshot, living, query, 3)
        assert snapshot.ids_of(snapshot.search(query, 1)[1]) == ["exact-match"]
        assert snapshot.refresh() is False
    finally:
        snapshot.close()


# -- neighbour means -------------------------------------------------------------------------------


def test_neighbour_means_average_the_listed_rows_and_are_zero_without_any():
    vectors = np.array([[1, 0], [0, 1], [1, 1], [3, 5]], dtype=np.float32)
    lists = np.array([[1, 2], [-1, -1], [3, -1], [0, 1]])

    means = ann.neighbour_means(lists, vectors.__getitem__, 2, batch=3)

    np.testing.assert_allclose(means, [[0.5, 1.0], [0.0, 0.0], [3.0, 5.0], [0.5, 0.5]])
    assert means.dtype == np.float32


def test_group_means_average_each_groups_rows_across_batches_and_are_zero_for_the_others():
    vectors = np.array([[1, 0], [0, 1], [1, 1], [3, 5], [2, 2]], dtype=np.float32)
    languages = np.array([2, 0, 2, 2, 0], dtype=np.int16)

    means = ann.group_means(vectors, languages, 4, batch=2)

    np.testing.assert_allclose(means, [[1.0, 1.5], [0.0, 0.0], [5 / 3, 2.0], [0.0, 0.0]], rtol=1e-6)
    assert means.dtype == np.float32


def expected_means(snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
    """The mean of each row's living neighbours' vectors, computed from scratch."""
    out = []
    for listed in snapshot.neighbours_of(rows):
        listed = listed[listed >= 0]
        out.append(snapshot.vectors_of(listed).mean(axis=0) if len(listed) else np.zeros(snapshot.dimension))
    return np.array(out)


@pytest.mark.parametrize("kind", KINDS)
def test_neighbour_means_follow_rewrites_and_deletes_of_the_neighbours(tmp_path: Path, kind):
    rng = np.random.default_rng(7)
    base = unit_rows(rng, 300)
    store = IndexStore(tmp_path / "index")
    publish(store, base, kind)
    snapshot = Snapshot(store, store.require_current())
    try:
        rows = snapshot.living_rows()
        np.testing.assert_allclose(snapshot.neighbour_means_of(rows)[0], expected_means(snapshot, rows), atol=1e-6)
        # Every neighbour of row 0 rewritten or deleted, plus new assets listing base rows as neighbours.
        listed = [f"base-{i}" for i in snapshot.neighbours_of(np.array([0]))[0]]
        write(store, {}, listed[:2] + [f"new-{i}" for i in range(5)], rng)
        store.apply(deletes=listed[2:])
        snapshot.refresh()

        rows = snapshot.living_rows()
        means, has_neighbours = snapshot.neighbour_means_of(rows)
        np.testing.assert_allclose(means, expected_means(snapshot, rows), atol=1e-6)
        np.testing.assert_array_equal(has_neighbours, (snapshot.neighbours_of(rows) >= 0).any(axis=1))
        assert not has_neighbours[0]  # every neighbour it had is gone
    finally:
        snapshot.close()


def test_an_index_written_without_stored_means_computes_the_same_ones(tmp_path: Path):
    # Indexes written by releases before neighbour_means.npy existed are served as they are.
    rng = np.random.default_rng(8)
    store = IndexStore(tmp_path / "index")
    publish(store, unit_rows(rng, 50), ann.IndexKind.FLAT)
    snapshot = Snapshot(store, store.require_current())
    folder = store.version_dir(snapshot.version)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["neighbour_means.npy"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "neighbour_means.npy").unlink()
    older = Snapshot(store, snapshot.version)
    try:
        rows = snapshot.living_rows()
        assert older.neighbour_means is None
        np.testing.assert_allclose(older.neighbour_means_of(rows)[0], snapshot.neighbour_means_of(rows)[0], atol=1e-6)
    finally:
        snapshot.close()
        older.close()
