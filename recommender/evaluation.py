"""Measuring ranking quality: nDCG@k and precision@k for the engine and its baselines in one run.

Baselines, given the request's words (its query plus the words of its segment, role, stage
and signals), as a search box or a vector database would get them:

* BM25 over title and body (rank_bm25's Okapi BM25);
* plain dense retrieval: cosine of the request words' embedding, same model as the index;
* dense retrieval filtered by curated labels ("dense+labels"): the same cosine over only the assets
  whose curated segments and stages include the request's segment and stage, which is what a vector
  database over a fully hand-tagged library gives. Reported when the assets' curated labels are known
  (`evaluate-holdout`, or an index whose assets all carry curated segments and stages).

Gains are the judged grades (0-3) and unjudged assets count 0; nDCG uses linear gain and
log2 discount (trec_eval's convention). An item is relevant for precision at grade 2 or more. How far the
means could move on other requests: `confidence_intervals` (bootstrap over the requests).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter, ValidationError

from content_library import is_absent
from content_library.schema import Asset, Stage, StageName
from recommender.config import RankingConfig
from recommender.embeddings import Embedder
from recommender.engine import Recommender
from recommender.errors import RecommenderError
from recommender.ranking import taken_for_translations
from recommender.signals import resolve_stage
from recommender.types import AssetLabels, BuyerRequest, LabelSource

RELEVANT_GRADE = 2
_TOKEN = re.compile(r"\w+", re.UNICODE)
#: Judged stages are read as a request reads its stage (`Decision` is decision).
_STAGE = TypeAdapter(StageName)


@dataclass(frozen=True)
class EvalRequest:
    qid: str
    request: BuyerRequest
    #: Fields of the request line that are not a request's, left out (a judge's notes, say).
    ignored: tuple[str, ...] = ()


@dataclass
class SystemScores:
    """Per-query metric values of one system, keyed by qid."""

    ndcg: dict[str, float] = field(default_factory=dict)
    precision: dict[str, float] = field(default_factory=dict)
    ranked: dict[str, list[str]] = field(default_factory=dict)  # the ids it listed, best first


@dataclass(frozen=True)
class EvaluationReport:
    k: int
    systems: dict[str, SystemScores]
    groups: dict[str, dict[str, list[str]]]  # breakdown name -> group value -> qids

    def table(self) -> list[dict[str, object]]:
        """One row per (breakdown, group, system): mean nDCG@k and precision@k, and the query count."""
        rows = []
        for breakdown, groups in {"overall": {"all": list(self._qids())}, **self.groups}.items():
            for group, qids in sorted(groups.items()):
                for system, scores in self.systems.items():
                    rows.append(
                        {
                            "breakdown": breakdown,
                            "group": group,
                            "system": system,
                            "queries": len(qids),
                            f"ndcg@{self.k}": _mean(scores.ndcg[q] for q in qids),
                            f"precision@{self.k}": _mean(scores.precision[q] for q in qids),
                        }
                    )
        return rows

    def _qids(self) -> Iterable[str]:
        return next(iter(self.systems.values())).ndcg.keys()


def ndcg_at_k(ranked: Sequence[str], grades: dict[str, int], k: int) -> float:
    """nDCG@k of a ranked id list against graded judgements; 0.0 when nothing is relevant."""
    dcg = sum(grades.get(i, 0) / math.log2(rank + 2) for rank, i in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def precision_at_k(ranked: Sequence[str], grades: dict[str, int], k: int) -> float:
    return sum(grades.get(i, 0) >= RELEVANT_GRADE for i in ranked[:k]) / k


def read_requests(path: str | Path) -> list[EvalRequest]:
    """Request lines: the fields of BuyerRequest plus a `qid`.

    As in a library file, a field that is null or empty is absent, and other fields (a judge's notes,
    the stage a marketer expects) are left out and named in `EvalRequest.ignored`.
    """
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
            if "qid" not in raw:
                raise ValueError("no qid")
            qid = str(raw.pop("qid"))
            fields = {name: value for name, value in raw.items() if name in BuyerRequest.model_fields}
            given = {name: value for name, value in fields.items() if not is_absent(value)}
            ignored = tuple(name for name in raw if name not in fields)
            out.append(EvalRequest(qid, BuyerRequest.model_validate(given), ignored))
        except ValidationError as exc:
            # One line per file line: pydantic's own message spans several.
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
            raise RecommenderError(f"{path}, line {number}: not a valid request ({problems})") from exc
        except ValueError as exc:
            raise RecommenderError(f"{path}, line {number}: not a request with a qid ({exc})") from exc
    return out


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgement lines: {"qid": ..., "id": ..., "grade": 0..3}, or TREC's `qid 0 id grade`.

    A grade may be written 3, 3.0 or "3"; 2.5, true or 4 are refused rather than rounded.
    """
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            qid, asset_id, grade = _judgement(line)
            out[qid][asset_id] = grade
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise RecommenderError(f"{path}, line {number}: not a judgement qid/id/grade ({exc})") from exc
    return dict(out)


