"""Scoring candidates for a buyer and choosing a diverse top k, vectorised over candidate arrays.

An item's score is the sum of weighted components, each in [0, 1] before weighting (see
`RankingWeights`), minus a diversity penalty; the components are the reasons shown to users, and
they add up to the score exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from content_library.schema import Role, Segment, Stage
from recommender.config import RankingConfig
from recommender.features import ASSET_TYPES, NO_DATE, ROLES, SEGMENTS, FeatureTable

COMPONENTS = ("relevance", "segment", "role", "stage", "type_prior", "language", "freshness", "diversity")
#: Freshness of an asset without a publication date: neither favoured nor buried.
_UNKNOWN_FRESHNESS = 0.5
#: Rows per matrix-vector product in `cosines`: below OpenBLAS's threading threshold.
_BLOCK = 256
#: Other-language candidates, most relevant first, whose translations may inherit their relevance.
_ORIGINALS = 32
#: Assets a language or an asset type needs before its lean counts half (`group_lean`): the mean of a
#: few assets is mostly their own topic, not the model's leaning towards their language or style.
_GROUP_PRIOR = 10.0
_NO_PAIRS = np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class BuyerContext:
    """A resolved request: everything the scoring needs, nothing it must look up."""

    segment: Segment
    stage: Stage
    role: Role | None = None
    language: int | None = None  # features.language_code of the preferred language
    today: int = 0  # days since 1970-01-01, for freshness


def score_components(
    features: FeatureTable,
    similarity: np.ndarray | None,
    context: BuyerContext,
    config: RankingConfig,
) -> dict[str, np.ndarray]:
    """Weighted components for n candidates. `similarity` (n,) is query-asset cosine, or None."""
    w = config.weights
    n = len(features)
    out: dict[str, np.ndarray] = {}
    if similarity is not None:
        out["relevance"] = w.relevance * np.clip(similarity, 0.0, 1.0).astype(np.float32)
    out["segment"] = w.segment * features.segments[:, SEGMENTS.index(context.segment)]
    if context.role is not None:
        out["role"] = w.role * features.roles[:, ROLES.index(context.role)]
    closeness = np.array(
        [config.stage_closeness[abs(s.position - context.stage.position)] for s in Stage], dtype=np.float32
    )
    out["stage"] = w.stage * _row_max(features.stages, closeness)
    priors = np.array(
        [config.type_priors.prior(context.segment, context.stage, t) for t in ASSET_TYPES], dtype=np.float32
    )
    out["type_prior"] = w.type_prior * priors[features.asset_type.astype(np.int64)]
    if context.language is not None:
        out["language"] = w.language * (features.language == context.language).astype(np.float32)
    age = np.maximum(context.today - features.published, 0).astype(np.float32)
    fresh = np.where(features.published == NO_DATE, _UNKNOWN_FRESHNESS, 0.5 ** (age / config.freshness_half_life_days))
    out["freshness"] = (w.freshness * fresh).astype(np.float32)
    for name, values in out.items():
        if values.shape != (n,):
            raise ValueError(f"component {name} has shape {values.shape}, expected ({n},)")
    return out


def _row_max(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`(values * weights).max(axis=1)` for (n, m) values with small m, column by column.

    numpy reduces a short row slowly: over a million rows of 4 this is several times faster,
    and the floats are the same (a product is the same product, a maximum is exact).
    """
    out = values[:, 0] * weights[0]
    for j in range(1, values.shape[1]):
        np.maximum(out, values[:, j] * weights[j], out=out)
    return out


