"""The index directory on disk: immutable versions, a pointer to the current one, and a write log.

Layout::

    INDEX_DIR/
      CURRENT                  the name of the version being served
      .lock                    flock: serialises writers and the switch to a new version
      versions/<version>/
        manifest.json          format, model, counts, checksums of the files below
        vectors.faiss          the FAISS index; FAISS id i is row i
        ids.npy                row -> asset id (fixed-width bytes, memory-mapped)
        neighbours.npy         row -> its nearest other rows (int32, -1 padded)
        neighbour_means.npy    row -> the mean vector of those rows (float32; absent in indexes
                               written before it existed, whose means are computed per request)
        language_means.npy     language code -> the mean vector of that language's rows (float32;
                               absent in indexes written before it existed, which rank uncentred)
        type_means.npy         asset type -> the mean vector of that type's rows (float32; absent in
                               indexes written before it existed, which rank uncentred by type)
        url_index.npy          the assets' URL hashes sorted, over the rows they belong to (uint64, 2 x n):
                               finds an asset by its address (absent in indexes written before it
                               existed, which find by URL only the assets written since)
        features/*.npy         row -> label confidences, type, language, date (see features.py)
        assets.sqlite          every asset with its labels; assets written after the build carry
                               their vector, and `changes` logs each write in order

A build writes a new version into a temporary folder, renames it into `versions/`, then switches
CURRENT with an atomic rename: a build killed at any point leaves the previous version served. A
single-asset write is one SQLite transaction (WAL, synchronous=FULL) on the current version, durable
once committed; readers fold the log into their in-memory view (snapshot.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from content_library.schema import Asset, AssetType
from content_library.urls import url_key
from recommender import ann
from recommender.errors import AssetNotFound, IndexCorrupt, IndexNotFound, VersionChanged
from recommender.features import FeatureTable, language_count
from recommender.types import AssetLabels

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
IDS = "ids.npy"
NEIGHBOURS = "neighbours.npy"
NEIGHBOUR_MEANS = "neighbour_means.npy"
LANGUAGE_MEANS = "language_means.npy"
TYPE_MEANS = "type_means.npy"
URL_INDEX = "url_index.npy"
#: Files added after the format's first release: a version written before one of them loads and ranks
#: without what it carries, until a build or `compact` writes a new version.
LATER_FILES = (NEIGHBOUR_MEANS, LANGUAGE_MEANS, TYPE_MEANS, URL_INDEX)
FEATURES = "features"
DATABASE = "assets.sqlite"
#: Versions kept on disk after a switch: a worker still serving an older one keeps working.
KEEP_VERSIONS = 3

_SCHEMA = """
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    row INTEGER,
    asset TEXT NOT NULL,
    labels TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    language TEXT NOT NULL,
    segments TEXT NOT NULL,
    stages TEXT NOT NULL,
    vector BLOB
);
CREATE INDEX assets_type ON assets(asset_type, id);
CREATE INDEX assets_language ON assets(language, id);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    base_row INTEGER
);
"""


@dataclass(frozen=True)
class Manifest:
    """What a version holds and how it was made; loading checks it before serving anything."""

    version: str
    model: str
    dimension: int
    asset_count: int
    index_kind: str
    library_checksum: str
    built_at: str
    tagger_version: str | None = None
    files: dict[str, dict[str, str | int]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorrupt(f"{path} is missing: the index version is incomplete; rebuild it") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexCorrupt(f"{path} is not valid JSON ({exc}); rebuild the index") from exc
        if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
            found = raw.get("format_version") if isinstance(raw, dict) else None
            raise IndexCorrupt(
                f"{path} has format version {found!r}; this release reads {FORMAT_VERSION}: rebuild the index"
            )
        try:
            return cls(**raw)
        except TypeError as exc:
            raise IndexCorrupt(f"{path} does not describe an index ({exc}); rebuild it") from exc


@dataclass(frozen=True)
class BuildStart:
    """Where the log of the served version stood when a build began: later writes are carried over."""

    version: str | None
    seq: int


@dataclass(frozen=True)
class Change:
    seq: int
    id: str
    op: str
    base_row: int | None


class IndexStore:
    """One index directory. Safe to use from several processes at once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading -----------------------------------------------------------------------------------

    def current(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def require_current(self) -> str:
        version = self.current()
        if version is None:
            raise IndexNotFound(
                f"no index in {self.root}: build one with `recommender build-index --index-dir {self.root}`"
            )
        return version

    def version_dir(self, version: str) -> Path:
        return self.root / "versions" / version

    def manifest(self, version: str | None = None) -> Manifest:
        return Manifest.read(self.version_dir(version or self.require_current()) / MANIFEST)

    def verify(self, version: str, manifest: Manifest) -> None:
        """Check every file the manifest lists against its size and SHA-256; raise IndexCorrupt naming it."""
        folder = self.version_dir(version)
        for name, expected in manifest.files.items():
            path = folder / name
            if not path.is_file():
                raise IndexCorrupt(f"{path} is missing; rebuild the index")
            if path.stat().st_size != expected["bytes"]:
                raise IndexCorrupt(
                    f"{path} has {path.stat().st_size} bytes, the manifest says {expected['bytes']}: "
                    "the file is truncated or altered; rebuild the index"
                )
            if _sha256(path) != expected["sha256"]:
                raise IndexCorrupt(f"{path} does not match its checksum in the manifest; rebuild the index")
        db = folder / DATABASE
        try:
            with contextlib.closing(connect(db)) as conn:
                problem = conn.execute("PRAGMA quick_check").fetchone()[0]
                # A file truncated to nothing is a valid empty database: the tables prove it is ours.
                conn.execute("SELECT 1 FROM assets, changes LIMIT 0").fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{db} is not a readable SQLite database ({exc}); rebuild the index") from exc
        if problem != "ok":
            raise IndexCorrupt(f"{db} is damaged ({problem}); rebuild the index")

    def changes_since(self, conn: sqlite3.Connection, seq: int) -> list[Change]:
        rows = conn.execute("SELECT seq, id, op, base_row FROM changes WHERE seq > ? ORDER BY seq", (seq,))
        return [Change(*row) for row in rows]

    # -- building ----------------------------------------------------------------------------------

    def begin_build(self) -> BuildStart:
        version = self.current()
        if version is None:
            return BuildStart(None, 0)
        try:
            with contextlib.closing(connect(self.version_dir(version) / DATABASE)) as conn:
                return BuildStart(version, last_seq(conn))
        except (IndexCorrupt, sqlite3.DatabaseError):
            # A damaged index must not block the rebuild its error message asks for.
            return BuildStart(version, 0)

    def write_version(
        self,
        assets: Sequence[Asset],
        labels: Sequence[AssetLabels],
        vectors: np.ndarray,
        *,
        model: str,
        index_kind: str,
        library_checksum: str,
        tagger_version: str | None,
        start: BuildStart,
        index: object | None = None,
    ) -> Manifest:
        """Write a complete new version and make it current; writes made since `start` are kept.

        `vectors` is (len(assets), dimension) float32, rows L2-normalised. A prebuilt FAISS `index`
        over the same vectors may be passed to skip building it again.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "versions").mkdir(exist_ok=True)
        self._remove_abandoned_builds()
        # Nanoseconds keep names in build order when several builds finish within one second:
        # old versions are garbage-collected in name order.
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
        version = f"{stamp}.{now % 1_000_000_000:09d}Z-{secrets.token_hex(3)}"
        tmp = self.root / f".build-{os.getpid()}-{version}"
        tmp.mkdir()
        try:
            faiss_index = index if index is not None else ann.build(vectors, index_kind)
            ann.write(faiss_index, tmp / VECTORS)
            width = max((len(a.id) for a in assets), default=1)
            np.save(tmp / IDS, np.array([a.id.encode() for a in assets], dtype=f"S{width}"), allow_pickle=False)
            neighbours = ann.neighbours(faiss_index, vectors)
            np.save(tmp / NEIGHBOURS, neighbours, allow_pickle=False)
            means = ann.neighbour_means(neighbours, vectors.__getitem__, vectors.shape[1])
            np.save(tmp / NEIGHBOUR_MEANS, means, allow_pickle=False)
            features = FeatureTable.from_assets(assets, labels)
            features.save(tmp / FEATURES)
            language_means = ann.group_means(vectors, features.language, language_count())
            np.save(tmp / LANGUAGE_MEANS, language_means, allow_pickle=False)
            type_means = ann.group_means(vectors, features.asset_type, len(AssetType))
            np.save(tmp / TYPE_MEANS, type_means, allow_pickle=False)
            np.save(tmp / URL_INDEX, url_index([a.url for a in assets]), allow_pickle=False)
            _write_database(tmp / DATABASE, assets, labels)
            files = [
                tmp / VECTORS,
                tmp / IDS,
                tmp / NEIGHBOURS,
                tmp / NEIGHBOUR_MEANS,
                tmp / LANGUAGE_MEANS,
                tmp / TYPE_MEANS,
                tmp / URL_INDEX,
                *sorted((tmp / FEATURES).glob("*.npy")),
            ]
            manifest = Manifest(
                version=version,
                model=model,
                dimension=int(vectors.shape[1]),
                asset_count=len(assets),
                index_kind=str(ann.kind_of(faiss_index)),
                library_checksum=library_checksum,
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                tagger_version=tagger_version,
                files={str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
            )
            (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
            _fsync_tree(tmp)
            os.rename(tmp, self.version_dir(version))
            _fsync_dir(self.root / "versions")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self.lock():
            self._carry_over(start, version)
            self._point_current(version)
        self._remove_old_versions()
        return manifest

    # -- writing single assets ---------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock across processes, held for one short write or a version switch."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def apply(
        self,
        upserts: Sequence[tuple[Asset, AssetLabels, np.ndarray]] = (),
        deletes: Sequence[str] = (),
        *,
        version: str | None = None,
    ) -> int:
        """Write assets (with their labels and vectors) and delete ids in one durable transaction.

        Returns the sequence number of the last change. Deleting an unknown id raises AssetNotFound
        and writes nothing. With `version`, the write goes there only if it is still current (else
        VersionChanged, nothing written): a writer serving one version never writes into another.
        """
        with self.lock():
            current = self.require_current()
            if version is not None and version != current:
                raise VersionChanged(f"index version {current} replaced {version}")
            version = current
            with contextlib.closing(connect(self.version_dir(version) / DATABASE)) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for asset, labels, vector in upserts:
                        _upsert(conn, asset, labels, vector)
                    for asset_id in deletes:
                        _delete(conn, asset_id)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return last_seq(conn)

    # -- internals ---------------------------------------------------------------------------------

    def _carry_over(self, start: BuildStart, version: str) -> None:
        """Copy writes made to the old version while the new one was being built."""
        old = self.current()
        if old is None:
            return
        try:
            src = connect(self.version_dir(old) / DATABASE)
        except IndexCorrupt:
            return  # the served version is damaged: it holds no write that can still be read
        with contextlib.closing(src):
            since = start.seq if start.version == old else 0
            try:
                changed = dict.fromkeys(change.id for change in self.changes_since(src, since))
            except sqlite3.DatabaseError:
                return
            if not changed:
                return
            with contextlib.closing(connect(self.version_dir(version) / DATABASE)) as dst:
                dst.execute("BEGIN IMMEDIATE")
                for asset_id in changed:
                    row = src.execute("SELECT asset, labels, vector FROM assets WHERE id = ?", (asset_id,)).fetchone()
                    if row is None:
                        if dst.execute("SELECT 1 FROM assets WHERE id = ?", (asset_id,)).fetchone():
                            _delete(dst, asset_id)
                        continue
                    asset = Asset.model_validate_json(row[0])
                    labels = AssetLabels.model_validate_json(row[1])
                    _upsert(dst, asset, labels, vector_from_blob(row[2]))
                dst.execute("COMMIT")

    def _point_current(self, version: str) -> None:
        tmp = self.root / f".CURRENT.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "CURRENT")
        _fsync_dir(self.root)

    def _remove_old_versions(self) -> None:
        current = self.current()
        versions = sorted(p.name for p in (self.root / "versions").iterdir() if p.is_dir())
        for name in versions[:-KEEP_VERSIONS]:
            if name != current:
                shutil.rmtree(self.version_dir(name), ignore_errors=True)

    def _remove_abandoned_builds(self) -> None:
        for path in self.root.glob(".build-*"):
            pid = int(path.name.split("-")[1]) if path.name.split("-")[1].isdigit() else 0
            if pid != os.getpid() and not _alive(pid):
                shutil.rmtree(path, ignore_errors=True)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, durable commits."""
    if not path.is_file():
        raise IndexCorrupt(f"{path} is missing; rebuild the index")
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.DatabaseError as exc:
        conn.close()  # a refused version is retried every few seconds: do not leak a handle each time
        raise IndexCorrupt(f"{path} is not a readable SQLite database ({exc}); rebuild the index") from exc
    return conn


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]