def _judgement(line: str) -> tuple[str, str, int]:
    fields = line.split()
    if len(fields) == 4 and not line.lstrip().startswith("{"):
        qid, _, asset_id, written = fields  # TREC: the second column is unused
    else:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("expected a JSON object or a TREC line 'qid 0 id grade'")
        qid, asset_id, written = raw["qid"], raw["id"], raw["grade"]
    grade = written
    if isinstance(written, str) and written.strip().isdigit():
        grade = int(written)
    elif isinstance(written, float) and written.is_integer():
        grade = int(written)
    # int() would quietly turn a grade of 2.5 into 2 and `true` into 1.
    if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= 3:
        raise ValueError(f"grade {written!r} is not an integer from 0 to 3")
    return str(qid), str(asset_id), grade


def read_expected_stages(path: str | Path) -> dict[str, Stage]:
    """Judged stages: lines with a `qid` and an `expected_stage` (other fields are ignored)."""
    out = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out[str(raw["qid"])] = _STAGE.validate_python(raw["expected_stage"])
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise RecommenderError(f"{path}, line {number}: not a judged stage qid/expected_stage ({exc})") from exc
    return out


@dataclass(frozen=True)
class StageAgreement:
    """How often the stage the engine infers is the one a person judged, over requests that do not
    give their stage (from signals, or the default when there are none). A request whose stage comes
    from the asset it is reading is not counted: that stage is the tagger's, not an inference."""

    agree: int
    judged: int
    misses: tuple[tuple[str, str, str], ...]  # (qid, judged stage, inferred stage)

    @property
    def rate(self) -> float:
        return self.agree / self.judged if self.judged else float("nan")

    def line(self) -> str:
        missed = "".join(f"\n  {qid}: judged {judged}, inferred {inferred}" for qid, judged, inferred in self.misses)
        return (
            f"Stage inference: {self.agree} of {self.judged} requests without a given stage agree with the "
            f"judged stage ({self.rate:.1%}){missed}"
        )

    def as_dict(self) -> dict[str, object]:
        return {"agree": self.agree, "judged": self.judged, "rate": round(self.rate, 4), "misses": self.misses}


def stage_agreement(
    requests: Sequence[EvalRequest], expected: dict[str, Stage], config: RankingConfig
) -> StageAgreement:
    agree, judged, misses = 0, 0, []
    for item in requests:
        request = item.request
        if request.stage is not None or item.qid not in expected:
            continue
        if request.reading is not None and not request.signals and config.stage_from_reading:
            continue  # its stage is the read asset's, known only to an index: not inferred from signals
        inferred, _ = resolve_stage(request.segment, None, request.signals, config.stage_signals, config.default_stage)
        judged += 1
        if inferred == expected[item.qid]:
            agree += 1
        else:
            misses.append((item.qid, expected[item.qid].value, inferred.value))
    return StageAgreement(agree, judged, tuple(misses))


