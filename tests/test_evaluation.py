"""Measuring ranking quality: the metrics against hand-computed values, the files, the engine and baselines."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import HashEmbedder, make_asset, write_jsonl

from content_library import Asset
from content_library.schema import Stage
from recommender import training
from recommender.build import build_index
from recommender.cli import main
from recommender.config import RankingConfig, RankingWeights
from recommender.engine import Recommender
from recommender.errors import RecommenderError
from recommender.evaluation import (
    EvalRequest,
    EvaluationReport,
    SystemScores,
    confidence_intervals,
    evaluate,
    holdout_evaluation,
    ndcg_at_k,
    precision_at_k,
    read_qrels,
    read_requests,
    repeated_texts,
    request_words,
    stage_agreement,
    translation_agreement,
    translation_groups,
)
from recommender.store import IndexStore
from recommender.tagging import Tagger
from recommender.types import BuyerRequest, LabelSource

# -- nDCG@k and precision@k ------------------------------------------------------------------------------


def test_ndcg_of_a_ranking_with_a_gap_matches_the_hand_computed_value():
    # DCG = 3/log2(2) + 0/log2(3) + 2/log2(4) = 4; ideal order 3, 2, 1: 3 + 2/log2(3) + 1/log2(4).
    grades = {"a": 3, "b": 0, "c": 2, "d": 1}

    assert ndcg_at_k(["a", "b", "c"], grades, 3) == pytest.approx(4 / (3.5 + 2 / math.log2(3)))


def test_ndcg_of_the_ideal_ranking_is_one_and_unjudged_items_count_as_irrelevant():
    grades = {"a": 3, "c": 2, "d": 1}

    assert ndcg_at_k(["a", "c", "d"], grades, 3) == 1.0
    # "x" is unjudged: DCG = 3 + 0 + 1/log2(4); ideal 3 + 2/log2(3) + 1/log2(4).
    assert ndcg_at_k(["a", "x", "d"], grades, 3) == pytest.approx(3.5 / (3.5 + 2 / math.log2(3)))


def test_ndcg_only_looks_at_the_first_k_items_of_ranking_and_ideal():
    grades = {"a": 3, "d": 1}

    assert ndcg_at_k(["d", "a"], grades, 1) == pytest.approx(1 / 3)


def test_ndcg_is_zero_when_nothing_is_relevant_or_nothing_is_judged():
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": 0}, 10) == 0.0
    assert ndcg_at_k(["a", "b"], {}, 10) == 0.0
    assert ndcg_at_k([], {"a": 3}, 10) == 0.0


def test_precision_counts_grades_of_two_or_more_among_the_first_k():
    grades = {"a": 3, "b": 1, "c": 2}

    assert precision_at_k(["a", "b", "c", "d"], grades, 4) == 0.5
    assert precision_at_k(["a", "b", "c", "d"], grades, 2) == 0.5
    assert precision_at_k(["b", "d"], grades, 2) == 0.0


def test_precision_divides_by_k_even_when_fewer_items_were_returned():
    assert precision_at_k(["a"], {"a": 3}, 10) == 0.1


# -- reading requests and judgements -------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_request_lines_are_buyer_requests_with_a_qid_and_blank_lines_are_skipped(tmp_path: Path):
    path = write_lines(
        tmp_path / "requests.jsonl",
        [
            '{"qid": "q1", "segment": "smb", "signals": ["pricing_page_view"], "k": 5}',
            "",
            '{"qid": 2, "segment": "enterprise", "role": "it", "query": "sso", "language": "de"}',
        ],
    )

    assert read_requests(path) == [
        EvalRequest("q1", BuyerRequest(segment="smb", signals=["pricing_page_view"], k=5)),
        EvalRequest("2", BuyerRequest(segment="enterprise", role="it", query="sso", language="de")),
    ]


def test_null_or_empty_request_fields_are_absent_and_other_fields_are_named_as_ignored(tmp_path: Path):
    line = '{"qid": "q1", "segment": "smb", "role": "", "signals": null, "k": null, "expected_stage": "decision"}'
    path = write_lines(tmp_path / "requests.jsonl", [line])

    assert read_requests(path) == [EvalRequest("q1", BuyerRequest(segment="smb"), ("expected_stage",))]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"qid": "q2", "segment": "smb"', r"not a request with a qid \(Expecting ',' delimiter"),
        ('{"segment": "smb"}', r"not a request with a qid \(no qid\)"),
        ('["q2", "smb"]', r"not a request with a qid \(expected a JSON object, got list\)"),
        (
            '{"qid": "q2", "segment": "startup", "k": 0}',
            r"not a valid request \(segment: Input should be 'enterprise' or 'smb'; "
            r"k: Input should be greater than or equal to 1\)",
        ),
    ],
    ids=["broken JSON", "no qid", "not an object", "invalid fields"],
)
def test_a_bad_request_line_is_an_error_naming_the_file_and_line(tmp_path: Path, bad_line: str, problem: str):
    path = write_lines(tmp_path / "requests.jsonl", ['{"qid": "q1", "segment": "smb"}', "", bad_line])

    with pytest.raises(RecommenderError, match=rf"^{path}, line 3: {problem}"):
        read_requests(path)


def test_judgement_lines_group_grades_by_query(tmp_path: Path):
    path = write_lines(
        tmp_path / "qrels.jsonl",
        [
            '{"qid": "q1", "id": "a", "grade": 3}',
            '{"qid": "q1", "id": "b", "grade": 0}',
            "",
            '{"qid": 2, "id": "a", "grade": 1}',
        ],
    )

    assert read_qrels(path) == {"q1": {"a": 3, "b": 0}, "2": {"a": 1}}


def test_judgements_may_be_trec_lines_and_grades_integral_numbers_or_digits(tmp_path: Path):
    path = write_lines(
        tmp_path / "qrels.txt",
        ["q1 0 a 3", "q1\t0\tb\t0", '{"qid": "q2", "id": "a", "grade": 2.0}', '{"qid": "q2", "id": "b", "grade": "1"}'],
    )

    assert read_qrels(path) == {"q1": {"a": 3, "b": 0}, "q2": {"a": 2, "b": 1}}


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"qid": "q1", "id": "b", "grade": 4}', "grade 4 is not an integer from 0 to 3"),
        ('{"qid": "q1", "id": "b", "grade": -1}', "grade -1 is not an integer from 0 to 3"),
        ('{"qid": "q1", "id": "b", "grade": 2.5}', "grade 2.5 is not an integer from 0 to 3"),
        ('{"qid": "q1", "id": "b", "grade": true}', "grade True is not an integer from 0 to 3"),
        ('{"qid": "q1", "id": "b", "grade": "high"}', "grade 'high' is not an integer from 0 to 3"),
        ("q1 0 b 7", "grade '7' is not an integer from 0 to 3"),
        ('{"qid": "q1", "id": "b"}', "'grade'"),
        ('{"qid": "q1", "grade": 2}', "'id'"),
        ("[1, 2, 3]", "expected a JSON object or a TREC line 'qid 0 id grade'"),
        ("qid q1 id b grade 2", "Expecting value"),
    ],
    ids=[
        "above 3",
        "negative",
        "fraction",
        "boolean",
        "words",
        "TREC above 3",
        "no grade",
        "no id",
        "not an object",
        "neither JSON nor TREC",
    ],
)
def test_a_bad_judgement_line_is_an_error_naming_the_file_and_line(tmp_path: Path, bad_line: str, problem: str):
    path = write_lines(tmp_path / "qrels.jsonl", ['{"qid": "q1", "id": "a", "grade": 3}', bad_line])

    with pytest.raises(RecommenderError) as caught:
        read_qrels(path)

    assert str(caught.value).startswith(f"{path}, line 2: not a judgement qid/id/grade (")
    assert problem in str(caught.value)


def test_the_shipped_development_set_reads_and_judges_every_request():
    from recommender.cli.evaluation import DEVSET

    requests = read_requests(DEVSET / "requests.jsonl")
    qrels = read_qrels(DEVSET / "qrels.jsonl")

    assert len(requests) >= 60
    assert len({r.qid for r in requests}) == len(requests)
    assert {r.qid for r in requests} <= set(qrels)


# -- the words the baselines get ---------------------------------------------------------------------------


def test_the_baselines_get_the_query_and_the_words_of_segment_role_stage_and_signals():
    request = BuyerRequest(
        segment="enterprise", role="end_user", stage="decision", signals=["demo", "technical_discussion"], query="sso"
    )

    assert request_words(request) == "sso enterprise end user decision demo technical discussion"
    assert request_words(BuyerRequest(segment="smb")) == "smb"


def test_the_baselines_get_the_title_of_the_asset_being_read_after_the_query():
    request = BuyerRequest(segment="smb", query="sso", reading="a1")

    assert request_words(request, "Single sign-on in a day") == "sso Single sign-on in a day smb"


# -- evaluate(): the engine and the baselines in one run ---------------------------------------------------------


REQUESTS = [
    EvalRequest(
        "q1",
        BuyerRequest(
            segment="enterprise", role="finance", stage="decision", query="invoice approval time", language="en"
        ),
    ),
    EvalRequest("q2", BuyerRequest(segment="smb", signals=["return_visit", "pricing_page_view"])),
    EvalRequest("q3", BuyerRequest(segment="enterprise", query="Rechnungsfreigabe", language="de")),
    EvalRequest("q4", BuyerRequest(segment="enterprise", query="Rechnungsfreigabe", exclude=["ent-cons-2"])),
]
QRELS = {
    "q1": {"ent-dec-1": 3, "ent-cons-2": 1, "smb-dec-1": 0},
    "q2": {"smb-dec-1": 3, "smb-dec-2": 2},
    "q3": {"ent-cons-2": 3},
    "q4": {"ent-cons-2": 3},
}


@pytest.fixture
def report(recommender: Recommender):
    return evaluate(recommender, REQUESTS, QRELS)


def test_evaluate_scores_the_engine_and_the_baselines_on_every_request(report):
    assert report.k == 10
    assert list(report.systems) == ["engine", "bm25", "dense", "dense+labels"]
    for scores in report.systems.values():
        assert list(scores.ndcg) == list(scores.precision) == ["q1", "q2", "q3", "q4"]


def test_the_engines_scores_are_those_of_its_own_recommendations(report, recommender: Recommender):
    for item in REQUESTS:
        ranked = [i.id for i in recommender.recommend(item.request.model_copy(update={"k": 10})).items]
        assert report.systems["engine"].ndcg[item.qid] == ndcg_at_k(ranked, QRELS[item.qid], 10)
        assert report.systems["engine"].precision[item.qid] == precision_at_k(ranked, QRELS[item.qid], 10)


def test_bm25_and_dense_find_the_only_asset_with_the_query_word_first(report):
    # "Rechnungsfreigabe" occurs in one asset only; the other request words ("enterprise") in none.
    for system in ("bm25", "dense"):
        assert report.systems[system].ndcg["q3"] == 1.0
        assert report.systems[system].precision["q3"] == 0.1


def test_dense_with_labels_only_returns_assets_curated_for_the_requests_segment_and_stage(report):
    # q3 resolves to the default stage (awareness); its one judged asset is curated for consideration.
    assert report.systems["dense"].ndcg["q3"] == 1.0
    assert report.systems["dense+labels"].ndcg["q3"] == 0.0
    # q1's best asset is curated enterprise / decision, as asked.
    assert report.systems["dense+labels"].precision["q1"] == 0.1


def test_dense_with_labels_is_left_out_when_the_index_holds_predicted_labels(
    small_library: list[Asset], embedder: HashEmbedder, small_tagger: Tagger, tmp_path: Path
):
    untagged = small_library[0].model_copy(update={"id": "untagged", "segments": (), "stages": (), "roles": ()})
    library = write_jsonl(tmp_path / "library.jsonl", [*small_library, untagged])
    build_index([library], tmp_path / "index", embedder, tagger=small_tagger)

    report = evaluate(Recommender(tmp_path / "index", embedder, small_tagger), REQUESTS, QRELS)

    assert list(report.systems) == ["engine", "bm25", "dense"]


def test_the_baselines_honour_the_exclude_list_too(report):
    assert {name: scores.ndcg["q4"] for name, scores in report.systems.items()} == {
        "engine": 0.0,
        "bm25": 0.0,
        "dense": 0.0,
        "dense+labels": 0.0,
    }


def test_no_system_lists_the_asset_being_read(recommender: Recommender):
    request = EvalRequest("q5", BuyerRequest(segment="enterprise", reading="ent-cons-2"))

    report = evaluate(recommender, [request], {"q5": {"ent-cons-2": 3}})

    assert {name: scores.ndcg["q5"] for name, scores in report.systems.items()} == dict.fromkeys(report.systems, 0.0)
    assert all(scores.ranked["q5"] for scores in report.systems.values())


def test_evaluate_breaks_the_requests_down_by_segment_stage_source_language_and_query(report):
    assert report.groups == {
        "segment": {"enterprise": ["q1", "q3", "q4"], "smb": ["q2"]},
        "stage_source": {"given": ["q1"], "signal": ["q2"], "default": ["q3", "q4"]},
        "language": {"en": ["q1"], "any": ["q2", "q4"], "de": ["q3"]},
        "query": {"with query": ["q1", "q3", "q4"], "no query": ["q2"]},
    }


def test_the_table_has_a_row_per_breakdown_group_and_system_with_the_mean_metrics(report):
    rows = report.table()

    assert len(rows) == (1 + 2 + 3 + 3 + 2) * 4
    overall = [r for r in rows if r["breakdown"] == "overall"]
    assert [(r["group"], r["system"], r["queries"]) for r in overall] == [
        ("all", "engine", 4),
        ("all", "bm25", 4),
        ("all", "dense", 4),
        ("all", "dense+labels", 4),
    ]
    bm25 = report.systems["bm25"]
    assert overall[1]["ndcg@10"] == round(sum(bm25.ndcg.values()) / 4, 4)
    assert overall[1]["precision@10"] == round(sum(bm25.precision.values()) / 4, 4)
    smb = next(r for r in rows if (r["breakdown"], r["group"], r["system"]) == ("segment", "smb", "engine"))
    assert smb["ndcg@10"] == round(report.systems["engine"].ndcg["q2"], 4)


# -- confidence intervals: how far the means could move on other requests ------------------------------------


def scored(**systems: dict[str, float]) -> EvaluationReport:
    return EvaluationReport(k=10, systems={name: SystemScores(ndcg=ndcg) for name, ndcg in systems.items()}, groups={})


def test_intervals_hold_the_engines_mean_and_its_paired_lead_over_the_requests_both_systems_scored():
    report = scored(engine={"q1": 1.0, "q2": 0.5, "q3": 0.0}, bm25={"q1": 0.5, "q2": 0.5})

    engine, lead = confidence_intervals(report, resamples=2000).intervals

    assert (engine.label, engine.mean, engine.requests) == ("engine", 0.5, 3)
    assert (lead.label, lead.mean, lead.requests) == ("engine - bm25", 0.25, 2)
    for interval, values in ((engine, (1.0, 0.5, 0.0)), (lead, (0.5, 0.0))):
        assert min(values) <= interval.low < interval.mean < interval.high <= max(values)


def test_the_interval_of_a_large_sample_matches_the_normal_approximation():
    values = np.random.default_rng(7).normal(0.6, 0.2, 400)
    report = scored(engine={f"q{i}": float(v) for i, v in enumerate(values)})

    (engine,) = confidence_intervals(report, confidence=0.95).intervals

    half_width = 1.96 * values.std(ddof=1) / math.sqrt(len(values))  # about 0.02
    assert engine.low == pytest.approx(values.mean() - half_width, abs=0.003)
    assert engine.high == pytest.approx(values.mean() + half_width, abs=0.003)


def test_intervals_are_the_same_on_every_run_and_narrow_with_a_lower_confidence():
    values = np.random.default_rng(3).uniform(0, 1, 50)
    report = scored(engine={f"q{i}": float(v) for i, v in enumerate(values)})

    first, again = confidence_intervals(report), confidence_intervals(report)
    narrow = confidence_intervals(report, confidence=0.5).intervals[0]

    assert first == again
    assert first.intervals[0].low < narrow.low < narrow.high < first.intervals[0].high


def test_an_interval_over_identical_values_is_the_value_itself():
    report = scored(engine={"q1": 0.7, "q2": 0.7}, dense={"q1": 0.7, "q2": 0.7})

    engine, lead = confidence_intervals(report).intervals

    assert (engine.low, engine.mean, engine.high) == (0.7, 0.7, 0.7)
    assert (lead.low, lead.mean, lead.high) == (0.0, 0.0, 0.0)


def test_evaluate_prints_the_intervals_of_the_engine_and_its_lead_over_each_baseline(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, report
):
    requests, qrels = files

    printed = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels)
    as_json = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--json")

    assert printed.exit_code == 0, printed.output
    expected = confidence_intervals(report)
    assert "\n".join(expected.lines()) in printed.output
    labels = ["engine", "engine - bm25", "engine - dense", "engine - dense+labels"]
    assert [i.label for i in expected.intervals] == labels
    assert json.loads(as_json.output)["intervals"] == json.loads(json.dumps(expected.as_dict()))


# -- --compare: another configuration scored on the same requests ----------------------------------------------


def test_a_compared_engine_is_scored_as_a_system_after_the_engine_on_its_own_recommendations(
    recommender: Recommender, index_dir: Path
):
    buyer_fit_only = RankingConfig(weights=RankingWeights(relevance=0.0))
    other = Recommender(index_dir, recommender.embedder, recommender.tagger, buyer_fit_only)

    report = evaluate(recommender, REQUESTS, QRELS, compare={"fit only": other})

    assert list(report.systems) == ["engine", "fit only", "bm25", "dense", "dense+labels"]
    for item in REQUESTS:
        ranked = [i.id for i in other.recommend(item.request.model_copy(update={"k": 10})).items]
        assert report.systems["fit only"].ranked[item.qid] == ranked
        assert report.systems["fit only"].ndcg[item.qid] == ndcg_at_k(ranked, QRELS[item.qid], 10)
    assert report.systems["fit only"].ranked != report.systems["engine"].ranked


def test_a_compared_engine_named_like_a_system_is_refused_rather_than_overwriting_it(recommender: Recommender):
    with pytest.raises(RecommenderError, match="may not be named 'bm25'"):
        evaluate(recommender, REQUESTS, QRELS, compare={"bm25": recommender})


def test_evaluate_compare_prints_a_column_and_the_engines_lead_over_the_compared_configuration(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, tmp_path: Path
):
    requests, qrels = files
    other = write_lines(tmp_path / "fit-only.toml", ["[weights]", "relevance = 0.0"])

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--compare", other)
    as_json = invoke(
        "evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--compare", other, "--json"
    )

    assert result.exit_code == 0, result.output
    assert f"{other} ndcg@10" in result.output.splitlines()[0]
    assert re.search(rf"^  engine - {re.escape(str(other))} +[+-]\d\.\d{{3}}  \[", result.output, re.M)
    systems = {row["system"] for row in json.loads(as_json.output)["ranking"]}
    assert systems == {"engine", str(other), "bm25", "dense", "dense+labels"}


def test_evaluate_compare_with_a_bad_configuration_fails_with_one_line_naming_the_file(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, tmp_path: Path
):
    requests, qrels = files
    other = write_lines(tmp_path / "bad.toml", ["[weights]", "relevance = 'high'"])

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--compare", other)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {other}")
    assert len(result.output.splitlines()) == 1


# -- holdout_evaluation(): each site as an unseen, untagged library ------------------------------------------


def two_sites(assets: list[Asset]) -> list[Asset]:
    """The small library split over two vendors' sites, alternately."""
    return [
        a.model_copy(update={"url": f"https://{'alpha' if i % 2 == 0 else 'beta'}.example.com/{a.id}"})
        for i, a in enumerate(assets)
    ]