def vector_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def url_hash(url: str) -> int:
    """64 bits of the page's `url_key`: one number for every way of writing one address."""
    return int.from_bytes(hashlib.blake2b(url_key(url).encode(), digest_size=8).digest(), "little")


def url_index(urls: Sequence[str]) -> np.ndarray:
    """(2, n) uint64: the URLs' hashes sorted, and under each the row it belongs to (a binary search finds one)."""
    hashes = np.fromiter((url_hash(u) for u in urls), dtype=np.uint64, count=len(urls))
    order = np.argsort(hashes, kind="stable")
    return np.stack([hashes[order], order.astype(np.uint64)])


def _label_column(labels: Sequence[str]) -> str:
    # "|a|b|" lets a browse filter match one label with LIKE '%|a|%'.
    return "|" + "|".join(labels) + "|"


def _write_database(path: Path, assets: Sequence[Asset], labels: Sequence[AssetLabels]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO assets (id, row, asset, labels, asset_type, language, segments, stages, vector)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                (
                    a.id,
                    row,
                    a.model_dump_json(),
                    lab.model_dump_json(),
                    a.asset_type.value,
                    a.language,
                    _label_column(lab.segments.labels),
                    _label_column(lab.stages.labels),
                )
                for row, (a, lab) in enumerate(zip(assets, labels, strict=True))
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _upsert(conn: sqlite3.Connection, asset: Asset, labels: AssetLabels, vector: np.ndarray) -> None:
    existing = conn.execute("SELECT row FROM assets WHERE id = ?", (asset.id,)).fetchone()
    base_row = existing[0] if existing else None
    conn.execute(
        "INSERT INTO assets (id, row, asset, labels, asset_type, language, segments, stages, vector)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET asset = excluded.asset, labels = excluded.labels,"
        " asset_type = excluded.asset_type, language = excluded.language, segments = excluded.segments,"
        " stages = excluded.stages, vector = excluded.vector",
        (
            asset.id,
            base_row,
            asset.model_dump_json(),
            labels.model_dump_json(),
            asset.asset_type.value,
            asset.language,
            _label_column(labels.segments.labels),
            _label_column(labels.stages.labels),
            vector_blob(vector),
        ),
    )
    conn.execute("INSERT INTO changes (id, op, base_row) VALUES (?, 'upsert', ?)", (asset.id, base_row))


def _delete(conn: sqlite3.Connection, asset_id: str) -> None:
    existing = conn.execute("SELECT row FROM assets WHERE id = ?", (asset_id,)).fetchone()
    if existing is None:
        raise AssetNotFound(f"no asset with id '{asset_id}' in the index")
    conn.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
    conn.execute("INSERT INTO changes (id, op, base_row) VALUES (?, 'delete', ?)", (asset_id, existing[0]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