@dataclass(frozen=True)
class TranslationAgreement:
    """How well the engine's rule (`translation_threshold`, or a mutual best match at least
    `translation_floor` similar) tells an asset's translations from the other assets in another
    language of the same site, over every cross-language pair of a site's assets."""

    threshold: float
    floor: float
    pairs: int  # known translation pairs
    found: int  # of those, taken for translations
    others: int  # other cross-language pairs
    false: int  # of those, taken for translations

    @property
    def f1(self) -> float:
        return 2 * self.found / (self.pairs + self.found + self.false) if self.pairs else float("nan")

    def line(self) -> str:
        return (
            f"Translation detection (threshold {self.threshold:g}, mutual best from {self.floor:g}): {self.found} "
            f"of {self.pairs} translation pairs found, {self.false} of {self.others} other cross-language pairs "
            f"taken for translations (F1 {self.f1:.3f})"
        )

    def as_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "f1": round(self.f1, 4)}


def translation_agreement(
    assets: Sequence[Asset], embeddings: np.ndarray, threshold: float, floor: float
) -> TranslationAgreement:
    """Measure the translation rule against the translations a library names: an asset whose id is
    another asset's id plus `-` and its own language (`ledgerly-0022-de`) is that asset's translation,
    and two translations of one original are translations of each other (the sample library's
    convention). A mutual best match is taken across all of a site's assets in the two languages (the
    engine looks among a request's candidates only). The cost grows with the square of a site's assets.
    """
    from recommender.training import vendor_of

    texts = translation_groups(assets)
    group = np.array([texts[a.id] for a in assets])
    sites = np.array([vendor_of(a) for a in assets])
    languages = np.array([a.language for a in assets])
    pairs = found = others = false = 0
    for site in set(sites):
        here = sites == site
        present = sorted(set(languages[here]))
        for i, one in enumerate(present):
            a = np.flatnonzero(here & (languages == one))
            for other in present[i + 1 :]:
                b = np.flatnonzero(here & (languages == other))
                taken = taken_for_translations(embeddings[a] @ embeddings[b].T, threshold, floor)
                same = group[a][:, None] == group[b][None, :]
                pairs += int(same.sum())
                found += int((same & taken).sum())
                others += int((~same).sum())
                false += int((~same & taken).sum())
    return TranslationAgreement(threshold, floor, pairs, found, others, false)


def translation_groups(assets: Sequence[Asset]) -> dict[str, str]:
    """Each asset's text: the id of the original it translates, or its own. An asset whose id is
    another asset's id plus `-` and its own language (`ledgerly-0022-de`) translates that asset."""
    ids = {a.id for a in assets}
    out = {}
    for asset in assets:
        original = asset.id.removesuffix(f"-{asset.language}")
        out[asset.id] = original if original in ids else asset.id
    return out