def test_holdout_indexes_each_site_alone_untagged_and_evaluates_the_requests_judged_on_it(
    small_library: list[Asset], tmp_path: Path
):
    assets = two_sites(small_library)
    alpha = [a.id for a in assets[::2]]
    embedder = HashEmbedder()
    requests = [
        EvalRequest("qa", BuyerRequest(segment="enterprise", query="invoice approval")),
        EvalRequest("qb", BuyerRequest(segment="smb", query="bills")),
        EvalRequest("qx", BuyerRequest(segment="smb")),  # judged on no asset of either site
    ]
    qrels = {"qa": {alpha[0]: 3, alpha[1]: 2}, "qb": {assets[1].id: 3}, "qx": {"elsewhere": 3}}

    report = holdout_evaluation(
        assets, embedder.encode([a.text for a in assets]), embedder, requests, qrels, tmp_path / "work"
    )

    assert report.groups["site"] == {"alpha.example.com": ["qa"], "beta.example.com": ["qb"]}
    assert sorted(report.systems) == ["bm25", "dense", "dense+labels", "engine"]
    assert sorted(report.systems["engine"].ndcg) == ["qa", "qb"]
    site = Recommender(tmp_path / "work" / "alpha.example.com", embedder)
    stored = site.snapshot.assets(site.snapshot.ids_of(site.snapshot.living_rows()))
    assert sorted(stored) == sorted(alpha)
    for asset, labels in stored.values():
        assert (asset.segments, asset.stages, asset.roles, asset.topic) == ((), (), (), None)
        assert {labels.field(f).source for f in ("segments", "stages", "roles")} == {LabelSource.PREDICTED}
    site.close()
    assert IndexStore(tmp_path / "work" / "beta.example.com").manifest().library_checksum == "holdout"


