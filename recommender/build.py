"""Building an index version from a content library, and compacting one after many writes."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from content_library import UTF8, Asset, Library, load_library
from recommender import ann
from recommender.embeddings import Embedder
from recommender.errors import ModelError, RecommenderError
from recommender.snapshot import Snapshot
from recommender.store import IndexStore, Manifest
from recommender.tagging import Tagger, label_assets

log = logging.getLogger(__name__)
#: Assets compared with the served version's at a time when a build looks for vectors to reuse.
_REUSE_CHUNK = 10_000


@dataclass(frozen=True)
class BuildSummary:
    manifest: Manifest
    seconds: float
    asset_types: dict[str, int]
    languages: dict[str, int]
    label_sources: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    ignored_fields: dict[str, int] = field(default_factory=dict)
    #: Assets whose record gave no language, by the language read from their text.
    detected_languages: dict[str, int] = field(default_factory=dict)
    #: Asset type names no list holds, read by some of their words: name -> (type, assets).
    types_by_word: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: Assets the model embedded, and those whose vector came from the version served before (same text).
    embedded: int = 0
    reused: int = 0


def build_index(
    source: Library | Sequence[str | Path],
    index_dir: str | Path,
    embedder: Embedder,
    tagger: Tagger | None,
    *,
    index_kind: str = "auto",
    batch_size: int = 64,
    progress: bool = False,
    skip_invalid: bool = False,
    encoding: str = UTF8,
    reuse_vectors: bool = True,
) -> BuildSummary:
    """Label what is untagged in a library, embed it and publish a new index version.

    `source` is a loaded Library or the paths to load one from, their text in `encoding` (then writes
    acknowledged while it loads are carried over too). With `reuse_vectors`, an asset whose text the
    served version embedded with the same model keeps that vector, so a rebuild embeds only what changed.
    Raises LibraryError for a bad library (nothing is written) and ModelError when the tagger was trained
    on another embedding model than `embedder`.
    """
    started = time.perf_counter()
    if tagger is not None and tagger.model_ != embedder.name:
        raise ModelError(
            f"the tagger was trained on embeddings of '{tagger.model_}', the index uses '{embedder.name}': "
            f"retrain it with `recommender train-tagger --model {embedder.name}` or build with "
            f"--model {tagger.model_}"
        )
    store = IndexStore(index_dir)
    # Before reading the library: a write acknowledged while it loads must be carried over too.
    start = store.begin_build()
    library = (
        source if isinstance(source, Library) else load_library(*source, skip_invalid=skip_invalid, encoding=encoding)
    )
    assets = library.assets
    vectors = np.zeros((len(assets), embedder.dimension), dtype=np.float32)
    reused = _reuse_vectors(store, assets, embedder, vectors) if reuse_vectors else np.zeros(len(assets), bool)
    fresh = np.flatnonzero(~reused)
    if len(fresh):
        texts = [assets[i].text for i in fresh]
        vectors[fresh] = embedder.encode(texts, batch_size=batch_size, progress=progress)
    labels = label_assets(assets, vectors, tagger)
    manifest = store.write_version(
        library.assets,
        labels,
        vectors,
        model=embedder.name,
        index_kind=index_kind,
        library_checksum=library_checksum(library.assets),
        tagger_version=tagger.version if tagger is not None else None,
        start=start,
    )
    sources: Counter[str] = Counter()
    for label in labels:
        for name in ("segments", "stages", "roles"):
            sources[f"{name}:{label.field(name).source}"] += 1
    return BuildSummary(
        manifest=manifest,
        seconds=time.perf_counter() - started,
        asset_types=library.count_by("asset_type"),
        languages=library.count_by("language"),
        label_sources=dict(sorted(sources.items())),
        skipped=[str(problem) for problem in library.skipped],
        ignored_fields=library.ignored_fields,
        detected_languages=library.count_detected_languages(),
        types_by_word=library.types_by_word,
        embedded=len(fresh),
        reused=int(reused.sum()),
    )


def _reuse_vectors(store: IndexStore, assets: Sequence[Asset], embedder: Embedder, vectors: np.ndarray) -> np.ndarray:
    """Copy into `vectors` the served version's vector of each asset whose text it embedded with this
    model; which assets they were. Embedding is nearly all of a build's time (15 assets a second here
    with the default model), and a library rebuilt every night changes little. A served version that
    cannot be read, or was embedded by another model, gives nothing."""
    reused = np.zeros(len(assets), dtype=bool)
    current = store.current()
    if current is None:
        return reused
    try:
        snapshot = Snapshot(store, current)
    except (RecommenderError, OSError) as exc:
        log.warning("embedding every asset: the served version %s cannot be read (%s)", current, exc)
        return reused
    try:
        if snapshot.manifest.model != embedder.name or snapshot.dimension != embedder.dimension:
            return reused
        for start in range(0, len(assets), _REUSE_CHUNK):
            chunk = assets[start : start + _REUSE_CHUNK]
            stored = snapshot.embedded([asset.id for asset in chunk])
            for i, asset in enumerate(chunk, start):
                text, vector = stored.get(asset.id, (None, None))
                if text == asset.text:
                    vectors[i] = vector
                    reused[i] = True
    finally:
        snapshot.close()
    return reused


def compact(index_dir: str | Path, *, index_kind: str = "auto") -> Manifest:
    """Fold every write since the build into a new version: same assets, no model needed.

    Writes after a build live in memory beside the memory-mapped base; after many of them a
    compacted version serves faster and loads quicker.
    """
    store = IndexStore(index_dir)
    start = store.begin_build()
    snapshot = Snapshot(store, store.require_current())
    try:
        rows = snapshot.living_rows()
        ids = snapshot.ids_of(rows)
        stored = snapshot.assets(ids)
        # An asset deleted since `living_rows` was read is gone from `stored`: leave it out.
        keep = [i for i, asset_id in enumerate(ids) if asset_id in stored]
        assets = [stored[ids[i]][0] for i in keep]
        labels = [stored[ids[i]][1] for i in keep]
        vectors = snapshot.vectors_of(rows[keep])
        manifest = snapshot.manifest
    finally:
        snapshot.close()
    return store.write_version(
        assets,
        labels,
        vectors,
        model=manifest.model,
        index_kind=index_kind if index_kind != "auto" else ann.resolve_kind("auto", len(assets)),
        library_checksum=library_checksum(assets),
        tagger_version=manifest.tagger_version,
        start=start,
    )


def library_checksum(assets: Sequence[Asset]) -> str:
    """SHA-256 over the assets in id order: equal libraries give equal checksums, whatever the file order."""
    digest = hashlib.sha256()
    for asset in sorted(assets, key=lambda a: a.id):
        digest.update(asset.model_dump_json().encode())
        digest.update(b"\n")
    return digest.hexdigest()
