"""One process's view of an index version: the memory-mapped base plus writes made since the build.

Rows 0..B-1 are the base (the FAISS file and feature arrays of the build); rows B.. are assets
written afterwards, held in small in-memory arrays. A base row that was rewritten or deleted is
marked dead. `refresh()` folds new writes in; it costs one SQLite pragma when nothing changed, so
every request can call it and see every write acknowledged before it began, whatever process made it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from content_library.schema import Asset, AssetType
from content_library.urls import is_url
from recommender import ann
from recommender.errors import IndexCorrupt
from recommender.features import FeatureTable
from recommender.store import (
    DATABASE,
    FEATURES,
    IDS,
    LANGUAGE_MEANS,
    MANIFEST,
    NEIGHBOUR_MEANS,
    NEIGHBOURS,
    TYPE_MEANS,
    URL_INDEX,
    VECTORS,
    IndexStore,
    Manifest,
    connect,
    url_hash,
)
from recommender.store import vector_from_blob as _vector
from recommender.types import AssetLabels

#: Parsed assets kept per process, keyed by their stored JSON: a popular asset is parsed once, not per
#: request, and a rewritten one has new JSON, so nothing stale is ever served from here.
_PARSED_ASSETS = 4096
#: Superseded delta rows are dropped (and the rest renumbered) once the delta has more than this many
#: rows and half of them are superseded: memory stays bounded when one asset is rewritten many times.
_DELTA_SLACK = 1024


@dataclass(frozen=True)
class _Delta:
    """Everything written since the build, replaced whole on refresh so readers never see it half-done."""

    seq: int
    dead: np.ndarray  # (B,) bool
    dead_count: int
    ids: tuple[str, ...]
    vectors: np.ndarray  # (m, d) float32
    features: FeatureTable
    neighbours: np.ndarray  # (m, k) int32 rows, -1 padded
    superseded: np.ndarray  # (m,) bool: delta rows since rewritten or deleted
    delta_rows: dict[str, int]  # id -> delta row (0-based) of every current asset in the delta
    url_hashes: np.ndarray  # (m,) uint64: `url_hash` of each delta row's URL
    living: np.ndarray  # (n,) int64, read-only: every row holding a current asset
    renumberings: int = 0  # times superseded rows were dropped: delta row numbers hold between two


class Snapshot:
    """A loaded, verified index version. Thread-safe: readers take `state` once per request.

    With `warm`, the memory-mapped files are read once in the background so that the operating
    system caches them: a query touches a few thousand scattered vector rows, and each one not yet
    cached is a disk read (measured at a million assets: 90-320 ms per request cold, 5-7 ms warm).
    Verifying reads every file anyway, so it warms them too.
    """

    def __init__(self, store: IndexStore, version: str, *, verify: bool = True, warm: bool = False) -> None:
        self.store = store
        self.version = version
        folder = store.version_dir(version)
        self.manifest: Manifest = Manifest.read(folder / MANIFEST)
        if verify:
            store.verify(version, self.manifest)
        elif warm:
            _warm_page_cache([folder / name for name in (VECTORS, NEIGHBOURS, NEIGHBOUR_MEANS)])
        self.index = _read_index(folder / VECTORS)
        if self.index.ntotal != self.manifest.asset_count or self.index.d != self.manifest.dimension:
            raise IndexCorrupt(
                f"{folder / VECTORS} holds {self.index.ntotal} vectors of {self.index.d} dimensions, the "
                f"manifest says {self.manifest.asset_count} of {self.manifest.dimension}; rebuild the index"
            )
        # A view of the index's own (memory-mapped) storage, no copy.
        self._base_vectors = ann.stored_vectors(self.index)
        self.ids = _load_rows(folder / IDS, self.manifest.asset_count)
        self.neighbours = _load_rows(folder / NEIGHBOURS, self.manifest.asset_count)
        self.neighbour_means = (
            _load_rows(folder / NEIGHBOUR_MEANS, self.manifest.asset_count)
            if NEIGHBOUR_MEANS in self.manifest.files
            else None
        )
        self.features = FeatureTable.load(folder / FEATURES, self.manifest.asset_count)
        self.url_index = _load_url_index(folder / URL_INDEX, self.manifest)
        # The library's statistics as built: rows written since do not update them, a rebuild does.
        self.language_means, self.language_counts = _group_statistics(
            folder / LANGUAGE_MEANS, self.manifest, self.features.language, "language codes"
        )
        self.type_means, self.type_counts = _group_statistics(
            folder / TYPE_MEANS, self.manifest, self.features.asset_type, "asset types", len(AssetType)
        )
        self.db_path = folder / DATABASE
        self._local = threading.local()
        self._lock = threading.Lock()
        self._watch = connect(self.db_path)
        self._data_version = -1
        self._parsed: OrderedDict[str, Asset] = OrderedDict()
        self._parsed_lock = threading.Lock()
        empty = FeatureTable.empty()
        self.state = _Delta(
            seq=0,
            dead=np.zeros(self.base_count, dtype=bool),
            dead_count=0,
            ids=(),
            vectors=np.zeros((0, self.dimension), np.float32),
            features=empty,
            neighbours=np.zeros((0, self.neighbours.shape[1]), np.int32),
            superseded=np.zeros(0, dtype=bool),
            delta_rows={},
            url_hashes=np.zeros(0, np.uint64),
            living=_living(np.zeros(self.base_count, dtype=bool), np.zeros(0, dtype=bool)),
        )
        try:
            self.refresh()
        except sqlite3.DatabaseError as exc:  # reached without `verify`, which checks the tables first
            self._watch.close()
            raise IndexCorrupt(f"{self.db_path} cannot be read ({exc}); rebuild the index") from exc

    @property
    def base_count(self) -> int:
        return self.manifest.asset_count

    @property
    def dimension(self) -> int:
        return self.manifest.dimension

    def close(self) -> None:
        self._watch.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    # -- keeping up with writes ----------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fold in writes committed since the last call. Returns whether anything changed."""
        with self._lock:
            data_version = self._watch.execute("PRAGMA data_version").fetchone()[0]
            if data_version == self._data_version:
                return False
            self._data_version = data_version
            old = self.state
            changes = self.store.changes_since(self._watch, old.seq)
            if not changes:
                return False
            dead = old.dead.copy()
            for change in changes:
                if change.base_row is not None:
                    dead[change.base_row] = True
            touched = list(dict.fromkeys(c.id for c in changes))
            rows = self._fetch_rows(touched)
            # The delta only grows: a rewritten or deleted asset's old delta row is marked superseded,
            # never moved, so the neighbour lists already computed keep pointing at the right rows.
            superseded = np.concatenate([old.superseded, np.zeros(len(rows), dtype=bool)])
            delta_rows = dict(old.delta_rows)
            for asset_id in touched:
                previous = delta_rows.pop(asset_id, None)
                if previous is not None:
                    superseded[previous] = True
            ids = list(old.ids)
            fresh_assets, fresh_labels, fresh_vectors = [], [], []
            for asset_id in touched:
                if asset_id in rows:
                    asset, labels, vector = rows[asset_id]
                    delta_rows[asset_id] = len(ids)
                    ids.append(asset_id)
                    fresh_assets.append(asset)
                    fresh_labels.append(labels)
                    fresh_vectors.append(vector)
            fresh = np.asarray(fresh_vectors, dtype=np.float32).reshape(len(fresh_vectors), self.dimension)
            state = _Delta(
                seq=changes[-1].seq,
                dead=dead,
                dead_count=int(dead.sum()),
                ids=tuple(ids),
                vectors=np.concatenate([old.vectors, fresh]),
                features=old.features.concat(FeatureTable.from_assets(fresh_assets, fresh_labels)),
                neighbours=old.neighbours,
                superseded=superseded,
                delta_rows=delta_rows,
                url_hashes=np.concatenate(
                    [old.url_hashes, np.array([url_hash(a.url) for a in fresh_assets], dtype=np.uint64)]
                ),
                living=_living(dead, superseded),
                renumberings=old.renumberings,
            )
            state = dataclasses.replace(state, neighbours=self._with_neighbours(state, len(old.ids)))
            if len(ids) > _DELTA_SLACK and int(superseded.sum()) * 2 > len(ids):
                state = self._without_superseded(state)
            self.state = state
            return True

    def _with_neighbours(self, state: _Delta, first_new: int) -> np.ndarray:
        """The neighbour lists of the delta, extended with those of rows `first_new`.. (just written).

        Only the new rows are searched: refreshing costs what was written, not what was written before.
        """
        k = self.neighbours.shape[1]
        out = np.full((len(state.ids), k), -1, dtype=np.int32)
        out[:first_new] = state.neighbours
        for j in range(first_new, len(state.ids)):
            if state.superseded[j]:
                continue
            _, rows = self.search(state.vectors[j], k + 1, state)
            rows = rows[rows != self.base_count + j][:k]
            out[j, : len(rows)] = rows
        return out

    def _without_superseded(self, state: _Delta) -> _Delta:
        """The delta renumbered without its superseded rows (so rewriting one asset often stays bounded)."""
        keep = np.flatnonzero(~state.superseded)
        renumber = np.full(self.base_count + len(state.ids), -1, dtype=np.int64)
        renumber[: self.base_count] = np.arange(self.base_count)
        renumber[self.base_count + keep] = self.base_count + np.arange(len(keep))
        neighbours = state.neighbours[keep]
        listed = neighbours >= 0
        neighbours = np.where(listed, renumber[np.where(listed, neighbours, 0)], -1).astype(np.int32)
        ids = tuple(state.ids[j] for j in keep.tolist())
        superseded = np.zeros(len(keep), dtype=bool)
        return dataclasses.replace(
            state,
            ids=ids,
            vectors=state.vectors[keep],
            features=state.features.take(keep),
            neighbours=neighbours,
            superseded=superseded,
            delta_rows={asset_id: j for j, asset_id in enumerate(ids)},
            url_hashes=state.url_hashes[keep],
            living=_living(state.dead, superseded),
            renumberings=state.renumberings + 1,
        )

    def _fetch_rows(self, ids: Sequence[str]) -> dict[str, tuple[Asset, AssetLabels, np.ndarray]]:
        return {
            asset_id: (Asset.model_validate_json(asset), AssetLabels.model_validate_json(labels), _vector(vector))
            for asset_id, asset, labels, vector in _select(self._watch, "asset, labels, vector", ids)
        }

    # -- reading -------------------------------------------------------------------------------------

    @property
    def asset_count(self) -> int:
        state = self.state
        return self.base_count - state.dead_count + len(state.delta_rows)

    def search(self, query: np.ndarray, n: int, state: _Delta | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `n` rows most similar to `query` (d,), living ones only. Returns (scores, rows), best first."""
        state = state or self.state
        # Dead rows still sit in the FAISS file; FAISS skips them, so n living ones come back
        # however many of the nearest were rewritten or deleted.
        allowed = ~state.dead if state.dead_count else None
        scores, rows = ann.search(self.index, query, n, allowed)
        if len(state.ids):
            delta_scores = state.vectors @ query
            delta_scores[state.superseded] = -np.inf
            top = np.argsort(-delta_scores, kind="stable")[:n]
            top = top[~state.superseded[top]]
            scores = np.concatenate([scores, delta_scores[top]])
            rows = np.concatenate([rows, top + self.base_count])
            order = np.argsort(-scores, kind="stable")[:n]
            scores, rows = scores[order], rows[order]
        return scores, rows

    def neighbours_of(self, rows: np.ndarray, state: _Delta | None = None) -> np.ndarray:
        """Nearest living rows of each row, shape (len(rows), k), -1 where there is none."""
        state = state or self.state
        return self._living_only(self._stored_neighbours(rows, state), state)

    def neighbour_means_of(self, rows: np.ndarray, state: _Delta | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The mean vector of each row's living neighbours (zeros for none), and whether it has any.

        The means stored by the build serve the base rows whose neighbours all still live; the rest
        (written since, or a neighbour rewritten or deleted) are averaged here from the vectors.
        """
        state = state or self.state
        lists = self._stored_neighbours(rows, state)
        stored_count = (lists >= 0).sum(axis=1)
        lists = self._living_only(lists, state)
        listed = lists >= 0
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        kept = np.zeros(len(rows), dtype=bool)
        if self.neighbour_means is not None:
            kept = (rows < self.base_count) & (listed.sum(axis=1) == stored_count)
            out[kept] = self.neighbour_means[rows[kept]]
        if not kept.all():
            rest = ~kept
            out[rest] = ann.neighbour_means(lists[rest], lambda r: self.vectors_of(r, state), self.dimension)
        return out, listed.any(axis=1)

    def _stored_neighbours(self, rows: np.ndarray, state: _Delta) -> np.ndarray:
        base = rows < self.base_count
        out = np.empty((len(rows), self.neighbours.shape[1]), dtype=np.int32)
        out[base] = self.neighbours[rows[base]]
        out[~base] = state.neighbours[rows[~base] - self.base_count]
        return out

    def _living_only(self, lists: np.ndarray, state: _Delta) -> np.ndarray:
        """`lists`, changed in place: rows rewritten or deleted since they were listed become -1."""
        if state.dead_count:
            in_base = (lists >= 0) & (lists < self.base_count)
            dead = np.zeros_like(in_base)
            dead[in_base] = state.dead[lists[in_base]]
            lists[dead] = -1
        in_delta = lists >= self.base_count
        if in_delta.any():
            gone = np.zeros_like(in_delta)
            gone[in_delta] = state.superseded[lists[in_delta] - self.base_count]
            lists[gone] = -1
        return lists

    def features_of(self, rows: np.ndarray, state: _Delta | None = None) -> FeatureTable:
        state = state or self.state
        base = rows < self.base_count
        if base.all():
            return self.features.take(rows)
        parts = {}
        for f in dataclasses.fields(FeatureTable):
            base_arr = getattr(self.features, f.name)
            delta_arr = getattr(state.features, f.name)
            arr = np.empty((len(rows), *base_arr.shape[1:]), dtype=base_arr.dtype)
            arr[base] = base_arr[rows[base]]
            arr[~base] = delta_arr[rows[~base] - self.base_count]
            parts[f.name] = arr
        return FeatureTable(**parts)

    def vectors_of(self, rows: np.ndarray, state: _Delta | None = None) -> np.ndarray:
        state = state or self.state
        base = rows < self.base_count
        if base.all():
            return self._base_vectors[rows]
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        out[base] = self._base_vectors[rows[base]]
        out[~base] = state.vectors[rows[~base] - self.base_count]
        return out

    def ids_of(self, rows: np.ndarray, state: _Delta | None = None) -> list[str]:
        state = state or self.state
        base = rows < self.base_count
        if base.all():
            return [raw.decode() for raw in self.ids[rows].tolist()]
        return [
            self.ids[row].decode() if row < self.base_count else state.ids[row - self.base_count]
            for row in rows.tolist()
        ]

    def row_of(self, asset_id: str, state: _Delta | None = None) -> int | None:
        """The row holding the asset `asset_id` names (an id, or a URL: the first asset at that address) in
        `state`, or None when there is none."""
        state = state or self.state
        if is_url(asset_id):
            rows = self.rows_of_url(asset_id, state)
            return int(rows[0]) if len(rows) else None
        if asset_id in state.delta_rows:
            return self.base_count + state.delta_rows[asset_id]
        found = self._connection().execute("SELECT row FROM assets WHERE id = ?", (asset_id,)).fetchone()
        # A row of None is an asset written after the build and not yet in this state.
        if found is None or found[0] is None or state.dead[found[0]]:
            return None
        return int(found[0])

    def rows_of_url(self, url: str, state: _Delta | None = None) -> np.ndarray:
        """The rows of the current assets at the address `url`, however it is written
        (`content_library.urls.url_key`), in row order."""
        state = state or self.state
        key = np.uint64(url_hash(url))
        found = [self.base_count + np.flatnonzero((state.url_hashes == key) & ~state.superseded)]
        if self.url_index is not None:
            hashes, rows = self.url_index
            base = rows[np.searchsorted(hashes, key, "left") : np.searchsorted(hashes, key, "right")].astype(np.int64)
            found.insert(0, np.sort(base[~state.dead[base]]))
        return np.concatenate(found)

    def resolve(self, refs: Sequence[str], state: _Delta | None = None) -> set[str]:
        """The ids of the assets `refs` name: an id stands for itself, a URL for the assets at that address."""
        state = state or self.state
        ids = set(refs)
        # Ids never hold a '/': a visitor's ten thousand seen ids are not parsed one by one.
        urls = [ref for ref in ids if "/" in ref and is_url(ref)]
        if urls:
            ids.difference_update(urls)
            ids.update(self.ids_of(np.concatenate([self.rows_of_url(url, state) for url in urls]), state))
        return ids

    def is_living(self, rows: np.ndarray, state: _Delta | None = None) -> np.ndarray:
        """Whether each row still holds a current asset (not rewritten or deleted since)."""
        state = state or self.state
        base = rows < self.base_count
        out = np.empty(len(rows), dtype=bool)
        out[base] = ~state.dead[rows[base]]
        out[~base] = ~state.superseded[rows[~base] - self.base_count]
        return out

    def living_rows(self, state: _Delta | None = None) -> np.ndarray:
        """Every row that holds a current asset (read-only, made once per state: no request builds it)."""
        return (state or self.state).living

    def assets(self, ids: Sequence[str]) -> dict[str, tuple[Asset, AssetLabels]]:
        """The stored assets and labels of `ids` (those that exist)."""
        return {
            asset_id: (self._parse(asset), AssetLabels.model_validate_json(labels))
            for asset_id, asset, labels in _select(self._connection(), "asset, labels", ids)
        }

    def embedded(self, ids: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
        """The text each stored asset of `ids` was embedded from (`Asset.text`) and that vector: the build's
        row in the FAISS file, or the vector of the write since. Each text and vector are read by one
        statement, so they belong together whatever is written meanwhile."""
        return {
            asset_id: (self._parse(stored).text, self._base_vectors[row] if blob is None else _vector(blob))
            for asset_id, stored, row, blob in _select(self._connection(), "asset, row, vector", ids)
        }

    def documents(self, ids: Sequence[str]) -> dict[str, Asset]:
        """The stored assets of `ids` (those that exist), without their labels: what a response shows."""
        return {asset_id: self._parse(asset) for asset_id, asset in _select(self._connection(), "asset", ids)}

    def _parse(self, stored: str) -> Asset:
        with self._parsed_lock:
            asset = self._parsed.get(stored)
            if asset is not None:
                self._parsed.move_to_end(stored)
                return asset
        asset = Asset.model_validate_json(stored)
        with self._parsed_lock:
            self._parsed[stored] = asset
            if len(self._parsed) > _PARSED_ASSETS:
                self._parsed.popitem(last=False)
        return asset

    def browse(self, filters: dict[str, str], limit: int, after: str | None) -> list[tuple[Asset, AssetLabels]]:
        """Assets in id order after `after`, matching `filters` (asset_type, language, segment, stage)."""
        clauses, params = [], []
        for column in ("asset_type", "language"):
            if column in filters:
                clauses.append(f"{column} = ?")
                params.append(filters[column])
        for name, column in (("segment", "segments"), ("stage", "stages")):
            if name in filters:
                clauses.append(f"{column} LIKE ?")
                params.append(f"%|{filters[name]}|%")
        if after is not None:
            clauses.append("id > ?")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._connection().execute(
            f"SELECT asset, labels FROM assets {where} ORDER BY id LIMIT ?", (*params, limit)
        )
        return [(Asset.model_validate_json(a), AssetLabels.model_validate_json(b)) for a, b in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Assets per language, per asset type and per label source, for `info`."""
        conn = self._connection()
        out: dict[str, dict[str, int]] = {}
        for column in ("language", "asset_type"):
            rows = conn.execute(f"SELECT {column}, COUNT(*) FROM assets GROUP BY {column} ORDER BY {column}")
            out[column] = dict(rows.fetchall())
        sources = {}
        for field in ("segments", "stages", "roles"):
            rows = conn.execute(
                f"SELECT json_extract(labels, '$.{field}.source') AS source, COUNT(*) FROM assets GROUP BY source"
            )
            sources.update({f"{field}:{source}": count for source, count in rows})
        out["label_source"] = dict(sorted(sources.items()))
        return out

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            self._local.conn = conn
        return conn


def open_snapshot(root: str | Path, *, verify: bool = True) -> Snapshot:
    store = IndexStore(root)
    return Snapshot(store, store.require_current(), verify=verify)


#: FAISS indexes opened by this process (and by the process it was forked from), newest last.
_OPEN_INDEXES: OrderedDict[tuple[str, int, int, int], faiss.Index] = OrderedDict()
_OPEN_INDEXES_LOCK = threading.Lock()
#: The version being served and the one it replaces during a hot reload.
_KEEP_OPEN = 2


def _read_index(path: Path) -> faiss.Index:
    """The index file, read once per file and shared by every Snapshot of this process and its forks.

    The vectors are memory-mapped, but an HNSW graph is read into memory: a gunicorn worker that
    opened the file again after the fork would hold a private copy (about 270 MB at a million
    assets). Reusing the object loaded before the fork keeps one copy, shared page for page, since
    searching only reads it. A file changed in place (never done by the store) is read again.
    """
    try:
        stat = path.stat()
    except OSError:
        return ann.read(path)  # which names the problem as IndexCorrupt
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _OPEN_INDEXES_LOCK:
        index = _OPEN_INDEXES.get(key)
        if index is None:
            index = ann.read(path)
            _OPEN_INDEXES[key] = index
            while len(_OPEN_INDEXES) > _KEEP_OPEN:
                _OPEN_INDEXES.popitem(last=False)
        else:
            _OPEN_INDEXES.move_to_end(key)
    return index


def _warm_page_cache(paths: Sequence[Path]) -> None:
    def read_through() -> None:
        buffer = bytearray(16 << 20)
        for path in paths:
            try:
                with open(path, "rb", buffering=0) as fh:
                    while fh.readinto(buffer):
                        pass
            except OSError:
                pass  # only a speed-up: loading the file reports any real problem

    threading.Thread(target=read_through, name="warm-page-cache", daemon=True).start()


def _living(dead: np.ndarray, superseded: np.ndarray) -> np.ndarray:
    """Every row holding a current asset: base rows not dead, then delta rows not superseded."""
    living = np.concatenate([np.flatnonzero(~dead), np.flatnonzero(~superseded) + len(dead)])
    living.flags.writeable = False
    return living


def _select(conn: sqlite3.Connection, columns: str, ids: Sequence[str]) -> Iterator[tuple]:
    """(id, *columns) of the assets among `ids`, asked for 500 ids at a time (SQLite's variable limit)."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(f"SELECT id, {columns} FROM assets WHERE id IN ({marks})", chunk)


def _group_statistics(
    path: Path, manifest: Manifest, groups: np.ndarray, what: str, count: int = 0
) -> tuple[np.ndarray | None, np.ndarray]:
    """Each group's mean vector as built (None in indexes written before the file existed), and the
    number of assets of each group code, for at least `count` codes."""
    counts = np.bincount(groups, minlength=count)
    if path.name not in manifest.files:
        return None, counts
    try:
        means = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorrupt(f"{path} cannot be read: {exc}") from exc
    # One row per code numbered when the index was built: codes numbered since (features.py) have no asset here.
    if means.ndim != 2 or means.shape[1] != manifest.dimension or len(means) < len(counts):
        raise IndexCorrupt(
            f"{path} holds an array of shape {means.shape}, expected a row for each of the {len(counts)} "
            f"first {what}, of {manifest.dimension} dimensions; rebuild the index"
        )
    return means, counts


def _load_url_index(path: Path, manifest: Manifest) -> np.ndarray | None:
    if path.name not in manifest.files:
        return None  # written before the file existed: only later writes are found by URL
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorrupt(f"{path} cannot be read: {exc}") from exc
    if array.shape != (2, manifest.asset_count) or array.dtype != np.uint64:
        raise IndexCorrupt(f"{path} is not a URL index of {manifest.asset_count} assets; rebuild the index")
    return np.asarray(array)


def _load_rows(path: Path, n: int) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorrupt(f"{path} cannot be read: {exc}") from exc
    if len(array) != n:
        raise IndexCorrupt(f"{path} holds {len(array)} rows, the manifest says {n}; rebuild the index")
    return np.asarray(array)  # a plain ndarray over the map: np.memmap wraps every indexing result
