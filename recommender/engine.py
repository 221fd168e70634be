"""`Recommender`: the one object callers use. It answers "which assets should this buyer see next?"."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from content_library.schema import Asset, Stage
from content_library.urls import is_url
from recommender import ann, ranking
from recommender.config import RankingConfig
from recommender.embeddings import Embedder, load_embedder
from recommender.errors import IndexCorrupt, ModelError, RecommenderError, UnknownReading, VersionChanged
from recommender.features import ASSET_TYPES, FeatureTable, language_code
from recommender.ranking import BuyerContext
from recommender.signals import resolve_stage
from recommender.snapshot import Snapshot
from recommender.store import LATER_FILES, IndexStore
from recommender.tagging import Tagger, label_assets
from recommender.types import (
    AssetLabels,
    BuyerRequest,
    NurtureSequence,
    NurtureStep,
    RecommendationResult,
    RecommendedItem,
    StageSource,
)

log = logging.getLogger(__name__)
_Answer = TypeVar("_Answer")  # what `Recommender._each` gives for each request
_EPOCH = dt.date(1970, 1, 1)
#: After a failed reload of a new index version, wait this long before trying it again.
_RELOAD_RETRY_SECONDS = 5.0
#: A write retried when a build publishes between the write's reload and its commit.
_WRITE_ATTEMPTS = 3
#: Results of requests without a query kept per process (about 10 KB each).
_RESULTS_CACHED = 4096
#: The most rows one search finds for all the requests of a batch with its query (`Recommender._nearest_together`).
_SEARCHED_TOGETHER_MAX = 2000


class Recommender:
    """Recommendations, search, tagging and writes over one index directory.

    Thread-safe. Load it once per process (`Recommender.load`); call `refresh()` before serving a
    request to pick up writes and rebuilt versions made by other processes.
    """

    def __init__(
        self,
        index_dir: str | Path,
        embedder: Embedder,
        tagger: Tagger | None = None,
        config: RankingConfig | None = None,
        *,
        verify: bool = True,
        query_cache_size: int = 4096,
        today: Callable[[], dt.date] = dt.date.today,
        _verified: str | None = None,
    ) -> None:
        self.store = IndexStore(index_dir)
        self.embedder = embedder
        self.tagger = tagger
        self.config = config or RankingConfig()
        self._verify = verify
        self._verified = _verified
        self._today = today
        self._query_cache_size = query_cache_size
        self._snapshot = self._open(self.store.require_current())
        self._reload_lock = threading.Lock()
        self._failed: tuple[str, float] | None = None
        self._static_cache: dict[tuple[Any, ...], _Fits] = {}
        self._result_cache: dict[tuple[Any, ...], RecommendationResult] = {}
        self.embed_query = lru_cache(maxsize=query_cache_size)(self._embed_query)

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        embedder: Embedder | None = None,
        tagger: Tagger | str | Path | None = None,
        config: RankingConfig | None = None,
        verify: bool = True,
        **kwargs: Any,
    ) -> Recommender:
        """Open an index; the embedding model named in its manifest is loaded unless one is given.

        `tagger` (a Tagger or a folder) is only needed to write untagged assets; by default the
        shipped tagger is used when its embedding model matches the index's.
        """
        store = IndexStore(index_dir)
        manifest = store.manifest()
        embedder = embedder or load_embedder(manifest.model)
        if tagger is None:
            tagger = _default_tagger(embedder.name)
        elif not isinstance(tagger, Tagger):
            tagger = Tagger.load(tagger)
        return cls(index_dir, embedder, tagger, config, verify=verify, **kwargs)

    # -- serving -------------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def version(self) -> str:
        return self._snapshot.version

    def refresh(self) -> None:
        """Switch to a rebuilt version if there is one, and fold in writes from other processes.

        A new version that fails to load (corrupt, another model) is logged and skipped: the
        current one keeps serving.
        """
        current = self.store.current()
        if current and current != self._snapshot.version:
            with self._reload_lock:
                if current != self._snapshot.version and not self._recently_failed(current):
                    try:
                        self._snapshot = self._open(current)
                        self._static_cache.clear()  # keyed by version: nothing left can reach them
                        self._result_cache.clear()
                        log.info("switched to index version %s", current)
                    except RecommenderError as exc:
                        self._failed = (current, time.monotonic())
                        log.error("index version %s refused, still serving %s: %s", current, self.version, exc)
        if self._snapshot.refresh():
            # Results are keyed by write state too: clearing frees what no key can reach. The buyers'
            # candidate lists are brought up to date on their next use instead.
            self._result_cache.clear()

    def reopened(self) -> Recommender:
        """A new instance with the same settings, for a forked process (connections are per process).

        The version this instance verified is not hashed again, so forked workers start fast.
        """
        return Recommender(
            self.store.root,
            self.embedder,
            self.tagger,
            self.config,
            verify=self._verify,
            query_cache_size=self._query_cache_size,
            today=self._today,
            _verified=self.version,
        )

    def close(self) -> None:
        """Release the index files and database connections of the version being served."""
        self._snapshot.close()

    def recommend(self, request: BuyerRequest) -> RecommendationResult:
        """Rank assets for one buyer; see `BuyerRequest` for the fields."""
        if request.query:
            return self._recommend(request, self.embed_query(_normal_query(request.query)), self._snapshot)[0]
        # Without a query the answer depends only on the request, the day and the index state, and a
        # site's anonymous visitors share a few buyer contexts: each is ranked once per state and day.
        snapshot = self._snapshot
        key = (snapshot.version, snapshot.state.seq, self._today(), request)
        result = self._result_cache.get(key)
        if result is None:
            result = self._recommend(request, None, snapshot)[0]
            if len(self._result_cache) >= _RESULTS_CACHED:
                self._result_cache.clear()
            self._result_cache[key] = result
        return result

    def recommend_many(self, requests: Sequence[BuyerRequest]) -> list[RecommendationResult | RecommenderError]:
        """Rank for many buyers at once; their queries are embedded together, a failure stays its own."""
        return self._each(
            requests,
            lambda i, vector, snapshot, nearest: self._recommend(requests[i], vector, snapshot, nearest=nearest)[0],
        )

    def sequence(self, request: BuyerRequest, steps: int) -> NurtureSequence:
        """A nurture sequence for one buyer: one asset per step, moving down the funnel, never repeating.

        The first step's stage is resolved as `recommend` resolves it: given, else from the signals (or
        the asset being read), else the default. Steps are spread evenly over the stages from there to
        decision (earlier stages take the remainder); a sequence starting at decision or retention
        continues into retention. `reading` leads every step. The request's `k` is not used: a step
        holds one asset, and the sequence ends early when no asset is left.
        """
        _check_steps(steps)
        query_vector = self.embed_query(_normal_query(request.query)) if request.query else None
        return self._sequence(request, steps, query_vector, self._snapshot)

    def sequence_many(
        self, requests: Sequence[BuyerRequest], steps: int | Sequence[int]
    ) -> list[NurtureSequence | RecommenderError]:
        """A nurture sequence for each of many buyers, of `steps` assets (one length, or one per buyer);
        queries embedded together, a failure stays its own."""
        lengths = [steps] * len(requests) if isinstance(steps, int) else list(steps)
        if len(lengths) != len(requests):
            raise ValueError(f"{len(lengths)} sequence lengths for {len(requests)} requests")
        for length in lengths:
            _check_steps(length)
        return self._each(
            requests,
            lambda i, vector, snapshot, nearest: self._sequence(requests[i], lengths[i], vector, snapshot, nearest),
            more=[length - 1 for length in lengths],
        )

    def _each(
        self,
        requests: Sequence[BuyerRequest],
        answer: Callable[[int, np.ndarray | None, Snapshot, _Nearest], _Answer],
        more: Sequence[int] | None = None,
    ) -> list[_Answer | RecommenderError]:
        """`answer` for each request, by its position, over one snapshot, with the distinct queries embedded
        in one call and searched once each (`more`: the rows each request needs beyond its first ranking's)."""
        snapshot = self._snapshot
        more = more or [0] * len(requests)
        queries = list(dict.fromkeys(_normal_query(r.query) for r in requests if r.query))
        vectors = dict(zip(queries, self.embedder.encode(queries), strict=True)) if queries else {}
        together = self._nearest_together(snapshot, requests, more)
        out: list[_Answer | RecommenderError] = []
        for i, request in enumerate(requests):
            query = _normal_query(request.query) if request.query else None
            vector = vectors[query] if query else None
            # A read asset moves the query elsewhere: such a request searches on its own.
            nearest = together.get(query) if query and request.reading is None else None
            try:
                out.append(answer(i, vector, snapshot, nearest or _Nearest(snapshot, more[i])))
            except RecommenderError as exc:
                out.append(exc)
        return out

    def _nearest_together(
        self, snapshot: Snapshot, requests: Sequence[BuyerRequest], more: Sequence[int]
    ) -> dict[str, _Nearest]:
        """A `_Nearest` for each distinct query, asking for as many rows as the most its requests need: a
        campaign's contacts often share their query, and then share one search of the index."""
        config = self.config
        # Rows found for one request must not depend on which others came with it.
        most = min(ann.consistent_rows(snapshot.index), _SEARCHED_TOGETHER_MAX)
        wanted: dict[str, tuple[int, int]] = {}
        for request, extra in zip(requests, more, strict=True):
            if request.query and request.reading is None:
                query = _normal_query(request.query)
                need = max(config.candidates_min, config.candidates_per_k * request.k) + len(request.exclude) + extra
                least, most_more = wanted.get(query, (0, 0))
                wanted[query] = (max(least, need), max(most_more, extra))
        # Beyond `most` (a long exclusion list, say) the requests of a query search on their own.
        return {query: _Nearest(snapshot, extra, least=need) for query, (need, extra) in wanted.items() if need <= most}

    def _sequence(
        self,
        request: BuyerRequest,
        steps: int,
        query_vector: np.ndarray | None,
        snapshot: Snapshot,
        nearest: _Nearest | None = None,
    ) -> NurtureSequence:
        stage, source = self._resolved_stage(request, snapshot, snapshot.state)
        last = Stage.RETENTION if stage.position >= Stage.DECISION.position else Stage.DECISION
        stages = [s for s in Stage if stage.position <= s.position <= last.position]
        per_stage = [steps // len(stages) + (i < steps % len(stages)) for i in range(len(stages))]
        plan = [s for s, count in zip(stages, per_stage, strict=True) for _ in range(count)]
        seen: set[str] = set()
        out: list[NurtureStep] = []
        nearest = nearest or _Nearest(snapshot, more=len(plan) - 1)
        chosen_vectors = np.zeros((0, snapshot.dimension), dtype=np.float32)
        chosen_languages = np.zeros(0, dtype=np.int64)
        for step_stage in plan:
            step_request = request.model_copy(update={"stage": step_stage, "k": 1})
            result, vectors, languages = self._recommend(
                step_request,
                query_vector,
                snapshot,
                seen=(chosen_vectors, chosen_languages),
                also_exclude=seen,
                nearest=nearest,
            )
            if not result.items:
                break
            out.append(NurtureStep(stage=step_stage, item=result.items[0]))
            seen.add(result.items[0].id)
            chosen_vectors = np.vstack([chosen_vectors, vectors[:1]])
            chosen_languages = np.concatenate([chosen_languages, languages[:1]])
        return NurtureSequence(stage=stage, stage_source=source, steps=tuple(out), index_version=snapshot.version)

    def search(self, text: str, k: int = 10) -> list[tuple[str, float, Asset]]:
        """Plain semantic search: the k assets closest to `text`, with their cosine similarity."""
        snapshot = self._snapshot
        scores, rows = snapshot.search(self.embed_query(_normal_query(text)), k)
        ids = snapshot.ids_of(rows)
        assets = snapshot.assets(ids)
        return [(i, float(s), assets[i][0]) for i, s in zip(ids, scores, strict=True) if i in assets]

    # -- tagging and writes --------------------------------------------------------------------------

    def tag(self, assets: Sequence[Asset]) -> list[AssetLabels]:
        """Labels for assets (curated ones kept, the rest predicted), without storing anything."""
        return label_assets(assets, self.embedder.encode([a.text for a in assets]), self.tagger)

    def upsert(self, assets: Sequence[Asset]) -> int:
        """Insert or replace assets; durable when this returns. Returns the write's sequence number.

        An asset whose title and body the index holds unchanged keeps its vector: a CMS that changes a URL
        or a label does not wait for the model.
        """
        self.refresh()  # the served version's vectors are this model's (`_open` checks it)
        stored = self._snapshot.embedded([a.id for a in assets])
        vectors = np.empty((len(assets), self.embedder.dimension), dtype=np.float32)
        fresh = []
        for i, asset in enumerate(assets):
            text, vector = stored.get(asset.id, (None, None))
            if text == asset.text:
                vectors[i] = vector
            else:
                fresh.append(i)
        if fresh:
            vectors[fresh] = self.embedder.encode([assets[i].text for i in fresh])
        labels = label_assets(assets, vectors, self.tagger)
        return self._write(upserts=list(zip(assets, labels, vectors, strict=True)))

    def delete(self, ids: Sequence[str]) -> int:
        """Delete assets by id (AssetNotFound, and nothing deleted, if one is unknown)."""
        return self._write(deletes=ids)

    def _write(self, **changes: Any) -> int:
        # Writes go into the version this process serves, and only while it is current: a write into
        # a version it refused to load would be acknowledged and then never read.
        for _ in range(_WRITE_ATTEMPTS):
            self.refresh()
            current = self.store.current()
            if current != self.version and self._failed is not None and self._failed[0] == current:
                raise IndexCorrupt(
                    f"index version {current} is current but cannot be loaded, so writes are refused; "
                    f"rebuild the index or point CURRENT back at {self.version}"
                )
            try:
                seq = self.store.apply(**changes, version=self.version)
            except VersionChanged:
                continue  # a build published meanwhile: switch to it and write there
            self.refresh()
            return seq
        raise IndexCorrupt(f"the index version changed {_WRITE_ATTEMPTS} times during one write; try again")

    def get(self, asset_id: str) -> tuple[Asset, AssetLabels] | None:
        return self._snapshot.assets([asset_id]).get(asset_id)

    def info(self) -> dict[str, Any]:
        snapshot = self._snapshot
        manifest = snapshot.manifest
        counts = snapshot.counts()
        return {
            "version": manifest.version,
            "format_version": manifest.format_version,
            "model": _loadable_model(self.embedder),
            "model_spec": manifest.model,
            "dimension": manifest.dimension,
            "index_kind": manifest.index_kind,
            "asset_count": snapshot.asset_count,
            "languages": counts["language"],
            "asset_types": counts["asset_type"],
            "label_sources": counts["label_source"],
            "library_checksum": manifest.library_checksum,
            "built_at": manifest.built_at,
            "tagger_version": manifest.tagger_version,
            "pending_writes": len(snapshot.state.ids) + snapshot.state.dead_count,
            # Written by builds of later releases: `recommender compact` adds them without the model.
            "missing_files": [name for name in LATER_FILES if name not in manifest.files],
        }

    # -- internals -----------------------------------------------------------------------------------

    def _open(self, version: str) -> Snapshot:
        # A version verified before the fork is neither hashed again nor re-read: its pages are cached.
        fresh = version != self._verified
        snapshot = Snapshot(self.store, version, verify=self._verify and fresh, warm=fresh)
        if snapshot.manifest.model != self.embedder.name or snapshot.dimension != self.embedder.dimension:
            raise ModelError(
                f"index version {version} was built with model '{snapshot.manifest.model}' "
                f"({snapshot.dimension} dimensions) but '{self.embedder.name}' ({self.embedder.dimension} "
                f"dimensions) is loaded; load the index with that model or rebuild it"
            )
        return snapshot

    def _recently_failed(self, version: str) -> bool:
        return (
            self._failed is not None
            and self._failed[0] == version
            and time.monotonic() - self._failed[1] < _RELOAD_RETRY_SECONDS
        )

    def _embed_query(self, query: str) -> np.ndarray:
        vector = self.embedder.encode_query(query)
        vector.setflags(write=False)
        return vector

    def _recommend(
        self,
        request: BuyerRequest,
        query_vector: np.ndarray | None,
        snapshot: Snapshot,
        seen: tuple[np.ndarray, np.ndarray] | None = None,
        also_exclude: set[str] | frozenset[str] = frozenset(),
        nearest: _Nearest | None = None,
    ) -> tuple[RecommendationResult, np.ndarray, np.ndarray]:
        """The result, and the vectors and languages of its items in order (a sequence avoids their
        look-alikes: `seen` are those of the items it already holds, and `nearest` its query's neighbours)."""
        state = snapshot.state
        read = self._reading(request.reading, snapshot, state) if request.reading is not None else None
        stage, source = self._resolved_stage(request, snapshot, state, read)
        excluded = snapshot.resolve(request.exclude, state) | also_exclude
        language = language_code(request.language) if request.language else None
        if read is not None:
            read_id, read_vector, read_language, _ = read
            query_vector = read_vector if query_vector is None else _unit(query_vector + read_vector)
            excluded.add(read_id)
            # Shown already, in effect: its near-copies and translations pay as a sequence's earlier steps do.
            seen = (
                (read_vector[None, :], np.array([read_language]))
                if seen is None
                else (np.vstack([seen[0], read_vector]), np.append(seen[1], read_language))
            )
            language = read_language if language is None else language
        context = BuyerContext(
            segment=request.segment,
            stage=stage,
            role=request.role,
            language=language,
            today=(self._today() - _EPOCH).days,
        )
        rows, vectors, similarity = self._candidates(
            snapshot, state, context, request, query_vector, excluded, nearest or _Nearest(snapshot)
        )
        features = snapshot.features_of(rows, state)
        if similarity is not None:
            similarity = self._centred(similarity, query_vector, snapshot, features)
        translations = None
        if similarity is not None:
            translations = self._translation_pairs(similarity, vectors, features, context)
            if context.language is not None:
                own = features.language[translations[:, 0]] == context.language
                similarity = ranking.transfer_relevance(similarity, translations[own])
        components = ranking.score_components(features, similarity, context, self.config)
        if translations is None:
            translations = self._translation_pairs(ranking.total(components), vectors, features, context)
        selection = ranking.select(
            components,
            vectors,
            features.asset_type,
            request.k,
            self.config,
            seen=seen[0] if seen is not None else None,
            languages=features.language,
            seen_languages=seen[1] if seen is not None else None,
            preferred=context.language,
            translations=translations,
        )
        chosen_ids = snapshot.ids_of(rows[selection.positions], state)
        assets = snapshot.documents(chosen_ids)
        # An item deleted by another process since the snapshot was taken is dropped.
        found = [i for i, asset_id in enumerate(chosen_ids) if asset_id in assets]
        # Built from values checked where they came from: validating them again would only cost time.
        items = tuple(
            RecommendedItem.model_construct(
                id=chosen_ids[i],
                score=round(float(selection.scores[i]), 6),
                reasons=_rounded(selection.reasons[i]),
                asset=assets[chosen_ids[i]],
            )
            for i in found
        )
        result = RecommendationResult(stage=stage, stage_source=source, items=items, index_version=snapshot.version)
        chosen = selection.positions[found]
        return result, vectors[chosen], features.language[chosen]

    def _resolved_stage(
        self,
        request: BuyerRequest,
        snapshot: Snapshot,
        state: Any,
        read: tuple[str, np.ndarray, int, np.ndarray] | None = None,
    ) -> tuple[Stage, StageSource]:
        """The request's stage and where it came from; `read` is what `_reading` found, when already known."""
        stage, source = resolve_stage(
            request.segment, request.stage, request.signals, self.config.stage_signals, self.config.default_stage
        )
        if source.kind == "default" and request.reading is not None and self.config.stage_from_reading:
            read_id, _, _, read_stages = read or self._reading(request.reading, snapshot, state)
            # The last of the best: the furthest evidence decides, as among signals.
            stage = list(Stage)[int(np.flatnonzero(read_stages == read_stages.max())[-1])]
            source = StageSource(kind="reading", asset=read_id)
        return stage, source

    def _reading(self, ref: str, snapshot: Snapshot, state: Any) -> tuple[str, np.ndarray, int, np.ndarray]:
        """The id, stored vector, language code and stage confidences of the asset a buyer is reading
        (named by id or URL)."""
        row = snapshot.row_of(ref, state)
        if row is None:
            hint = "give an indexed asset's id or URL"
            if is_url(ref) and snapshot.url_index is None:
                hint = "this index predates finding assets by URL: run `recommender compact` to add it"
            raise UnknownReading(f"reading names no asset in the index ('{ref}'); {hint}")
        rows = np.array([row])
        features = snapshot.features_of(rows, state)
        vector = snapshot.vectors_of(rows, state)[0]
        return snapshot.ids_of(rows, state)[0], vector, int(features.language[0]), features.stages[0]

    def _centred(
        self, similarity: np.ndarray, query_vector: np.ndarray, snapshot: Snapshot, features: FeatureTable
    ) -> np.ndarray:
        """The relevance without the model's lean towards the query's language and style (ranking.group_lean)."""
        config = self.config
        for share, means, counts, groups in (
            (config.language_centring, snapshot.language_means, snapshot.language_counts, features.language),
            (config.type_centring, snapshot.type_means, snapshot.type_counts, features.asset_type),
        ):
            if share > 0 and means is not None:
                similarity = similarity - share * ranking.group_lean(means, counts, query_vector)[groups]
        return similarity

    def _translation_pairs(
        self, order: np.ndarray, vectors: np.ndarray, features: FeatureTable, context: BuyerContext
    ) -> np.ndarray:
        return ranking.translation_pairs(
            order,
            vectors,
            features.language,
            context.language,
            self.config.translation_threshold,
            self.config.translation_floor,
        )

    def _candidates(
        self,
        snapshot: Snapshot,
        state: Any,
        context: BuyerContext,
        request: BuyerRequest,
        query_vector: np.ndarray | None,
        excluded: set[str],
        nearest: _Nearest,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Rows worth scoring (the nearest to the query and the best buyer fits, minus excluded ones),
        their vectors, and their relevance to the query.

        Nothing here touches every asset: the query's neighbours come from FAISS, and the best buyer
        fits are computed once per (buyer, version) and cached.
        """
        config = self.config
        wanted = max(config.candidates_min, config.candidates_per_k * request.k) + len(excluded)
        fits = self._static_candidates(snapshot, state, context, request.asset_types, wanted)
        if query_vector is not None:
            rows = np.unique(np.concatenate([nearest(query_vector, wanted, state), fits]))
        else:
            rows = fits
        if request.asset_types:
            rows = rows[_of_types(snapshot.features_of(rows, state), request.asset_types)]
        if excluded and len(rows):
            rows = rows[[i not in excluded for i in snapshot.ids_of(rows, state)]]
        vectors = snapshot.vectors_of(rows, state)
        similarity = None
        if query_vector is not None:
            similarity = ranking.cosines(vectors, query_vector)
            if config.neighbour_weight > 0:
                means, has_neighbours = snapshot.neighbour_means_of(rows, state)
                similarity = ranking.smoothed_relevance(
                    similarity, ranking.cosines(means, query_vector), has_neighbours, config.neighbour_weight
                )
        return rows, vectors, similarity

    def _static_candidates(
        self, snapshot: Snapshot, state: Any, context: BuyerContext, asset_types: Sequence[Any], n: int
    ) -> np.ndarray:
        """The `n` best buyer fits without a query, best first.

        Kept per buyer and version, longer than asked (a visitor's exclusions ask for more), and
        brought up to date after a write from the written rows alone: ranking a million assets
        takes tens of milliseconds, a write should not make every buyer pay that again.
        """
        key = (snapshot.version, context, tuple(asset_types))
        cached = fits = self._static_cache.get(key)
        if fits is not None and fits.seq != state.seq:
            # A request that took its state before another one's refresh finds a newer list.
            fits = self._updated_fits(fits, snapshot, state, context, asset_types) if fits.seq < state.seq else None
        if fits is None or (len(fits.rows) < n and not fits.whole):
            fits = self._ranked_fits(snapshot, state, context, asset_types, 2 * n)
        if cached is None or cached.seq <= fits.seq:
            if len(self._static_cache) > 1024:
                self._static_cache.clear()
            self._static_cache[key] = fits
        return fits.rows[:n]

    def _ranked_fits(
        self, snapshot: Snapshot, state: Any, context: BuyerContext, asset_types: Sequence[Any], count: int
    ) -> _Fits:
        rows = snapshot.living_rows(state)
        if not state.dead_count and not state.ids:
            features = snapshot.features  # every base row lives: read the arrays in place, copy nothing
        else:
            features = snapshot.features_of(rows, state)
        if asset_types:
            keep = _of_types(features, asset_types)
            rows, features = rows[keep], features.take(keep)
        totals = self._fit_totals(features, context)
        best = _best(totals, rows, count)
        return _Fits(state.seq, len(state.ids), state.renumberings, rows[best], totals[best], len(rows) <= count)

    def _updated_fits(
        self, fits: _Fits, snapshot: Snapshot, state: Any, context: BuyerContext, asset_types: Sequence[Any]
    ) -> _Fits | None:
        """`fits` after the writes since it was made, or None when the delta was renumbered meanwhile.

        Rows rewritten or deleted leave the list, and what stays is still the exact top of what
        lives; rows written since are scored and merged in, and only those ranking within the list
        stay (unless it holds every row), so the list shrinks with deletes until it is ranked anew.
        """
        if fits.renumberings != state.renumberings:
            return None
        alive = snapshot.is_living(fits.rows, state)
        rows, totals = fits.rows[alive], fits.totals[alive]
        written = np.arange(fits.delta_rows, len(state.ids))
        written = written[~state.superseded[written]] + snapshot.base_count
        features = snapshot.features_of(written, state)
        if asset_types:
            keep = _of_types(features, asset_types)
            written, features = written[keep], features.take(keep)
        rows = np.concatenate([rows, written])
        totals = np.concatenate([totals, self._fit_totals(features, context)])
        order = np.lexsort((rows, -totals))[: len(rows) if fits.whole else int(alive.sum())]
        return _Fits(state.seq, len(state.ids), state.renumberings, rows[order], totals[order], fits.whole)

    def _fit_totals(self, features: Any, context: BuyerContext) -> np.ndarray:
        return ranking.total(ranking.score_components(features, None, context, self.config))


class _Nearest:
    """The rows nearest a query vector, best first, searched once for several rankings with that query.

    Each step of a sequence ranks with the same query and excludes one asset more than the step before,
    so asking `more` rows beyond the first step's need serves every later step from one search: at
    100,000 assets an exact search is most of a step's time. Requests sharing a query share one, asking
    for at `least` as many rows as the most any of them needs; a ranking that needs more searches again.
    """

    def __init__(self, snapshot: Snapshot, more: int = 0, *, least: int = 0) -> None:
        self._snapshot = snapshot
        self._more = more
        self._least = least
        self._found: tuple[Any, np.ndarray, int, np.ndarray] | None = None  # state, query, rows asked, rows

    def __call__(self, query: np.ndarray, n: int, state: Any) -> np.ndarray:
        found = self._found
        if found is None or found[0] is not state or found[2] < n or not np.array_equal(found[1], query):
            asked = max(n + self._more, self._least)
            found = self._found = (state, query, asked, self._snapshot.search(query, asked, state)[1])
        return found[3][:n]


@dataclass(frozen=True)
class _Fits:
    """One buyer's best fits without a query, best first (equal totals by row): the exact top of the
    living rows as of write `seq`, or all of them (`whole`)."""

    seq: int
    delta_rows: int  # rows the delta held then: later ones are new
    renumberings: int
    rows: np.ndarray
    totals: np.ndarray
    whole: bool


def _of_types(features: Any, asset_types: Sequence[Any]) -> np.ndarray:
    return np.isin(features.asset_type, np.array([ASSET_TYPES.index(t) for t in asset_types]))


def _best(totals: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """Positions of the `count` largest totals, largest first, equal ones by row: exact, ties included.

    Only rows at or above a bar are sorted. The bar comes from a sample, set so that about four
    times `count` rows clear it (a pass over the library, not a partition of it: ~1 ms instead of
    ~12 at a million); if fewer than `count` do, it is the exact count-th largest instead.
    """
    n = len(totals)
    if n > count:
        step = max(n // (16 * count), 1)
        sample = np.sort(totals[::step])
        bar = sample[max(len(sample) - 1 - 4 * count // step, 0)]
        chosen = np.flatnonzero(totals >= bar)
        if len(chosen) < count:
            bar = np.partition(totals, n - count)[n - count]
            chosen = np.flatnonzero(totals >= bar)
    else:
        chosen = np.arange(n)
    return chosen[np.lexsort((rows[chosen], -totals[chosen]))[:count]]


def single_blas_thread() -> None:
    """Run numpy's BLAS on one thread for the rest of this process; call it once in a serving process.

    A request's products are a few hundred rows: OpenBLAS splits them over its threads anyway, and
    those threads then spin on the other cores between calls. Measured at a million assets: a request
    with a query cost twice its wall-clock time in CPU time, and took no less time, with two threads
    (benchmarks/NOTES.md). The model's own threads (torch) and FAISS's are not BLAS's and keep theirs.
    """
    threadpool_limits(1, user_api="blas")


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def _normal_query(query: str) -> str:
    return " ".join(query.split())


def _rounded(reasons: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in reasons.items()}


def _loadable_model(embedder: Embedder) -> str:
    """A name or path that `SentenceTransformer(model)` loads offline (for scripts reading `info`)."""
    parts = getattr(embedder, "parts", [embedder])
    for part in parts:
        path = getattr(part, "path", None)
        if path:
            return str(path)
    return embedder.name


def _default_tagger(model: str) -> Tagger | None:
    from models import TAGGER_DIR

    try:
        tagger = Tagger.load(TAGGER_DIR)
    except ModelError as exc:
        log.warning("no usable shipped tagger: %s", exc)
        return None
    return tagger if tagger.model_ == model else None