@dataclass(frozen=True)
class RepeatedTexts:
    """How often a system's lists show one text twice (an asset and its translation), and its nDCG@k
    when a text already listed gains nothing and the ideal list holds each text once. The usual grades
    count a translation as a relevant asset of its own, so a list gains by repeating a text."""

    system: str
    lists: int
    with_repeats: int
    ndcg: float
    k: int

    def line(self) -> str:
        return (
            f"Repeated texts: {self.with_repeats} of {self.lists} {self.system} lists show one text twice (an "
            f"asset and its translation); nDCG@{self.k} with each text counted once: {self.ndcg:.3f}"
        )

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def repeated_texts(
    report: EvaluationReport, system: str, qrels: dict[str, dict[str, int]], groups: dict[str, str]
) -> RepeatedTexts:
    """Measure a system's lists in `report` against `groups` (`translation_groups`: asset id -> text)."""
    k = report.k
    repeats, gains = 0, []
    ranked_lists = report.systems[system].ranked
    for qid, ranked in ranked_lists.items():
        texts = [groups.get(i, i) for i in ranked[:k]]
        repeats += len(set(texts)) < len(texts)
        grades = qrels.get(qid, {})
        best: dict[str, int] = {}
        for asset_id, grade in grades.items():
            text = groups.get(asset_id, asset_id)
            best[text] = max(best.get(text, 0), grade)
        listed: set[str] = set()
        dcg = 0.0
        for rank, (asset_id, text) in enumerate(zip(ranked[:k], texts, strict=True)):
            if text not in listed:
                dcg += grades.get(asset_id, 0) / math.log2(rank + 2)
            listed.add(text)
        ideal = sorted(best.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
        gains.append(dcg / idcg if idcg > 0 else 0.0)
    ndcg = round(float(np.mean(gains)), 4) if gains else float("nan")
    return RepeatedTexts(system, len(ranked_lists), repeats, ndcg, k)


@dataclass(frozen=True)
class Interval:
    """A mean over requests and its bootstrap confidence interval: of a system's nDCG, or of its lead
    over another system (`against`), request by request."""

    system: str
    against: str | None
    mean: float
    low: float
    high: float
    requests: int

    @property
    def label(self) -> str:
        return self.system if self.against is None else f"{self.system} - {self.against}"


@dataclass(frozen=True)
class ConfidenceIntervals:
    """How far a system's mean nDCG@k, and its lead over each other system, could move on another
    draw of requests like these: bootstrap intervals (bias-corrected and accelerated) over the requests."""

    k: int
    confidence: float
    resamples: int
    intervals: tuple[Interval, ...]

    def lines(self) -> list[str]:
        head = (
            f"nDCG@{self.k}, {self.confidence:.0%} bootstrap intervals over the requests ({self.resamples:,} "
            "resamples; requests on one library are not independent draws, so the true spread is wider):"
        )
        width = max((len(i.label) for i in self.intervals), default=0)
        rows = []
        for interval in self.intervals:
            form = ".3f" if interval.against is None else "+.3f"
            low, mean, high = (format(v, form) for v in (interval.low, interval.mean, interval.high))
            rows.append(f"  {interval.label:<{width}}  {mean:>6}  [{low}, {high}]  {interval.requests} requests")
        return [head, *rows]

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def confidence_intervals(
    report: EvaluationReport, system: str = "engine", confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> ConfidenceIntervals:
    """`system`'s mean nDCG@k and its paired difference from every other system in `report`, each
    with a bootstrap interval (scipy's BCa). A difference is taken over the requests both scored."""
    own = report.systems[system].ndcg
    intervals = [_interval(system, None, list(own.values()), confidence, resamples, seed)]
    for name, scores in report.systems.items():
        if name != system:
            differences = [own[q] - scores.ndcg[q] for q in own if q in scores.ndcg]
            intervals.append(_interval(system, name, differences, confidence, resamples, seed))
    return ConfidenceIntervals(report.k, confidence, resamples, tuple(intervals))


def _interval(
    system: str, against: str | None, values: Sequence[float], confidence: float, resamples: int, seed: int
) -> Interval:
    from scipy.stats import bootstrap

    sample = np.asarray(values, dtype=np.float64)
    mean = float(sample.mean()) if len(sample) else float("nan")
    if len(sample) < 2 or np.ptp(sample) == 0:
        # Nothing to resample: every draw gives the same mean (or there is none).
        low = high = mean
    else:
        found = bootstrap(
            (sample,), np.mean, confidence_level=confidence, n_resamples=resamples, method="BCa", rng=seed
        ).confidence_interval
        low, high = float(found.low), float(found.high)
    return Interval(system, against, round(mean, 4), round(low, 4), round(high, 4), len(sample))


def request_words(request: BuyerRequest, reading_title: str = "") -> str:
    """What a keyword or vector search gets of a request: its query, the title of the asset it is
    reading, and the words of its buyer fields."""
    words = [request.query or "", reading_title, request.segment.value]
    if request.role:
        words.append(request.role.value.replace("_", " "))
    if request.stage:
        words.append(request.stage.value)
    words.extend(signal.replace("_", " ") for signal in request.signals)
    return " ".join(w for w in words if w)


def evaluate(
    recommender: Recommender,
    requests: Sequence[EvalRequest],
    qrels: dict[str, dict[str, int]],
    k: int = 10,
    *,
    curated: dict[str, tuple[frozenset[str], frozenset[str]]] | None = None,
    compare: dict[str, Recommender] | None = None,
) -> EvaluationReport:
    """The engine and the baselines on the same requests, over the assets of the same index.

    `curated` maps asset ids to their hand-made (segments, stages) for the dense+labels baseline; by
    default they are read from the index when every asset's segments and stages there are curated.
    `compare` names other engines over the same index (another configuration, usually): each is
    scored as a system of that name, after the engine.
    """
    compare = compare or {}
    clash = sorted(set(compare) & {"engine", "bm25", "dense", "dense+labels"})
    if clash:
        raise RecommenderError(f"a compared configuration may not be named {clash[0]!r}, a system's name: rename it")
    snapshot = recommender.snapshot
    rows = snapshot.living_rows()
    ids = snapshot.ids_of(rows)
    stored = snapshot.assets(ids)
    texts = [stored[i][0].text for i in ids]
    bm25 = _bm25(texts)
    vectors = snapshot.vectors_of(rows)
    if curated is None:
        curated = _curated_in_index(stored)
    systems = {"engine": SystemScores(), **{name: SystemScores() for name in compare}}
    systems |= {"bm25": SystemScores(), "dense": SystemScores()}
    if curated:
        systems["dense+labels"] = SystemScores()
        labels_of = [curated.get(i, (frozenset(), frozenset())) for i in ids]
    groups: dict[str, dict[str, list[str]]] = {"segment": {}, "stage_source": {}, "language": {}, "query": {}}
    for item in requests:
        request = item.request.model_copy(update={"k": k})
        grades = qrels.get(item.qid, {})
        row = snapshot.row_of(request.reading) if request.reading else None
        read = snapshot.ids_of(np.array([row]))[0] if row is not None else None
        words = request_words(request, stored[read][0].title if read in stored else "")
        excluded = snapshot.resolve(request.exclude) | ({read} if read else set())
        result = recommender.recommend(request)
        stage, source = result.stage, result.stage_source
        similarity = vectors @ recommender.embed_query(words)
        ranked = {
            "engine": [i.id for i in result.items],
            **{name: [i.id for i in other.recommend(request).items] for name, other in compare.items()},
            "bm25": _top(bm25.get_scores(_tokens(words)), ids, k, excluded),
            "dense": _top(similarity, ids, k, excluded),
        }
        if curated:
            fits = [request.segment.value in segments and stage.value in stages for segments, stages in labels_of]
            ranked["dense+labels"] = _top(similarity, ids, k, excluded, fits)
        for name, found in ranked.items():
            systems[name].ranked[item.qid] = found
            systems[name].ndcg[item.qid] = ndcg_at_k(found, grades, k)
            systems[name].precision[item.qid] = precision_at_k(found, grades, k)
        groups["segment"].setdefault(request.segment.value, []).append(item.qid)
        groups["stage_source"].setdefault(source.kind, []).append(item.qid)
        groups["language"].setdefault(request.language or "any", []).append(item.qid)
        groups["query"].setdefault("with query" if request.query else "no query", []).append(item.qid)
    return EvaluationReport(k=k, systems=systems, groups=groups)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _bm25(texts: Sequence[str]):
    from rank_bm25 import BM25Okapi

    return BM25Okapi([_tokens(t) or ["∅"] for t in texts])


def _top(
    scores: np.ndarray, ids: Sequence[str], k: int, excluded: set[str], allowed: Sequence[bool] | None = None
) -> list[str]:
    """The k best-scoring ids, leaving out excluded ones and, with `allowed`, those it marks False."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    return [ids[i] for i in order if ids[i] not in excluded and (allowed is None or allowed[i])][:k]


def _curated_in_index(stored: dict[str, tuple[Asset, AssetLabels]]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Each asset's curated segments and stages, or nothing unless every asset has both curated."""
    if not stored or any(
        labels.segments.source is not LabelSource.CURATED or labels.stages.source is not LabelSource.CURATED
        for _, labels in stored.values()
    ):
        return {}
    return {
        asset_id: (frozenset(labels.segments.labels), frozenset(labels.stages.labels))
        for asset_id, (_, labels) in stored.items()
    }


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(float(np.mean(values)), 4) if values else float("nan")


def holdout_evaluation(
    assets: Sequence[Asset],
    embeddings: np.ndarray,
    embedder: Embedder,
    requests: Sequence[EvalRequest],
    qrels: dict[str, dict[str, int]],
    work_dir: str | Path,
    *,
    config: RankingConfig | None = None,
    compare: dict[str, RankingConfig] | None = None,
    k: int = 10,
) -> EvaluationReport:
    """Evaluate each site as an unseen, untagged library, the way a new customer's library arrives.

    For each site (URL host) with judged requests: a tagger is trained on the other sites' curated
    labels, the site's assets are stripped to id, title, body, type, language, url and date, labelled
    by that tagger and indexed alone; then the requests judged on that site are ranked against that
    index. Each configuration in `compare` ranks the same requests over the same index as a system
    of its name (see `evaluate`).
    `embeddings` (len(assets), d) are the assets' vectors from `embedder`, computed once.
    """
    from recommender.store import IndexStore
    from recommender.tagging import label_assets
    from recommender.training import train, vendor_of

    sites = np.array([vendor_of(a) for a in assets])
    site_of_id = dict(zip((a.id for a in assets), sites, strict=True))
    merged = EvaluationReport(k=k, systems={}, groups={"site": {}})
    for site in sorted(set(sites)):
        mine = [r for r in requests if _site_of(qrels.get(r.qid, {}), site_of_id) == site]
        if not mine:
            continue  # a site nobody judged requests on still trains the taggers of the others
        test = np.flatnonzero(sites == site)
        train_rows = np.flatnonzero(sites != site)
        tagger = train([assets[i] for i in train_rows], embeddings[train_rows], model=embedder.name)
        untagged = [_strip(assets[i]) for i in test]
        labels = label_assets(untagged, embeddings[test], tagger)
        folder = Path(work_dir) / site
        IndexStore(folder).write_version(
            untagged,
            labels,
            embeddings[test],
            model=embedder.name,
            index_kind="flat",
            library_checksum="holdout",
            tagger_version=tagger.version,
            start=IndexStore(folder).begin_build(),
        )
        recommender = Recommender(folder, embedder, tagger, config)
        others = {name: Recommender(folder, embedder, tagger, other) for name, other in (compare or {}).items()}
        truth = {
            assets[i].id: (frozenset(s.value for s in assets[i].segments), frozenset(s.value for s in assets[i].stages))
            for i in test
        }
        report = evaluate(recommender, mine, qrels, k, curated=truth, compare=others)
        for engine in (recommender, *others.values()):
            engine.close()
        for name, scores in report.systems.items():
            target = merged.systems.setdefault(name, SystemScores())
            target.ndcg.update(scores.ndcg)
            target.precision.update(scores.precision)
            target.ranked.update(scores.ranked)
        for breakdown, groups in report.groups.items():
            for group, qids in groups.items():
                merged.groups.setdefault(breakdown, {}).setdefault(group, []).extend(qids)
        merged.groups["site"][site] = [r.qid for r in mine]
    return merged


def _strip(asset: Asset) -> Asset:
    """The asset as an untagged library has it: no curated labels, topic or tags."""
    return asset.model_copy(update={"segments": (), "stages": (), "roles": (), "topic": None, "tags": ()})


def _site_of(grades: dict[str, int], site_of_id: dict[str, str]) -> str | None:
    sites = [site_of_id[i] for i in grades if i in site_of_id]
    return max(set(sites), key=sites.count) if sites else None