def cosines(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`vectors @ query` for (n, d) vectors and a (d,) query, computed on the calling thread.

    BLAS splits a product of more than a few hundred rows over its threads, which on a busy
    machine spin more than they work (40x the CPU time for 2,000 rows on 2 cores, see
    benchmarks/NOTES.md); blocks below that size stay on one thread and give the same floats.
    """
    if len(vectors) <= _BLOCK:
        return vectors @ query
    return np.concatenate([vectors[i : i + _BLOCK] @ query for i in range(0, len(vectors), _BLOCK)])


def total(components: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of the components in their order: float for float what `np.sum(..., axis=0)` gives,
    without stacking them into one (components, n) copy first."""
    values = iter(components.values())
    out = np.array(next(values), copy=True)
    for value in values:
        out += value
    return out


def smoothed_relevance(
    similarity: np.ndarray, neighbour_similarity: np.ndarray, has_neighbours: np.ndarray, weight: float
) -> np.ndarray:
    """(own + weight * neighbours' mean) / (1 + weight) per candidate; its own where it has none.

    `similarity` (n,) is each candidate's cosine to the query, `neighbour_similarity` (n,) the mean
    of its neighbours' cosines to it (the query against their mean vector).
    """
    blended = (similarity + weight * neighbour_similarity) / (1.0 + weight)
    return np.where(has_neighbours, blended, similarity).astype(np.float32)


def group_lean(means: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per group code (a language or an asset type), how much more similar to `query` that group's assets
    are on average than the library's, shrunk towards 0 for groups with few assets.

    `means` (codes, d) are each group's mean vector and `counts` (codes,) its assets. Embedding models
    rate a query closer to texts that share its language or its style whatever their topic: a German
    query sits closer to an off-topic German asset than to an on-topic English one, and a query closer
    to the assets of a type written in a style like its own. Taking this lean out of the
    relevance lets the topic decide, and leaves language and type to their own components. The mean of
    a handful of assets is mostly their own topic, hence the shrinkage.
    """
    out = np.zeros(len(counts), dtype=np.float32)
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return out
    per_group = means[present] @ query
    library = float(counts[present] @ per_group) / float(counts[present].sum())
    out[present] = counts[present] / (counts[present] + _GROUP_PRIOR) * (per_group - library)
    return out


@dataclass(frozen=True)
class Selection:
    """Chosen candidates in rank order: `positions` index the candidate arrays."""

    positions: np.ndarray
    scores: np.ndarray
    reasons: list[dict[str, float]]


def translation_pairs(
    order: np.ndarray,
    vectors: np.ndarray,
    languages: np.ndarray,
    preferred: int | None,
    threshold: float,
    floor: float,
) -> np.ndarray:
    """Candidates taken for translations of each other, as (p, 2) positions: once the first of a pair
    is chosen, the second pays the full diversity penalty (`select`).

    A pair is taken when it is at least `threshold` similar, or at least `floor` similar and each is
    the other's most similar candidate across its two languages (a mutual best match: a translation
    whose wording drifted usually is, two merely related assets rarely). Only the candidates first in
    `order` (relevance to the query, or buyer fit without one) can reach the list, and comparing the
    few best of them keeps this to small products (0.1-0.3 ms at 200 candidates). Without the
    visitor's language (`preferred`) those are compared with each other, and each pair appears both
    ways round. With it, each candidate in the visitor's language is compared with them, giving pairs
    (the visitor's version, the other), and those in other languages are compared with each other as
    before: a German visitor should not get the English and the Indonesian version of one text either.
    """
    if threshold >= 1.0:
        return _NO_PAIRS
    ranked = np.argsort(-order, kind="stable")
    if preferred is None:
        best = ranked[:_ORIGINALS]
        return _pairs_between(best, best, vectors, languages, threshold, floor)
    others = ranked[languages[ranked] != preferred][:_ORIGINALS]
    mine = _pairs_between(np.flatnonzero(languages == preferred), others, vectors, languages, threshold, floor)
    return np.concatenate([mine, _pairs_between(others, others, vectors, languages, threshold, floor)])


def _pairs_between(
    rows: np.ndarray, columns: np.ndarray, vectors: np.ndarray, languages: np.ndarray, threshold: float, floor: float
) -> np.ndarray:
    """(row, column) positions taken for translations, each language of `rows` and of `columns` a
    group of its own."""
    if len(rows) == 0 or len(columns) == 0:
        return _NO_PAIRS
    between = vectors[rows] @ vectors[columns].T
    first, second = np.nonzero(taken_for_translations(between, threshold, floor, languages[rows], languages[columns]))
    return np.column_stack([rows[first], columns[second]])


def taken_for_translations(
    between: np.ndarray,
    threshold: float,
    floor: float,
    row_languages: np.ndarray | None = None,
    column_languages: np.ndarray | None = None,
) -> np.ndarray:
    """Which pairs of two groups of assets are taken for translations, from their (m, k) cosines
    `between`: those at least `threshold` similar, and those at least `floor` similar that are each
    other's most similar in the other group. Without languages each group is in one language; with
    them, the assets of each language form a group of their own, and pairs in one language are never
    taken."""
    if row_languages is None or column_languages is None:
        row_languages = np.zeros(between.shape[0], dtype=np.int64)
        column_languages = np.ones(between.shape[1], dtype=np.int64)
    if between.size == 0:
        return np.zeros(between.shape, dtype=bool)
    row_best = np.empty_like(between)
    for language in np.unique(column_languages):
        group = column_languages == language
        row_best[:, group] = between[:, group].max(axis=1, keepdims=True)
    column_best = np.empty_like(between)
    for language in np.unique(row_languages):
        group = row_languages == language
        column_best[group] = between[group].max(axis=0, keepdims=True)
    mutual = (between == row_best) & (between == column_best)
    apart = row_languages[:, None] != column_languages[None, :]
    return apart & ((between >= threshold) | (mutual & (between >= floor)))


def transfer_relevance(similarity: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Relevance with the first of each pair (the visitor's version: pass only such pairs) raised to
    that of the second (the version it translates), when higher.

    A visitor reading German who asks in English should get the German version of the best English
    match: the query's language otherwise gives the original a lead that no language bonus closes
    without also pushing off-topic German assets up.
    """
    out = similarity.copy()
    np.maximum.at(out, pairs[:, 0], similarity[pairs[:, 1]])
    return out


def _translations_of(
    seen: np.ndarray, seen_languages: np.ndarray, vectors: np.ndarray, languages: np.ndarray, config: RankingConfig
) -> np.ndarray:
    """Positions of candidates taken for translations of items shown before (`seen`), by the rule of
    `translation_pairs`. The seen items are compared alongside the candidates, so that a mutual best
    match means what it means within one list: each is the other's most similar."""
    threshold, floor = config.translation_threshold, config.translation_floor
    to_seen = np.where(seen_languages[:, None] != languages[None, :], seen @ vectors.T, -1.0)
    # Only candidates this close to a seen item can be taken, and each seen item's best match is
    # among them whenever it could count: the comparison needs only these few columns.
    near = np.flatnonzero(to_seen.max(axis=0) >= min(threshold, floor))
    if len(near) == 0:
        return near
    between = np.vstack([seen, vectors]) @ vectors[near].T
    row_languages = np.concatenate([seen_languages, languages])
    taken = taken_for_translations(between, threshold, floor, row_languages, languages[near])
    return near[taken[: len(seen)].any(axis=0)]


def select(
    components: dict[str, np.ndarray],
    vectors: np.ndarray,
    asset_types: np.ndarray,
    k: int,
    config: RankingConfig,
    seen: np.ndarray | None = None,
    *,
    languages: np.ndarray | None = None,
    seen_languages: np.ndarray | None = None,
    preferred: int | None = None,
    translations: np.ndarray | None = None,
) -> Selection:
    """Greedy maximal-marginal-relevance selection of k candidates, with a cap per asset type.

    `vectors` (n, d) are the candidates' embeddings. A candidate as similar as
    `diversity_threshold` or more to one already chosen pays a penalty growing linearly to
    `diversity` for an identical vector, so near-duplicates (an asset and its translation, two
    versions of one datasheet) do not fill the list while on-topic variety stays. With the
    candidates' `languages`, a candidate in another language than a chosen item and at least
    `translation_threshold` similar to it is taken for its translation and pays the full penalty,
    except a candidate in the visitor's language (`preferred`) when the chosen item is not: the
    visitor still wants their own version. So does the second of each pair in `translations` (from
    `translation_pairs`) once the first is chosen. `seen` (m, d) are vectors of items shown before
    (earlier steps of a sequence), in `seen_languages`: they count as chosen, and their translations
    (by the rule of `translation_pairs`) pay the full penalty. The result is sorted by final score.
    """
    names = [name for name in COMPONENTS if name in components]
    base = np.sum([components[name] for name in names], axis=0) if names else np.zeros(len(asset_types))
    n = len(base)
    penalty = np.zeros(n, dtype=np.float64)
    chosen = np.zeros(n, dtype=bool)
    available = np.ones(n, dtype=bool)
    type_counts = np.zeros(len(ASSET_TYPES), dtype=np.int64)
    threshold = config.diversity_threshold
    translating = languages is not None and config.translation_threshold < 1.0

    def similar(to: np.ndarray, language: int | None) -> np.ndarray:
        similarity = cosines(vectors, to)
        if translating and language is not None:
            other = languages != language
            if preferred is not None and language != preferred:
                other &= languages != preferred  # the visitor's version is still wanted
            similarity = np.where(other & (similarity >= config.translation_threshold), 1.0, similarity)
        return config.diversity * np.clip((similarity - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)

    if config.diversity > 0 and seen is not None and len(seen):
        # Their translations, at the threshold too, are `_translations_of`'s: plain similarity here.
        penalty = np.max([similar(v, None) for v in seen], axis=0)
        if translating and seen_languages is not None:
            repeats = _translations_of(seen, seen_languages, vectors, languages, config)
            penalty[repeats] = config.diversity
    positions, scores, reasons = [], [], []
    for _ in range(min(k, n)):
        if not available.any():
            available = ~chosen  # the type cap left too few candidates: fill up regardless
        adjusted = np.where(available, base - penalty, -np.inf)
        pick = int(np.argmax(adjusted))
        reason = {name: float(components[name][pick]) for name in names}
        reason["diversity"] = -float(penalty[pick])
        positions.append(pick)
        scores.append(float(sum(reason.values())))
        reasons.append(reason)
        chosen[pick] = True
        available[pick] = False
        kind = int(asset_types[pick])
        type_counts[kind] += 1
        if config.max_per_type and type_counts[kind] >= config.max_per_type:
            available &= asset_types != kind
        if config.diversity > 0:
            penalty = np.maximum(penalty, similar(vectors[pick], None if languages is None else languages[pick]))
            if translations is not None:
                penalty[translations[translations[:, 0] == pick, 1]] = config.diversity
    # Filling up past the type cap can pick an item that outscores the one before it.
    order = np.argsort(-np.asarray(scores), kind="stable")
    return Selection(
        np.asarray(positions, dtype=np.int64)[order], np.asarray(scores)[order], [reasons[i] for i in order]
    )