def test_holdout_scores_a_compared_configuration_on_each_sites_own_index(small_library: list[Asset], tmp_path: Path):
    assets = two_sites(small_library)
    embedder = HashEmbedder()
    vectors = embedder.encode([a.text for a in assets])
    requests = [
        EvalRequest("qa", BuyerRequest(segment="enterprise", query="invoice approval")),
        EvalRequest("qb", BuyerRequest(segment="smb", query="bills")),
    ]
    qrels = {"qa": {assets[0].id: 3, assets[2].id: 2}, "qb": {assets[1].id: 3}}
    compare = {"same": RankingConfig(), "fit only": RankingConfig(weights=RankingWeights(relevance=0.0))}

    report = holdout_evaluation(assets, vectors, embedder, requests, qrels, tmp_path, compare=compare)

    assert list(report.systems)[:3] == ["engine", "same", "fit only"]
    assert report.systems["same"].ranked == report.systems["engine"].ranked
    assert report.systems["fit only"].ranked != report.systems["engine"].ranked
    alpha = {a.id for a in assets[::2]}
    assert set(report.systems["fit only"].ranked["qa"]) <= alpha  # ranked over alpha's index alone


def test_holdout_trains_on_a_site_without_judged_requests_but_does_not_evaluate_it(
    small_library: list[Asset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assets = two_sites(small_library)
    embedder = HashEmbedder()
    trained_on: list[set[str]] = []
    original = training.train
    monkeypatch.setattr(
        training, "train", lambda train, *a, **kw: trained_on.append({x.id for x in train}) or original(train, *a, **kw)
    )
    requests = [EvalRequest("qa", BuyerRequest(segment="enterprise", query="invoice approval"))]

    report = holdout_evaluation(
        assets, embedder.encode([a.text for a in assets]), embedder, requests, {"qa": {assets[0].id: 3}}, tmp_path
    )

    assert report.groups["site"] == {"alpha.example.com": ["qa"]}
    assert trained_on == [{a.id for a in assets[1::2]}]  # beta's assets trained alpha's tagger
    assert not (tmp_path / "beta.example.com").exists()


# -- recommender evaluate --------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    requests = write_lines(
        tmp_path / "requests.jsonl",
        [json.dumps({"qid": r.qid, **r.request.model_dump(mode="json", exclude_defaults=True)}) for r in REQUESTS],
    )
    qrels = write_lines(
        tmp_path / "qrels.jsonl",
        [json.dumps({"qid": q, "id": i, "grade": g}) for q, grades in QRELS.items() for i, g in grades.items()],
    )
    return requests, qrels


@pytest.fixture
def hash_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI load HashEmbedder for the index's model name instead of a real model."""
    monkeypatch.setattr("recommender.engine.load_embedder", lambda spec: HashEmbedder(name=spec))


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_evaluate_prints_the_table_of_every_breakdown_for_every_system(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, report
):
    requests, qrels = files

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels)

    assert result.exit_code == 0, result.output
    lines = result.output.split("\n\n")[0].splitlines()
    systems = ("engine", "bm25", "dense", "dense+labels")
    columns = [f"{system} {metric}" for metric in ("ndcg@10", "precision@10") for system in systems]
    assert lines[0] == f"{'breakdown':<13}{'group':<20}{'n':>5}  " + "  ".join(f"{c:>22}" for c in columns)
    rows = {(r["breakdown"], r["group"], r["system"]): r for r in report.table()}
    printed = [(line[:13].strip(), line[13:33].strip(), int(line[33:38]), line[38:].split()) for line in lines[1:]]
    assert [p[:3] for p in printed] == [
        ("overall", "all", 4),
        ("segment", "enterprise", 3),
        ("segment", "smb", 1),
        ("stage_source", "default", 2),
        ("stage_source", "given", 1),
        ("stage_source", "signal", 1),
        ("language", "any", 2),
        ("language", "de", 1),
        ("language", "en", 1),
        ("query", "no query", 1),
        ("query", "with query", 3),
    ]
    for breakdown, group, _, values in printed:
        expected = [rows[(breakdown, group, s)][m] for m in ("ndcg@10", "precision@10") for s in systems]
        assert values == [f"{v:.3f}" for v in expected]


