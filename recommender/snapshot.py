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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from content_library.schema import Asset
from recommender import ann
from recommender.errors import IndexCorrupt
from recommender.features import FeatureTable
from recommender.store import (
    DATABASE,
    FEATURES,
    IDS,
    MANIFEST,
    NEIGHBOURS,
    VECTORS,
    IndexStore,
    Manifest,
    connect,
)
from recommender.store import vector_from_blob as _vector
from recommender.types import AssetLabels


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


class Snapshot:
    """A loaded, verified index version. Thread-safe: readers take `state` once per request."""

    def __init__(self, store: IndexStore, version: str, *, verify: bool = True) -> None:
        self.store = store
        self.version = version
        folder = store.version_dir(version)
        self.manifest: Manifest = Manifest.read(folder / MANIFEST)
        if verify:
            store.verify(version, self.manifest)
        self.index = ann.read(folder / VECTORS)
        if self.index.ntotal != self.manifest.asset_count or self.index.d != self.manifest.dimension:
            raise IndexCorrupt(
                f"{folder / VECTORS} holds {self.index.ntotal} vectors of {self.index.d} dimensions, the "
                f"manifest says {self.manifest.asset_count} of {self.manifest.dimension}; rebuild the index"
            )
        self.ids = _load_rows(folder / IDS, self.manifest.asset_count)
        self.neighbours = _load_rows(folder / NEIGHBOURS, self.manifest.asset_count)
        self.features = FeatureTable.load(folder / FEATURES, self.manifest.asset_count)
        self.db_path = folder / DATABASE
        self._local = threading.local()
        self._lock = threading.Lock()
        self._watch = connect(self.db_path)
        self._data_version = -1
        empty = FeatureTable.empty()
        self.state = _Delta(
            seq=0,
            dead=np.zeros(self.base_count, dtype=bool),
            dead_count=0,
            ids=(),
            vectors=np.zeros((0, self.dimension), np.float32),
            features=empty,
            neighbours=np.zeros((0, self.neighbours.shape[1]), np.int32),
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
            current = dict(zip(old.ids, range(len(old.ids)), strict=True))
            for change in changes:
                if change.base_row is not None:
                    dead[change.base_row] = True
            touched = list(dict.fromkeys(c.id for c in changes))
            rows = self._fetch_rows(touched)
            # Rewritten and deleted assets leave the delta; rewritten ones come back at its end.
            touched_set = set(touched)
            keep = [current[i] for i in old.ids if i not in touched_set]
            ids = [old.ids[j] for j in keep]
            vectors = [old.vectors[keep]]
            features = old.features.take(np.asarray(keep, dtype=np.int64))
            fresh_assets, fresh_labels = [], []
            for asset_id in touched:
                if asset_id in rows:
                    asset, labels, vector = rows[asset_id]
                    ids.append(asset_id)
                    vectors.append(vector[None, :])
                    fresh_assets.append(asset)
                    fresh_labels.append(labels)
            features = features.concat(FeatureTable.from_assets(fresh_assets, fresh_labels))
            state = _Delta(
                seq=changes[-1].seq,
                dead=dead,
                dead_count=int(dead.sum()),
                ids=tuple(ids),
                vectors=np.vstack(vectors).astype(np.float32, copy=False),
                features=features,
                neighbours=self.neighbours[:0],
            )
            self.state = dataclasses.replace(state, neighbours=self._delta_neighbours(state))
            return True

    def _delta_neighbours(self, state: _Delta) -> np.ndarray:
        """Nearest living rows of each asset written since the build (those lists are not on disk)."""
        k = self.neighbours.shape[1]
        out = np.full((len(state.ids), k), -1, dtype=np.int32)
        for j, vector in enumerate(state.vectors):
            _, rows = self.search(vector, k + 1, state)
            rows = rows[rows != self.base_count + j][:k]
            out[j, : len(rows)] = rows
        return out

    def _fetch_rows(self, ids: Sequence[str]) -> dict[str, tuple[Asset, AssetLabels, np.ndarray]]:
        out = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, asset, labels, vector FROM assets WHERE id IN ({marks})"
            for asset_id, asset, labels, vector in self._watch.execute(query, chunk):
                out[asset_id] = (
                    Asset.model_validate_json(asset),
                    AssetLabels.model_validate_json(labels),
                    _vector(vector),
                )
        return out

    # -- reading -------------------------------------------------------------------------------------

    @property
    def asset_count(self) -> int:
        state = self.state
        return self.base_count - state.dead_count + len(state.ids)

    def search(self, query: np.ndarray, n: int, state: _Delta | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `n` rows most similar to `query` (d,), living ones only. Returns (scores, rows), best first."""
        state = state or self.state
        # Dead rows still sit in the FAISS file; FAISS skips them, so n living ones come back
        # however many of the nearest were rewritten or deleted.
        allowed = ~state.dead if state.dead_count else None
        scores, rows = ann.search(self.index, query, n, allowed)
        if len(state.ids):
            delta_scores = state.vectors @ query
            top = np.argsort(-delta_scores, kind="stable")[:n]
            scores = np.concatenate([scores, delta_scores[top]])
            rows = np.concatenate([rows, top + self.base_count])
            order = np.argsort(-scores, kind="stable")[:n]
            scores, rows = scores[order], rows[order]
        return scores, rows

    def neighbours_of(self, rows: np.ndarray, state: _Delta | None = None) -> np.ndarray:
        """Nearest living rows of each row, shape (len(rows), k), -1 where there is none."""
        state = state or self.state
        base = rows < self.base_count
        out = np.empty((len(rows), self.neighbours.shape[1]), dtype=np.int32)
        out[base] = self.neighbours[rows[base]]
        out[~base] = state.neighbours[rows[~base] - self.base_count]
        if state.dead_count:
            in_base = (out >= 0) & (out < self.base_count)
            dead = np.zeros_like(in_base)
            dead[in_base] = state.dead[out[in_base]]
            out[dead] = -1
        return out

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
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        out[base] = ann.vectors_of(self.index, rows[base])
        out[~base] = state.vectors[rows[~base] - self.base_count]
        return out

    def ids_of(self, rows: np.ndarray, state: _Delta | None = None) -> list[str]:
        state = state or self.state
        return [
            self.ids[row].decode() if row < self.base_count else state.ids[row - self.base_count]
            for row in rows.tolist()
        ]

    def living_rows(self, state: _Delta | None = None) -> np.ndarray:
        """Every row that holds a current asset."""
        state = state or self.state
        base = np.flatnonzero(~state.dead)
        return np.concatenate([base, np.arange(len(state.ids)) + self.base_count])

    def assets(self, ids: Sequence[str]) -> dict[str, tuple[Asset, AssetLabels]]:
        """The stored assets and labels of `ids` (those that exist), read in one consistent query."""
        conn = self._connection()
        out = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for asset_id, asset, labels in conn.execute(
                f"SELECT id, asset, labels FROM assets WHERE id IN ({marks})", chunk
            ):
                out[asset_id] = (Asset.model_validate_json(asset), AssetLabels.model_validate_json(labels))
        return out

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


def _load_rows(path: Path, n: int) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorrupt(f"{path} cannot be read: {exc}") from exc
    if len(array) != n:
        raise IndexCorrupt(f"{path} holds {len(array)} rows, the manifest says {n}; rebuild the index")
    return array