def test_evaluate_json_prints_the_rows_evaluate_computes(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, report
):
    requests, qrels = files

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ranking"] == report.table()


def test_evaluate_scores_requests_with_fields_of_their_own_and_names_those_fields_on_stderr(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, report, tmp_path: Path
):
    requests, qrels = files
    noted = [json.loads(line) | {"note": "judged by A."} for line in requests.read_text().splitlines()]
    with_notes = write_lines(tmp_path / "noted.jsonl", [json.dumps(line) for line in noted])

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", with_notes, "--qrels", qrels, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ranking"] == report.table()
    assert result.stderr == f"Ignored fields that are not a request's: note ({len(noted)})\n"


def test_evaluate_with_a_bad_request_file_fails_with_one_line_naming_the_line(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, tmp_path: Path
):
    _, qrels = files
    requests = write_lines(tmp_path / "bad.jsonl", ['{"qid": "q1", "segment": "smb"}', '{"qid": "q2"}'])

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels)

    assert result.exit_code == 1
    assert result.output == f"Error: {requests}, line 2: not a valid request (segment: Field required)\n"


def test_evaluate_holdout_prints_every_measurement_of_an_unseen_library_as_json(
    small_library: list[Asset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("recommender.embeddings.load_embedder", lambda spec: HashEmbedder(name=spec))
    assets = two_sites(small_library)
    library = write_jsonl(tmp_path / "library.jsonl", assets)
    requests = write_lines(
        tmp_path / "requests.jsonl",
        ['{"qid": "qa", "segment": "enterprise", "query": "invoice approval"}', '{"qid": "qb", "segment": "smb"}'],
    )
    qrels = write_lines(
        tmp_path / "qrels.jsonl",
        [
            json.dumps({"qid": "qa", "id": assets[0].id, "grade": 3}),
            json.dumps({"qid": "qb", "id": assets[1].id, "grade": 2}),
        ],
    )
    other = write_lines(tmp_path / "fit-only.toml", ["[weights]", "relevance = 0.0"])

    result = invoke("evaluate-holdout", library, "--requests", requests, "--qrels", qrels, "--compare", other, "--json")

    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == [
        "ranking",
        "intervals",
        "tagging",
        "stage_inference",
        "translation_detection",
        "repeated_texts",
    ]
    overall = {row["system"]: row for row in payload["ranking"] if row["breakdown"] == "overall"}
    assert list(overall) == ["engine", str(other), "bm25", "dense", "dense+labels"]
    assert overall["engine"]["queries"] == 2
    intervals = payload["intervals"]["intervals"]
    assert [(i["system"], i["against"]) for i in intervals][:2] == [("engine", None), ("engine", str(other))]
    assert intervals[0]["mean"] == overall["engine"]["ndcg@10"]


# -- stage inference against judged stages ------------------------------------------------------------------


def test_stage_agreement_counts_requests_without_a_given_stage_and_names_each_miss():
    asked = [
        EvalRequest("given", BuyerRequest(segment="smb", stage="awareness")),
        EvalRequest("signals", BuyerRequest(segment="enterprise", signals=["demo", "technical_discussion"])),
        EvalRequest("wrong", BuyerRequest(segment="smb", signals=["pricing_page_view"])),
        EvalRequest("nothing", BuyerRequest(segment="smb")),
        EvalRequest("unjudged", BuyerRequest(segment="smb", signals=["demo"])),
        # Its stage is the read asset's, not inferred: not counted.
        EvalRequest("reading", BuyerRequest(segment="smb", reading="s-1")),
    ]
    judged = {"given": Stage.RETENTION, "signals": Stage.DECISION, "wrong": Stage.AWARENESS, "nothing": Stage.DECISION}
    judged["reading"] = Stage.DECISION

    agreement = stage_agreement(asked, judged, RankingConfig())

    assert (agreement.agree, agreement.judged) == (1, 3)
    assert agreement.misses == (("wrong", "awareness", "decision"), ("nothing", "decision", "awareness"))


def test_evaluate_reports_stage_inference_against_a_judged_stages_file(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, tmp_path: Path
):
    requests, qrels = files
    lines = [json.dumps({"qid": r.qid, "expected_stage": "consideration"}) for r in REQUESTS if r.request.stage is None]
    stages = write_lines(tmp_path / "stages.jsonl", lines)

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", requests, "--qrels", qrels, "--stages", stages)

    assert result.exit_code == 0, result.output
    assert re.search(r"^Stage inference: \d+ of 3 requests without a given stage agree", result.output, re.M)


def test_a_request_file_carrying_the_judged_stage_serves_as_the_stages_file_too(
    index_dir: Path, files: tuple[Path, Path], hash_model: None, tmp_path: Path
):
    requests, qrels = files
    lines = [json.loads(line) | {"expected_stage": "consideration"} for line in requests.read_text().splitlines()]
    both = write_lines(tmp_path / "judged_requests.jsonl", [json.dumps(line) for line in lines])

    result = invoke("evaluate", "--index-dir", index_dir, "--requests", both, "--qrels", qrels, "--stages", both)

    assert result.exit_code == 0, result.output
    assert re.search(r"^Stage inference: \d+ of 3 requests without a given stage agree", result.stdout, re.M)
    assert result.stderr == f"Ignored fields that are not a request's: expected_stage ({len(lines)})\n"


# -- translation detection against the translations a library names ----------------------------------------


def test_translation_agreement_counts_found_and_missed_translations_and_false_pairs_within_a_site():
    site = "https://vendor.example.com/"
    assets = [
        make_asset("a", url=site + "a"),
        make_asset("a-de", language="de", url=site + "a-de"),  # a's translations, and so each other's
        make_asset("a-id", language="id", url=site + "a-id"),
        make_asset("b", url=site + "b"),
        make_asset("c-de", language="de", url=site + "c-de"),  # a German original: no "c" in the library
        make_asset("x", language="de", url="https://other.example.com/x"),  # another site is not compared
    ]
    vectors = np.array([[1, 0, 0], [0.8, 0.6, 0], [0.6, 0.8, 0], [0, 0, 1], [0, 0.6, 0.8], [1, 0, 0]], dtype=np.float32)

    by_threshold = translation_agreement(assets, vectors, threshold=0.7, floor=1.0)
    with_mutual = translation_agreement(assets, vectors, threshold=0.7, floor=0.55)

    # Translations: a/a-de 0.8 found, a-de/a-id 0.96 found, a/a-id 0.6 missed. Other cross-language
    # pairs: a/c-de, a-de/b, a-id/b, a-id/c-de, and b/c-de at 0.8, taken for a translation.
    assert (by_threshold.pairs, by_threshold.found, by_threshold.others, by_threshold.false) == (3, 2, 5, 1)
    assert by_threshold.f1 == pytest.approx(2 * 2 / (3 + 2 + 1))
    assert by_threshold.line().startswith("Translation detection (threshold 0.7, mutual best from 1): 2 of 3")
    # a and a-id are each other's best English-Indonesian match (0.6): found from a floor of 0.55.
    assert (with_mutual.found, with_mutual.false) == (3, 1)


# -- repeated texts: an asset and its translation in one list ---------------------------------------------


def test_translation_groups_follow_the_id_convention_and_an_original_in_another_language_is_its_own():
    assets = [
        make_asset("a"),
        make_asset("a-de", language="de"),
        make_asset("c-de", language="de"),  # no "c": a German original
        make_asset("b-id", language="de"),  # the suffix is not its language
    ]

    assert translation_groups(assets) == {"a": "a", "a-de": "a", "c-de": "c-de", "b-id": "b-id"}


def test_repeated_texts_counts_lists_that_show_a_text_twice_and_scores_each_text_once():
    groups = {"a": "a", "a-de": "a", "b": "b", "c": "c"}
    scores = SystemScores(ranked={"q1": ["a", "a-de", "b"], "q2": ["c", "b"]})
    report = EvaluationReport(k=10, systems={"engine": scores}, groups={})
    qrels = {"q1": {"a": 3, "a-de": 2, "b": 1}, "q2": {"b": 2}}

    repeats = repeated_texts(report, "engine", qrels, groups)

    # q1: a gains 3, a-de nothing (its text is listed), b 1 at rank 3; the ideal holds a's text (3),
    # then b (1). q2: b at rank 2 against the ideal b first.
    q1 = (3 + 1 / math.log2(4)) / (3 + 1 / math.log2(3))
    q2 = (2 / math.log2(3)) / 2
    assert (repeats.lists, repeats.with_repeats) == (2, 1)
    assert repeats.ndcg == pytest.approx((q1 + q2) / 2, abs=1e-4)
    assert repeats.line().startswith("Repeated texts: 1 of 2 engine lists show one text twice")
