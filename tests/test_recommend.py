"""`Recommender`: recommendations, many at once, nurture sequences, search, tagging and writes.

Over a library built with the fake HashEmbedder (texts sharing words are similar), once per module for
the read-only tests and the Hypothesis properties, and per test (conftest's `recommender`) for writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import HashEmbedder, make_asset, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from content_library import Asset
from content_library.schema import AssetType, Role, Segment, Stage
from recommender import engine as engine_module
from recommender.build import build_index, compact
from recommender.config import RankingConfig
from recommender.engine import Recommender, _best
from recommender.errors import AssetNotFound, IndexCorrupt, ModelError, UnknownReading, UnknownSignal
from recommender.store import IndexStore
from recommender.types import (
    BuyerRequest,
    LabelSource,
    NurtureSequence,
    RecommendationResult,
    RecommendedItem,
    StageSource,
)

TODAY = dt.date(2026, 1, 1)
TOPICS = {
    "approval": "invoice approval workflow routing approvers",
    "security": "security single sign on audit encryption",
    "pricing": "plans prices per month subscription cost",
    "onboarding": "onboarding admin setup training rollout",
    "erp": "erp integration connector sync ledger",
    "cash": "cash forecasting liquidity planning treasury",
}
#: (id, type, language, segment, stage, role, topic, days old or None): 36 assets over every segment,
#: stage and role, three languages and eleven types, with one German translation of an English asset.
ROWS = [
    ("e-aw-exec-approval", "whitepaper", "en", "enterprise", "awareness", "executive", "approval", 400),
    ("e-aw-fin-cash", "report", "en", "enterprise", "awareness", "finance", "cash", 200),
    ("e-aw-it-security", "blog_post", "en", "enterprise", "awareness", "it", "security", 30),
    ("e-aw-proc-erp", "ebook", "en", "enterprise", "awareness", "procurement", "erp", 900),
    ("e-aw-user-onboarding", "video", "en", "enterprise", "awareness", "end_user", "onboarding", None),
    ("e-aw-fin-approval-de", "whitepaper", "de", "enterprise", "awareness", "finance", "approval", 100),
    ("e-co-exec-cash", "webinar", "en", "enterprise", "consideration", "executive", "cash", 60),
    ("e-co-fin-approval", "guide", "en", "enterprise", "consideration", "finance", "approval", 120),
    ("e-co-fin-approval-de", "guide", "de", "enterprise", "consideration", "finance", "approval", 120),
    ("e-co-it-erp", "webinar", "en", "enterprise", "consideration", "it", "erp", 45),
    ("e-co-proc-security", "checklist", "en", "enterprise", "consideration", "procurement", "security", 300),
    ("e-co-user-onboarding-id", "video", "id", "enterprise", "consideration", "end_user", "onboarding", 20),
    ("e-de-exec-approval", "case_study", "en", "enterprise", "decision", "executive", "approval", 10),
    ("e-de-fin-pricing", "roi_calculator", "en", "enterprise", "decision", "finance", "pricing", 70),
    ("e-de-it-security", "datasheet", "en", "enterprise", "decision", "it", "security", 15),
    ("e-de-it-security-de", "datasheet", "de", "enterprise", "decision", "it", "security", 15),
    ("e-de-proc-pricing", "checklist", "en", "enterprise", "decision", "procurement", "pricing", 500),
    ("e-de-fin-cash", "case_study", "en", "enterprise", "decision", "finance", "cash", 35),
    ("e-re-user-onboarding", "guide", "en", "enterprise", "retention", "end_user", "onboarding", 5),
    ("e-re-it-erp", "guide", "de", "enterprise", "retention", "it", "erp", 90),
    ("e-re-exec-cash", "webinar", "en", "enterprise", "retention", "executive", "cash", 250),
    ("s-aw-owner-approval", "blog_post", "en", "smb", "awareness", "owner", "approval", 40),
    ("s-aw-owner-cash", "video", "id", "smb", "awareness", "owner", "cash", 80),
    ("s-aw-owner-security", "blog_post", "de", "smb", "awareness", "owner", "security", 600),
    ("s-co-owner-pricing", "comparison", "en", "smb", "consideration", "owner", "pricing", 25),
    ("s-co-owner-erp", "guide", "id", "smb", "consideration", "owner", "erp", 150),
    ("s-co-owner-approval", "video", "en", "smb", "consideration", "owner", "approval", 12),
    ("s-de-owner-pricing", "pricing", "en", "smb", "decision", "owner", "pricing", 3),
    ("s-de-owner-pricing-id", "pricing", "id", "smb", "decision", "owner", "pricing", 3),
    ("s-de-owner-review", "review", "en", "smb", "decision", "owner", "approval", 50),
    ("s-de-owner-demo", "demo", "en", "smb", "decision", "owner", "onboarding", 8),
    ("s-de-owner-cash", "review", "de", "smb", "decision", "owner", "cash", 700),
    ("s-re-owner-onboarding", "guide", "en", "smb", "retention", "owner", "onboarding", 6),
    ("s-re-owner-erp", "video", "en", "smb", "retention", "owner", "erp", 33),
    ("s-re-owner-pricing", "guide", "id", "smb", "retention", "owner", "pricing", 66),
    ("s-re-owner-cash", "checklist", "en", "smb", "retention", "owner", "cash", 44),
]
IDS = [row[0] for row in ROWS]
EVENTS = (
    "site_visit",
    "return_visit",
    "pricing_page_view",
    "webinar_attended",
    "meeting",
    "demo",
    "technical_discussion",
    "trial_signup",
    "product_usage",
    "purchase_order",
    "renewal_due",
)


def library() -> list[Asset]:
    assets = []
    for asset_id, asset_type, language, segment, stage, role, topic, age in ROWS:
        words = TOPICS[topic]
        assets.append(
            make_asset(
                asset_id,
                title=f"{topic} {segment} {stage}",
                body=f"{words}. A {asset_type.replace('_', ' ')} for {role.replace('_', ' ')} readers.",
                asset_type=asset_type,
                language=language,
                published=None if age is None else TODAY - dt.timedelta(days=age),
                segments=[segment],
                stages=[stage],
                roles=[role],
                topic=topic,
            )
        )
    return assets


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """A read-only recommender over the 36-asset library; tests must not write to it."""
    folder = tmp_path_factory.mktemp("recommend")
    build_index([write_jsonl(folder / "library.jsonl", library())], folder / "index", HashEmbedder(), tagger=None)
    recommender = Recommender(folder / "index", HashEmbedder(), today=lambda: TODAY)
    yield recommender
    recommender.close()


def ids(result: RecommendationResult) -> list[str]:
    return [item.id for item in result.items]


def meta(asset_id: str) -> dict[str, str]:
    row = ROWS[IDS.index(asset_id)]
    return dict(zip(("id", "type", "language", "segment", "stage", "role", "topic"), row[:7], strict=True))


# -- invariants, one example each --------------------------------------------------------------------------


def test_excluded_ids_are_never_returned_and_the_list_is_still_filled(engine: Recommender):
    request = BuyerRequest(segment="enterprise", role="finance", query="invoice approval", k=5)
    first = ids(engine.recommend(request))

    again = ids(engine.recommend(request.model_copy(update={"exclude": tuple(first)})))

    assert len(again) == 5
    assert set(again).isdisjoint(first)


@pytest.mark.parametrize("k", [1, 3, 10, 36])
def test_exactly_k_items_are_returned_when_the_library_has_that_many(engine: Recommender, k: int):
    assert len(engine.recommend(BuyerRequest(segment="smb", query="pricing", k=k)).items) == k


def test_asking_for_more_than_the_library_holds_returns_every_asset_once(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="smb", k=100))

    assert sorted(ids(result)) == sorted(IDS)


def test_items_come_in_decreasing_score_order(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="enterprise", signals=["demo"], query="security audit", k=20))

    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)


def test_the_same_request_gives_the_same_result_in_this_and_in_a_new_recommender(engine: Recommender):
    request = BuyerRequest(segment="enterprise", role="it", signals=["meeting"], query="erp connector", language="de")

    first = engine.recommend(request)
    fresh = Recommender(engine.store.root, HashEmbedder(), today=lambda: TODAY)

    assert engine.recommend(request) == first
    assert fresh.recommend(request) == first
    fresh.close()


def test_each_items_reasons_add_up_to_its_score(engine: Recommender):
    request = BuyerRequest(segment="enterprise", role="finance", stage="decision", query="cash", language="en", k=20)

    for item in engine.recommend(request).items:
        assert sum(item.reasons.values()) == pytest.approx(item.score, abs=1e-5), item.reasons


def test_reasons_name_only_the_components_the_request_uses(engine: Recommender):
    bare = engine.recommend(BuyerRequest(segment="smb", k=1)).items[0]
    full = engine.recommend(BuyerRequest(segment="smb", role="owner", query="pricing", language="en", k=1)).items[0]

    assert list(bare.reasons) == ["segment", "stage", "type_prior", "freshness", "diversity"]
    assert list(full.reasons) == [
        "relevance",
        "segment",
        "role",
        "stage",
        "type_prior",
        "language",
        "freshness",
        "diversity",
    ]


def test_the_result_carries_the_index_version_and_the_full_asset(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="smb", k=1))

    assert result.index_version == engine.version
    assert result.items[0].asset == next(a for a in library() if a.id == result.items[0].id)


# -- what the buyer asked for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "preferred", "other"),
    [("de", "e-co-fin-approval-de", "e-co-fin-approval"), ("en", "e-co-fin-approval", "e-co-fin-approval-de")],
)
def test_of_two_assets_fitting_alike_the_one_in_the_requested_language_ranks_first(
    engine: Recommender, language: str, preferred: str, other: str
):
    request = BuyerRequest(segment="enterprise", role="finance", stage="consideration", language=language, k=36)

    ranked = ids(engine.recommend(request))

    assert ranked.index(preferred) < ranked.index(other)
    assert ranked[0] == preferred


def test_a_language_no_fitting_asset_is_written_in_falls_back_to_the_others(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="enterprise", stage="decision", language="fr", k=5))

    assert len(result.items) == 5
    assert all(item.reasons["language"] == 0.0 for item in result.items)


@pytest.mark.parametrize(("segment", "role"), [("smb", "owner"), ("enterprise", "executive")])
def test_an_executive_of_an_smb_is_its_owner_its_one_decision_maker(segment: str, role: str):
    assert [BuyerRequest(segment=segment, role=written).role for written in ("executive", "CEO")] == [role, role]


def test_the_asset_types_filter_returns_only_those_types(engine: Recommender):
    request = BuyerRequest(segment="smb", query="pricing", asset_types=["guide", "video"], k=20)

    result = engine.recommend(request)

    assert {item.asset.asset_type for item in result.items} == {AssetType.GUIDE, AssetType.VIDEO}
    assert len(result.items) == sum(meta(i)["type"] in ("guide", "video") for i in IDS)


def test_the_asset_types_filter_reads_other_names_for_a_type(engine: Recommender):
    written = BuyerRequest(segment="smb", query="pricing", asset_types=["Guides", "explainer video"], k=20)
    canonical = BuyerRequest(segment="smb", query="pricing", asset_types=["guide", "video"], k=20)

    assert written.asset_types == (AssetType.GUIDE, AssetType.VIDEO)
    assert engine.recommend(written).items == engine.recommend(canonical).items


def test_a_request_without_a_query_ranks_on_buyer_fit(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="smb", role="owner", stage="decision", k=4))

    assert all("relevance" not in item.reasons for item in result.items)
    assert [(meta(i)["segment"], meta(i)["stage"]) for i in ids(result)] == [("smb", "decision")] * 4


def test_a_query_brings_the_assets_on_its_topic_to_the_top(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="enterprise", query="treasury liquidity forecasting", k=3))

    assert [meta(i)["topic"] for i in ids(result)] == ["cash"] * 3


def test_the_stage_inferred_from_signals_decides_what_is_recommended(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="smb", signals=["site_visit", "purchase_order", "product_usage"]))

    assert (result.stage, result.stage_source) == (Stage.RETENTION, StageSource(kind="signal", signal="product_usage"))
    assert meta(result.items[0].id)["stage"] == "retention"


def test_a_given_stage_is_reported_as_given_and_no_stage_as_the_default(engine: Recommender):
    given = engine.recommend(BuyerRequest(segment="smb", stage="decision", signals=["site_visit"], k=1))
    default = engine.recommend(BuyerRequest(segment="smb", k=1))

    assert (given.stage, str(given.stage_source)) == (Stage.DECISION, "given")
    assert (default.stage, str(default.stage_source)) == (Stage.AWARENESS, "default")


def test_an_unknown_signal_is_an_error_naming_it(engine: Recommender):
    with pytest.raises(UnknownSignal, match=r"^unknown buying signal 'signed'; known signals are site_visit, "):
        engine.recommend(BuyerRequest(segment="enterprise", signals=["meeting", "signed"]))


def test_a_list_of_ten_thousand_excluded_ids_is_honoured(engine: Recommender):
    exclude = [f"seen-{i}" for i in range(9_998)] + ["s-de-owner-pricing", "s-de-owner-pricing-id"]

    result = engine.recommend(BuyerRequest(segment="smb", stage="decision", query="pricing", exclude=exclude, k=5))

    assert len(result.items) == 5
    assert {"s-de-owner-pricing", "s-de-owner-pricing-id"}.isdisjoint(ids(result))


def test_a_translation_of_an_item_already_chosen_pays_the_full_diversity_penalty(engine: Recommender):
    # The German datasheet is the English one translated: to HashEmbedder, the same vector.
    request = BuyerRequest(
        segment="enterprise", role="it", stage="decision", query="security sso audit", language="en", k=5
    )

    items = {item.id: item for item in engine.recommend(request).items}

    assert items["e-de-it-security"].reasons["diversity"] == 0.0
    assert items["e-de-it-security-de"].reasons["diversity"] == -engine.config.diversity


#: An English asset and its Indonesian translation that a multilingual model places 0.55-0.62 apart:
#: below `translation_threshold`, each the other's best match (to HashEmbedder, shared words).
ORIGINAL = "invoice approval routing approvers workflow audit policy limits"
TRANSLATION = "invoice approval routing approvers workflow persetujuan faktur kebijakan batas audit"


@pytest.fixture(scope="module")
def drifted_translation(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """The pair above, a German asset and an English one on other topics; plain MMR off (threshold
    0.99), so only translation handling can penalise."""
    folder = tmp_path_factory.mktemp("drifted")
    labels = {"segments": ["enterprise"], "stages": ["awareness"], "roles": ["finance"]}
    assets = [
        make_asset("approval", title="approval", body=ORIGINAL, **labels),
        make_asset("approval-id", title="persetujuan", body=TRANSLATION, language="id", **labels),
        make_asset("rules-de", title="regeln", body="rechnungen freigabe prüfer ablauf", language="de", **labels),
        make_asset("fleet", title="fleet", body="fleet vans routes drivers", **labels),
    ]
    vectors = HashEmbedder().encode([a.text for a in assets[:2]])
    assert 0.55 <= float(vectors[0] @ vectors[1]) < RankingConfig().translation_threshold
    build_index([write_jsonl(folder / "library.jsonl", assets)], folder / "index", HashEmbedder(), tagger=None)
    recommender = Recommender(folder / "index", HashEmbedder(), config=RankingConfig(diversity_threshold=0.99))
    yield recommender
    recommender.close()


def penalties(items: Iterable[RecommendedItem]) -> dict[str, float]:
    return {item.id: item.reasons["diversity"] for item in items}


def test_of_two_versions_outside_the_visitors_language_the_second_pays_the_full_penalty(
    drifted_translation: Recommender,
):
    request = BuyerRequest(segment="enterprise", stage="awareness", query="invoice approval", language="de", k=4)

    paid = penalties(drifted_translation.recommend(request).items)

    assert sorted([paid["approval"], paid["approval-id"]]) == [-drifted_translation.config.diversity, 0.0]


def test_without_a_query_a_translation_found_by_the_mutual_rule_pays_the_full_penalty(
    drifted_translation: Recommender,
):
    paid = penalties(drifted_translation.recommend(BuyerRequest(segment="enterprise", stage="awareness", k=4)).items)

    assert sorted([paid["approval"], paid["approval-id"]]) == [-drifted_translation.config.diversity, 0.0]


def test_in_a_sequence_the_translation_of_an_earlier_step_pays_the_full_penalty(drifted_translation: Recommender):
    sequence = drifted_translation.sequence(
        BuyerRequest(segment="enterprise", stage="awareness", query="invoice approval"), 4
    )

    paid = penalties(step.item for step in sequence.steps)
    assert sequence.steps[0].item.id == "approval"
    assert paid["approval-id"] == -drifted_translation.config.diversity


# -- the asset the buyer is reading ------------------------------------------------------------------------


def test_the_asset_being_read_is_never_returned(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="enterprise", reading="e-co-fin-approval", k=36))

    assert "e-co-fin-approval" not in ids(result)
    assert len(result.items) == 35


def test_without_a_query_the_read_assets_topic_leads_the_list(engine: Recommender):
    request = BuyerRequest(segment="enterprise", stage="consideration")
    assert meta(ids(engine.recommend(request))[0])["topic"] == "erp"  # buyer fit alone

    reading = engine.recommend(request.model_copy(update={"reading": "e-co-fin-approval"}))

    assert meta(ids(reading)[0])["topic"] == "approval"


def test_the_translation_of_the_read_asset_pays_the_full_diversity_penalty(engine: Recommender):
    request = BuyerRequest(segment="enterprise", stage="decision", reading="e-de-it-security", k=36)

    assert penalties(engine.recommend(request).items)["e-de-it-security-de"] == -engine.config.diversity


def test_a_query_and_the_read_asset_both_lead(engine: Recommender):
    request = BuyerRequest(segment="smb", stage="decision", k=4)

    def topics(**fields) -> set[str]:
        return {meta(i)["topic"] for i in ids(engine.recommend(request.model_copy(update=fields)))}

    assert topics(query="invoice approval") == {"approval"}
    assert topics(reading="e-co-exec-cash") == {"cash"}
    assert topics(query="invoice approval", reading="e-co-exec-cash") == {"approval", "cash"}


def test_the_read_assets_language_is_preferred_when_the_request_gives_none(engine: Recommender):
    items = engine.recommend(BuyerRequest(segment="smb", reading="e-re-it-erp", k=36)).items

    bonus = {item.asset.language: item.reasons["language"] for item in items}
    assert bonus == {"de": engine.config.weights.language, "en": 0.0, "id": 0.0}


def test_a_given_language_wins_over_the_read_assets(engine: Recommender):
    items = engine.recommend(BuyerRequest(segment="smb", reading="e-re-it-erp", language="id", k=36)).items

    assert {item.asset.language for item in items if item.reasons["language"] > 0} == {"id"}


def test_without_a_stage_or_signals_the_read_assets_stage_is_the_buyers(engine: Recommender):
    result = engine.recommend(BuyerRequest(segment="enterprise", reading="e-co-fin-approval"))

    assert (result.stage, str(result.stage_source)) == ("consideration", "reading:e-co-fin-approval")


@pytest.mark.parametrize(
    ("fields", "stage", "source"),
    [
        ({"stage": "awareness"}, "awareness", "given"),
        ({"signals": ["purchase_order"]}, "retention", "signal:purchase_order"),
    ],
)
def test_a_given_stage_or_signals_win_over_the_read_assets_stage(engine: Recommender, fields, stage, source):
    result = engine.recommend(BuyerRequest(segment="enterprise", reading="e-co-fin-approval", **fields))

    assert (result.stage, str(result.stage_source)) == (stage, source)


def test_of_a_read_assets_equally_sure_stages_the_furthest_is_the_buyers(tmp_path: Path):
    labels = {"segments": ["enterprise"], "roles": ["finance"]}
    assets = [
        make_asset("both", title="invoice approval", stages=["consideration", "decision"], **labels),
        make_asset("other", title="fleet vans", stages=["awareness"], **labels),
    ]
    build_index([write_jsonl(tmp_path / "library.jsonl", assets)], tmp_path / "index", HashEmbedder(), tagger=None)
    with closing(Recommender(tmp_path / "index", HashEmbedder())) as recommender:
        result = recommender.recommend(BuyerRequest(segment="enterprise", reading="both"))

    assert (result.stage, str(result.stage_source)) == ("decision", "reading:both")


def test_the_read_assets_stage_can_be_turned_off_for_the_default(engine: Recommender):
    with closing(
        Recommender(engine.store.root, HashEmbedder(), config=RankingConfig(stage_from_reading=False))
    ) as plain:
        result = plain.recommend(BuyerRequest(segment="enterprise", reading="e-co-fin-approval"))

    assert (result.stage, str(result.stage_source)) == ("awareness", "default")


def test_reading_an_asset_not_in_the_index_is_an_error_naming_the_field(engine: Recommender):
    with pytest.raises(UnknownReading, match=r"reading names no asset in the index \('no-such-asset'\)"):
        engine.recommend(BuyerRequest(segment="smb", reading="no-such-asset"))


@pytest.mark.parametrize(
    "written",
    [
        "https://example.com/e-de-it-security",
        "http://www.Example.com/e-de-it-security/",
        "https://example.com/e-de-it-security?utm_source=newsletter&utm_medium=email#pricing",
    ],
)
def test_an_asset_is_excluded_by_its_url_however_a_browser_writes_it(engine: Recommender, written: str):
    request = BuyerRequest(segment="enterprise", role="it", stage="decision", query="security sso audit", k=3)
    assert "e-de-it-security" in ids(engine.recommend(request))

    excluded = engine.recommend(request.model_copy(update={"exclude": (written,)}))

    assert "e-de-it-security" not in ids(excluded)


def test_the_asset_being_read_may_be_named_by_its_url(engine: Recommender):
    by_id = engine.recommend(BuyerRequest(segment="enterprise", reading="e-co-it-erp"))
    by_url = engine.recommend(BuyerRequest(segment="enterprise", reading="https://www.example.com/e-co-it-erp/"))

    assert ids(by_url) == ids(by_id)


def test_a_url_no_asset_has_is_an_error_when_read_and_excludes_nothing(engine: Recommender):
    request = BuyerRequest(segment="smb", k=36)

    assert ids(engine.recommend(request.model_copy(update={"exclude": ("https://example.com/elsewhere",)}))) == ids(
        engine.recommend(request)
    )
    with pytest.raises(UnknownReading, match="https://example.com/elsewhere"):
        engine.recommend(request.model_copy(update={"reading": "https://example.com/elsewhere"}))


def test_a_sequence_after_a_read_asset_never_uses_it_and_starts_on_its_topic(engine: Recommender):
    sequence = engine.sequence(BuyerRequest(segment="enterprise", stage="consideration", reading="e-co-exec-cash"), 4)

    chosen = [step.item.id for step in sequence.steps]
    assert "e-co-exec-cash" not in chosen
    assert meta(chosen[0])["topic"] == "cash"  # erp without the read asset


# -- a model's lean towards the query's language -----------------------------------------------------------


#: Words every "German" asset and the query share: to HashEmbedder, what a multilingual model's
#: same-language lean is, a similarity that has nothing to do with the topic.
FILLER = "der die das und ist mit für von auf"
OTHER_TOPICS = [
    "security single sign on audit",
    "plans prices subscription cost",
    "onboarding admin setup training",
    "erp connector sync ledger",
    "cash forecasting liquidity treasury",
    "fleet vans routes drivers",
]


@pytest.fixture(scope="module")
def leaning_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One English asset on invoice approval; English and German assets on six other topics."""
    folder = tmp_path_factory.mktemp("leaning")
    labels = {"segments": ["enterprise"], "stages": ["awareness"], "roles": ["finance"]}
    assets = [
        make_asset(
            "en-approval", title="invoice approval", body="invoice approval workflow routing approvers", **labels
        )
    ]
    for i, words in enumerate(OTHER_TOPICS):
        title = words.split()[0]
        assets.append(make_asset(f"de-{i}", title=title, body=f"{words} {FILLER}", language="de", **labels))
        assets.append(make_asset(f"en-{i}", title=title, body=words, language="en", **labels))
    build_index([write_jsonl(folder / "library.jsonl", assets)], folder / "index", HashEmbedder(), tagger=None)
    return folder / "index"


def top_three(index: Path, query: str, **config) -> list[str]:
    recommender = Recommender(index, HashEmbedder(), config=RankingConfig(**config))
    try:
        return ids(recommender.recommend(BuyerRequest(segment="enterprise", query=query, k=3)))
    finally:
        recommender.close()


def leaning_ranking(index: Path, **config) -> list[str]:
    return top_three(index, f"invoice approval {FILLER}", **config)


def test_the_asset_on_the_querys_topic_outranks_assets_that_only_share_its_language(leaning_index: Path):
    assert leaning_ranking(leaning_index)[0] == "en-approval"
    # Uncorrected, the lean alone puts an off-topic German asset first.
    assert leaning_ranking(leaning_index, language_centring=0.0)[0].startswith("de-")


@pytest.mark.parametrize("group", ["language", "type"])
def test_the_build_stores_each_groups_mean_vector_and_the_index_counts_its_assets(engine: Recommender, group: str):
    snapshot = engine.snapshot
    rows = snapshot.living_rows()
    features = snapshot.features_of(rows)
    vectors, codes = snapshot.vectors_of(rows), features.language if group == "language" else features.asset_type
    means, counts = getattr(snapshot, f"{group}_means"), getattr(snapshot, f"{group}_counts")
    present = sorted(set(codes.tolist()))

    assert len(present) > 1
    for code in present:
        np.testing.assert_allclose(means[code], vectors[codes == code].mean(axis=0), atol=1e-6)
        assert counts[code] == (codes == code).sum()
    assert not np.delete(means, present, axis=0).any()
    assert not np.delete(counts, present).any()


def test_language_means_of_the_wrong_shape_are_refused_naming_the_file(tmp_path: Path, leaning_index: Path):
    # Fewer rows than language codes in use.
    damaged = copy_with_file(leaning_index, tmp_path / "index", "language_means.npy", np.zeros((3, 64), np.float32))

    with pytest.raises(IndexCorrupt, match=r"language_means\.npy holds an array of shape \(3, 64\).*rebuild the index"):
        Recommender(damaged, HashEmbedder())


def copy_with_file(index: Path, copy: Path, name: str, array: np.ndarray | None) -> Path:
    """A copy of `index` whose current version's file `name` holds `array`, recorded in its manifest (or,
    for None, has no such file, as versions written before the file existed)."""
    shutil.copytree(index, copy)
    folder = IndexStore(copy).version_dir(IndexStore(copy).require_current())
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if array is None:
        del manifest["files"][name]
        (folder / name).unlink()
    else:
        np.save(folder / name, array)
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def test_an_index_written_without_language_means_ranks_as_if_centring_were_off(tmp_path: Path, leaning_index: Path):
    older = copy_with_file(leaning_index, tmp_path / "index", "language_means.npy", None)

    assert leaning_ranking(older) == leaning_ranking(leaning_index, language_centring=0.0)


# -- a model's lean towards the query's style --------------------------------------------------------------


#: Words every blog post and the query share: to HashEmbedder, what a model's lean towards texts written
#: like the query is, a similarity that has nothing to do with the topic.
STYLE = "you your tips why how what"


@pytest.fixture(scope="module")
def styled_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One guide on invoice approval; a guide and a chatty blog post on each of twenty other topics (posts
    enough for their mean to be their style rather than any one topic)."""
    folder = tmp_path_factory.mktemp("styled")
    labels = {"segments": ["enterprise"], "stages": ["awareness"], "roles": ["finance"]}
    assets = [
        make_asset(
            "approval-guide", title="invoice approval", body="invoice approval workflow", asset_type="guide", **labels
        )
    ]
    for i in range(20):
        words = f"subject{i} matter{i} theme{i}"
        assets.append(make_asset(f"guide-{i}", title=f"subject{i}", body=words, asset_type="guide", **labels))
        assets.append(
            make_asset(f"blog-{i}", title=f"subject{i}", body=f"{words} {STYLE}", asset_type="blog_post", **labels)
        )
    build_index([write_jsonl(folder / "library.jsonl", assets)], folder / "index", HashEmbedder(), tagger=None)
    return folder / "index"


def styled_ranking(index: Path, **config) -> list[str]:
    return top_three(index, f"invoice approval {STYLE}", **config)


def test_the_asset_on_the_querys_topic_outranks_assets_that_only_share_its_style(styled_index: Path):
    assert styled_ranking(styled_index)[0] == "approval-guide"
    # Uncorrected, the lean alone puts an off-topic blog post first.
    assert styled_ranking(styled_index, type_centring=0.0)[0].startswith("blog-")


def test_an_index_written_without_type_means_ranks_as_if_type_centring_were_off(tmp_path: Path, styled_index: Path):
    older = copy_with_file(styled_index, tmp_path / "index", "type_means.npy", None)

    assert styled_ranking(older) == styled_ranking(styled_index, type_centring=0.0)


def test_info_lists_the_files_an_older_version_lacks_and_compact_adds_them(tmp_path: Path, styled_index: Path):
    older = copy_with_file(styled_index, tmp_path / "index", "type_means.npy", None)
    recommender = Recommender(older, HashEmbedder())
    try:
        assert recommender.info()["missing_files"] == ["type_means.npy"]
    finally:
        recommender.close()

    compact(older)

    recommender = Recommender(older, HashEmbedder())
    try:
        assert recommender.info()["missing_files"] == []
    finally:
        recommender.close()
    assert styled_ranking(older) == styled_ranking(styled_index)


def test_an_index_written_without_a_url_index_finds_no_asset_by_url_and_says_compact_adds_it(
    tmp_path: Path, styled_index: Path
):
    older = copy_with_file(styled_index, tmp_path / "index", "url_index.npy", None)
    request = BuyerRequest(segment="enterprise", reading="https://example.com/approval-guide")
    recommender = Recommender(older, HashEmbedder())
    try:
        with pytest.raises(UnknownReading, match="predates finding assets by URL: run `recommender compact`"):
            recommender.recommend(request)
    finally:
        recommender.close()

    compact(older)

    recommender = Recommender(older, HashEmbedder())
    try:
        assert recommender.recommend(request).items
    finally:
        recommender.close()


def test_a_url_index_of_the_wrong_shape_is_refused_naming_the_file(tmp_path: Path, styled_index: Path):
    damaged = copy_with_file(styled_index, tmp_path / "index", "url_index.npy", np.zeros((2, 3), np.uint64))

    with pytest.raises(IndexCorrupt, match=r"url_index\.npy is not a URL index of 41 assets"):
        Recommender(damaged, HashEmbedder())


def test_type_means_of_the_wrong_shape_are_refused_naming_the_file(tmp_path: Path, styled_index: Path):
    damaged = copy_with_file(styled_index, tmp_path / "index", "type_means.npy", np.zeros((3, 64), np.float32))

    with pytest.raises(IndexCorrupt, match=r"type_means\.npy holds an array of shape \(3, 64\).*asset types"):
        Recommender(damaged, HashEmbedder())


# -- many requests at once ---------------------------------------------------------------------------------


REQUESTS = [
    BuyerRequest(segment="enterprise", role="finance", query="invoice approval", language="de", k=4),
    BuyerRequest(segment="smb", signals=["return_visit", "pricing_page_view"], k=3),
    BuyerRequest(segment="smb", query="invoice approval", exclude=["s-aw-owner-approval"], k=2),
    BuyerRequest(segment="enterprise", stage="retention", asset_types=["guide"], k=2),
]


def test_recommend_many_gives_what_recommend_gives_one_request_at_a_time(engine: Recommender):
    assert engine.recommend_many(REQUESTS) == [engine.recommend(r) for r in REQUESTS]


def narrow(engine: Recommender) -> Recommender:
    """The module's index with few candidates per ranking, so that which rows a search returns decides
    what is recommended."""
    config = RankingConfig(candidates_min=2, candidates_per_k=1)
    return Recommender(engine.store.root, HashEmbedder(), config=config, today=lambda: TODAY)


def counting_searches(recommender: Recommender, monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The query of each search of `recommender`'s index from now on."""
    queries: list[np.ndarray] = []
    search = recommender._snapshot.search
    monkeypatch.setattr(
        recommender._snapshot, "search", lambda query, *args: queries.append(query) or search(query, *args)
    )
    return queries


#: Five buyers, three queries: the first and the last share theirs.
MANY_QUERIES = [
    BuyerRequest(segment="enterprise", role="finance", query="invoice approval workflow", k=3),
    BuyerRequest(segment="smb", query="plans prices per month", exclude=["s-de-owner-pricing"], k=2),
    BuyerRequest(segment="enterprise", query="security audit encryption", language="de", k=4),
    BuyerRequest(segment="smb", stage="awareness", k=2),
    BuyerRequest(segment="enterprise", query="invoice approval workflow", stage="decision", k=1),
]


@pytest.mark.parametrize(
    ("requests", "searches"),
    [
        (MANY_QUERIES, 3),
        # A read asset moves the query: that request searches on its own.
        ([*MANY_QUERIES, BuyerRequest(segment="smb", query="plans prices per month", reading="e-co-exec-cash")], 4),
    ],
    ids=["three queries", "and one beside a read asset"],
)
def test_recommend_many_searches_the_index_once_for_each_distinct_query(
    engine: Recommender, monkeypatch: pytest.MonkeyPatch, requests: list[BuyerRequest], searches: int
):
    recommender = narrow(engine)
    one_at_a_time = [recommender.recommend(r) for r in requests]
    counted = counting_searches(recommender, monkeypatch)

    assert recommender.recommend_many(requests) == one_at_a_time
    assert len(counted) == searches


def test_sequence_many_searches_the_index_once_for_each_distinct_query_for_all_steps(
    engine: Recommender, monkeypatch: pytest.MonkeyPatch
):
    recommender = narrow(engine)
    one_at_a_time = [recommender.sequence(r, 5) for r in MANY_QUERIES]
    searches = counting_searches(recommender, monkeypatch)

    assert recommender.sequence_many(MANY_QUERIES, 5) == one_at_a_time
    assert len(searches) == 3


def test_recommend_many_keeps_an_error_to_its_own_request(engine: Recommender):
    bad = BuyerRequest(segment="smb", signals=["bought_it"])

    results = engine.recommend_many([REQUESTS[0], bad, REQUESTS[1]])

    assert results[0] == engine.recommend(REQUESTS[0])
    assert isinstance(results[1], UnknownSignal)
    assert "'bought_it'" in str(results[1])
    assert results[2] == engine.recommend(REQUESTS[1])


def test_recommend_many_of_nothing_is_nothing(engine: Recommender):
    assert engine.recommend_many([]) == []


def test_a_query_asked_again_is_not_embedded_again_whatever_its_spacing(
    engine: Recommender, monkeypatch: pytest.MonkeyPatch
):
    engine.embed_query.cache_clear()
    encoded = []
    original = engine.embedder.encode_query
    monkeypatch.setattr(engine.embedder, "encode_query", lambda text: encoded.append(text) or original(text))

    for query in ("invoice approval", " invoice   approval ", "invoice approval"):
        engine.recommend(BuyerRequest(segment="enterprise", query=query, k=3))

    assert len(encoded) == 1


# -- nurture sequences -------------------------------------------------------------------------------------


def nurture(engine: Recommender, steps: int, **request: Any) -> NurtureSequence:
    return engine.sequence(BuyerRequest(**request), steps)


def ids_of(sequence: NurtureSequence) -> list[str]:
    return [step.item.id for step in sequence.steps]


def stages_of(sequence: NurtureSequence) -> list[Stage]:
    return [step.stage for step in sequence.steps]


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_a_sequence_has_one_asset_per_step(engine: Recommender, steps: int):
    assert len(nurture(engine, steps, segment="enterprise", stage="awareness").steps) == steps


def test_a_sequence_moves_down_the_funnel_from_its_stage_to_decision_spreading_the_steps(engine: Recommender):
    sequence = nurture(engine, 7, segment="enterprise", stage="awareness", role="finance")

    # Seven steps over three stages: the earlier stages take the remainder.
    assert stages_of(sequence) == [Stage.AWARENESS] * 3 + [Stage.CONSIDERATION] * 2 + [Stage.DECISION] * 2
    assert [meta(i)["stage"] for i in ids_of(sequence)] == [s.value for s in stages_of(sequence)]
    assert (sequence.stage, sequence.stage_source) == (Stage.AWARENESS, StageSource(kind="given"))


def test_a_sequence_without_a_stage_starts_where_the_signals_point(engine: Recommender):
    sequence = nurture(engine, 4, segment="smb", signals=["site_visit", "pricing_page_view"])

    assert sequence.stage == Stage.DECISION
    assert str(sequence.stage_source) == "signal:pricing_page_view"
    assert stages_of(sequence) == [Stage.DECISION] * 2 + [Stage.RETENTION] * 2


def test_a_sequence_without_a_stage_or_signals_starts_at_the_read_assets_stage(engine: Recommender):
    sequence = nurture(engine, 2, segment="enterprise", reading="e-co-exec-cash")

    assert (sequence.stage, str(sequence.stage_source)) == (Stage.CONSIDERATION, "reading:e-co-exec-cash")
    assert stages_of(sequence) == [Stage.CONSIDERATION, Stage.DECISION]


def test_a_sequence_without_a_stage_signals_or_read_asset_starts_at_the_default(engine: Recommender):
    sequence = nurture(engine, 3, segment="smb")

    assert (sequence.stage, sequence.stage_source.kind) == (engine.config.default_stage, "default")


def test_a_sequence_keeps_to_the_asked_asset_types(engine: Recommender):
    sequence = nurture(engine, 6, segment="enterprise", stage="awareness", asset_types=["case_study", "webinar"])

    assert sequence.steps
    assert {step.item.asset.asset_type.value for step in sequence.steps} <= {"case_study", "webinar"}


def test_a_sequence_ignores_the_requests_k(engine: Recommender):
    assert ids_of(nurture(engine, 5, segment="smb", stage="awareness", k=1)) == ids_of(
        nurture(engine, 5, segment="smb", stage="awareness", k=40)
    )


@pytest.mark.parametrize("steps", [0, -3])
def test_a_sequence_of_fewer_than_one_step_is_refused(engine: Recommender, steps: int):
    with pytest.raises(ValueError, match="steps must be at least 1"):
        nurture(engine, steps, segment="smb", stage="awareness")


def test_a_sequence_with_an_unknown_signal_is_refused_naming_the_known_ones(engine: Recommender):
    with pytest.raises(UnknownSignal, match="known signals are"):
        nurture(engine, 3, segment="smb", signals=["webinar"])


class EverySearch(engine_module._Nearest):
    """Searches anew for every step, as sequences did before their steps shared one search."""

    def __call__(self, query: np.ndarray, n: int, state: Any) -> np.ndarray:
        return self._snapshot.search(query, n, state)[1]


@pytest.mark.parametrize("reading", [None, "e-co-exec-cash"])
def test_a_sequences_steps_share_one_search_and_rank_as_searching_each_step_would(
    engine: Recommender, monkeypatch: pytest.MonkeyPatch, reading: str | None
):
    # Few candidates per ranking, so that which rows the search returns decides what the steps hold.
    narrow = Recommender(engine.store.root, HashEmbedder(), config=RankingConfig(candidates_min=2, candidates_per_k=1))
    request = BuyerRequest(segment="enterprise", stage="awareness", query="invoice approval workflow", reading=reading)
    searches = []
    search = narrow._snapshot.search
    monkeypatch.setattr(narrow._snapshot, "search", lambda *args: searches.append(args) or search(*args))

    shared = narrow.sequence(request, 7)
    assert len(searches) == 1
    monkeypatch.setattr(engine_module, "_Nearest", EverySearch)
    assert narrow.sequence(request, 7) == shared
    assert len(searches) == 8
    assert len(shared.steps) == 7


def test_sequence_many_gives_what_sequence_gives_one_buyer_at_a_time(engine: Recommender):
    assert engine.sequence_many(REQUESTS, 3) == [engine.sequence(r, 3) for r in REQUESTS]


def test_sequence_many_takes_a_length_per_buyer(engine: Recommender):
    answers = engine.sequence_many(REQUESTS[:2], [1, 4])

    assert [len(answer.steps) for answer in answers] == [1, 4]


def test_sequence_many_keeps_an_error_to_its_own_buyer(engine: Recommender):
    bad = BuyerRequest(segment="smb", reading="no-such-asset")

    answers = engine.sequence_many([REQUESTS[0], bad], 2)

    assert isinstance(answers[0], NurtureSequence)
    assert isinstance(answers[1], UnknownReading)


def test_sequence_many_refuses_a_length_list_that_does_not_match_the_buyers(engine: Recommender):
    with pytest.raises(ValueError, match="2 sequence lengths for 3 requests"):
        engine.sequence_many(REQUESTS[:3], [2, 2])


def test_a_sequence_starting_at_decision_continues_into_retention(engine: Recommender):
    sequence = nurture(engine, 4, segment="smb", stage="decision")

    assert stages_of(sequence) == [Stage.DECISION] * 2 + [Stage.RETENTION] * 2


def test_a_sequence_never_repeats_an_asset_or_returns_an_excluded_one(engine: Recommender):
    chosen = ids_of(nurture(engine, 12, segment="smb", stage="awareness", exclude=["s-aw-owner-approval"]))

    assert len(chosen) == len(set(chosen)) == 12
    assert "s-aw-owner-approval" not in chosen


def test_a_sequence_ends_early_when_the_library_runs_out(engine: Recommender):
    assert sorted(ids_of(nurture(engine, 50, segment="smb", stage="awareness"))) == sorted(IDS)


def test_a_sequence_honours_an_exclude_list_of_ten_thousand_ids(engine: Recommender):
    exclude = [f"seen-{i}" for i in range(9_990)] + [i for i in IDS if i.startswith("s-")][:10]

    chosen = ids_of(nurture(engine, 5, segment="smb", stage="consideration", query="pricing", exclude=exclude))

    assert len(chosen) == 5
    assert set(exclude).isdisjoint(chosen)


# -- search ------------------------------------------------------------------------------------------------


def test_search_returns_the_k_closest_assets_with_their_cosine_best_first(engine: Recommender):
    hits = engine.search("single sign on security audit", k=4)

    assert [meta(asset_id)["topic"] for asset_id, _, _ in hits] == ["security"] * 4
    cosines = [cosine for _, cosine, _ in hits]
    assert cosines == sorted(cosines, reverse=True)
    assert all(asset.id == asset_id for asset_id, _, asset in hits)


# -- Hypothesis: properties over any request ---------------------------------------------------------------


requests = st.builds(
    BuyerRequest,
    segment=st.sampled_from(list(Segment)),
    role=st.none() | st.sampled_from(list(Role)),
    stage=st.none() | st.sampled_from(list(Stage)),
    signals=st.lists(st.sampled_from(EVENTS), max_size=4).map(tuple),
    query=st.none()
    | st.lists(st.sampled_from(" ".join(TOPICS.values()).split()), min_size=1, max_size=4).map(" ".join),
    language=st.none() | st.sampled_from(["en", "de", "id", "fr"]),
    exclude=st.lists(st.sampled_from(IDS), max_size=30, unique=True).map(tuple),
    reading=st.none() | st.sampled_from(IDS),
    asset_types=st.lists(st.sampled_from(list(AssetType)), max_size=3, unique=True).map(tuple),
    k=st.integers(min_value=1, max_value=40),
)
PROPERTY = settings(max_examples=40, deadline=None)


def eligible(request: BuyerRequest) -> set[str]:
    types = {t.value for t in request.asset_types}
    return {
        i for i in IDS if i not in request.exclude and i != request.reading and (not types or meta(i)["type"] in types)
    }


@PROPERTY
@given(request=requests)
def test_property_every_item_is_eligible_and_there_are_k_or_every_eligible_one(
    engine: Recommender, request: BuyerRequest
):
    returned = ids(engine.recommend(request))

    assert len(returned) == len(set(returned)) == min(request.k, len(eligible(request)))
    assert set(returned) <= eligible(request)


@PROPERTY
@given(request=requests)
def test_property_scores_are_sorted_and_reasons_add_up_to_them(engine: Recommender, request: BuyerRequest):
    items = engine.recommend(request).items

    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)
    for item in items:
        assert sum(item.reasons.values()) == pytest.approx(item.score, abs=1e-5)


@PROPERTY
@given(request=requests)
def test_property_the_same_request_gives_the_same_result(engine: Recommender, request: BuyerRequest):
    first = engine.recommend(request)
    engine._result_cache.clear()  # ranked again, not answered from the caches
    engine._static_cache.clear()
    engine.embed_query.cache_clear()

    assert engine.recommend(BuyerRequest.model_validate(request.model_dump())) == first


TRANSLATIONS = [("e-co-fin-approval", "e-co-fin-approval-de"), ("e-de-it-security", "e-de-it-security-de")]


@PROPERTY
@given(request=requests, language=st.sampled_from(["en", "de"]))
def test_property_of_two_translations_the_one_in_the_requested_language_ranks_higher(
    engine: Recommender, request: BuyerRequest, language: str
):
    # Each pair is one text in two languages: same labels, type, date and (to HashEmbedder) vector. Without
    # a read asset: what looks like its translation pays as already read, in any language (tested above).
    asked = request.model_copy(update={"language": language, "k": 36, "reading": None})
    ranked = ids(engine.recommend(asked))

    for english, german in TRANSLATIONS:
        if english in ranked and german in ranked:
            preferred, other = (german, english) if language == "de" else (english, german)
            assert ranked.index(preferred) < ranked.index(other)


@PROPERTY
@given(request=requests)
def test_property_recommend_many_matches_recommend(engine: Recommender, request: BuyerRequest):
    other = request.model_copy(
        update={"segment": Segment.SMB if request.segment is Segment.ENTERPRISE else Segment.ENTERPRISE}
    )

    assert engine.recommend_many([request, other]) == [engine.recommend(request), engine.recommend(other)]


# -- tagging and writes (a fresh index per test) -----------------------------------------------------------


def newcomer(**fields) -> Asset:
    return make_asset(
        "new-payroll-1",
        title="Payroll tax filing for bakeries",
        body="Payroll tax filing explained for a bakery owner: deadlines, forms and penalties.",
        asset_type="guide",
        segments=["smb"],
        stages=["awareness"],
        roles=["owner"],
        **fields,
    )


def test_an_upserted_asset_is_recommended_by_the_next_request(recommender: Recommender):
    request = BuyerRequest(segment="smb", query="payroll tax filing bakery", k=1)
    assert ids(recommender.recommend(request)) != ["new-payroll-1"]

    recommender.upsert([newcomer()])

    assert ids(recommender.recommend(request)) == ["new-payroll-1"]


def test_an_upserted_asset_replaces_the_one_with_its_id(recommender: Recommender):
    recommender.upsert([newcomer()])

    recommender.upsert([newcomer(language="de")])

    result = recommender.recommend(BuyerRequest(segment="smb", query="payroll tax filing bakery", k=12))
    assert [item.asset.language for item in result.items if item.id == "new-payroll-1"] == ["de"]


def test_a_deleted_asset_is_never_recommended_again(recommender: Recommender):
    request = BuyerRequest(segment="smb", query="plans and prices per month", k=12)
    assert "smb-dec-1" in ids(recommender.recommend(request))

    recommender.delete(["smb-dec-1"])

    assert "smb-dec-1" not in ids(recommender.recommend(request))
    assert len(recommender.recommend(request).items) == 11
    assert recommender.get("smb-dec-1") is None


def test_an_asset_written_since_the_build_can_be_read_and_a_deleted_one_cannot(recommender: Recommender):
    recommender.upsert([newcomer()])
    result = recommender.recommend(BuyerRequest(segment="smb", reading="new-payroll-1"))
    recommender.delete(["new-payroll-1"])

    assert "new-payroll-1" not in ids(result)
    with pytest.raises(UnknownReading):
        recommender.recommend(BuyerRequest(segment="smb", reading="new-payroll-1"))


def test_an_asset_written_since_the_build_is_found_at_its_new_url_and_no_longer_at_its_old_one(
    recommender: Recommender,
):
    recommender.upsert([newcomer(url="https://example.com/payroll")])
    recommender.upsert([newcomer(url="https://example.com/payroll-2026")])

    result = recommender.recommend(BuyerRequest(segment="smb", reading="https://example.com/payroll-2026"))

    assert "new-payroll-1" not in ids(result)
    with pytest.raises(UnknownReading):
        recommender.recommend(BuyerRequest(segment="smb", reading="https://example.com/payroll"))


def test_an_asset_whose_url_the_standard_library_cannot_split_is_written_and_found_by_it(recommender: Recommender):
    recommender.upsert([newcomer(url="hTtPS://]")])

    assert recommender.snapshot.resolve(["https://]"]) == {"new-payroll-1"}


def test_a_rewritten_asset_of_the_build_is_found_at_its_new_url_only(recommender: Recommender):
    old_url = recommender.get("ent-dec-1")[0].url
    recommender.upsert([recommender.get("ent-dec-1")[0].model_copy(update={"url": "https://example.com/moved"})])

    assert recommender.snapshot.resolve(["https://example.com/moved", old_url]) == {"ent-dec-1"}
    assert recommender.snapshot.row_of(old_url) is None


def test_deleting_an_unknown_id_deletes_nothing(recommender: Recommender):
    with pytest.raises(AssetNotFound):
        recommender.delete(["smb-dec-1", "no-such-asset"])

    assert recommender.get("smb-dec-1") is not None


def test_another_processs_write_is_seen_after_refresh(recommender: Recommender, index_dir: Path):
    writer = Recommender(index_dir, HashEmbedder())
    writer.upsert([newcomer()])
    writer.close()
    request = BuyerRequest(segment="smb", query="payroll tax filing bakery", k=1)

    recommender.refresh()

    assert ids(recommender.recommend(request)) == ["new-payroll-1"]


def test_tag_keeps_curated_labels_and_stores_nothing(recommender: Recommender):
    (labels,) = recommender.tag([newcomer()])

    assert (labels.segments.labels, labels.stages.labels, labels.roles.labels) == (("smb",), ("awareness",), ("owner",))
    assert labels.stages.source is LabelSource.CURATED
    assert recommender.get("new-payroll-1") is None


def test_tagging_an_untagged_asset_without_a_tagger_says_which_field_is_missing(recommender: Recommender):
    with pytest.raises(ModelError, match="asset 'new-payroll-1' has no curated segments"):
        recommender.tag([newcomer().model_copy(update={"segments": ()})])


def test_an_untagged_asset_is_labelled_by_the_tagger_when_upserted(index_dir: Path, embedder: HashEmbedder):
    from recommender.tagging import Tagger, TaggerInput
    from recommender.training import curated_labels

    assets = library()
    tagger = Tagger(text_features=2**12).fit(
        TaggerInput.of(assets, embedder.encode([a.text for a in assets])), curated_labels(assets), model=embedder.name
    )
    recommender = Recommender(index_dir, embedder, tagger, today=lambda: TODAY)
    untagged = newcomer().model_copy(update={"segments": (), "stages": (), "roles": ()})

    recommender.upsert([untagged])

    _, labels = recommender.get("new-payroll-1")
    assert {labels.field(f).source for f in ("segments", "stages", "roles")} == {LabelSource.PREDICTED}
    assert labels.model_version == tagger.version
    assert all(0.0 <= p <= 1.0 for p in labels.segments.scores.values())


def test_a_library_of_one_asset_answers_a_query(tmp_path: Path, embedder: HashEmbedder):
    library_file = write_jsonl(tmp_path / "library.jsonl", [make_asset("only-1")])
    build_index([library_file], tmp_path / "index", embedder, tagger=None)
    recommender = Recommender(tmp_path / "index", embedder)

    result = recommender.recommend(BuyerRequest(segment="enterprise", query="invoice approval"))

    assert ids(result) == ["only-1"]


# -- the buyers' candidate lists across writes -------------------------------------------------------------

#: Candidate lists of 2 x max(2, k) rows: short enough against 36 assets that writes and exclusions
#: move rows in and out of them.
SHORT_LISTS = RankingConfig(candidates_min=2, candidates_per_k=1)
BUYERS = [
    BuyerRequest(segment=segment, stage=stage, role=role, language=language, k=3)
    for segment in Segment
    for stage in Stage
    for role in (None, Role.FINANCE, Role.OWNER)
    for language in (None, "de")
]


@pytest.fixture
def short_lists(tmp_path: Path, embedder: HashEmbedder) -> Recommender:
    build_index([write_jsonl(tmp_path / "library.jsonl", library())], tmp_path / "index", embedder, tagger=None)
    return Recommender(tmp_path / "index", embedder, config=SHORT_LISTS, today=lambda: TODAY)


def rewrites() -> list[Asset]:
    """A new asset fitting enterprise finance at decision, one for SMB owners, and a relabelled one."""
    moved = library()[IDS.index("s-de-owner-pricing")].model_copy(update={"stages": (Stage.AWARENESS,)})
    return [
        newcomer(),
        make_asset(
            "new-board-pack",
            asset_type="case_study",
            segments=["enterprise"],
            stages=["decision"],
            roles=["finance"],
            published=TODAY,
        ),
        moved,
    ]


def test_rankings_after_writes_equal_those_of_a_recommender_opened_afresh(short_lists: Recommender, tmp_path: Path):
    for request in BUYERS:
        short_lists.recommend(request)

    short_lists.upsert(rewrites())
    short_lists.delete(["e-de-exec-approval", "s-de-owner-review", "e-de-fin-cash"])
    fresh = Recommender(tmp_path / "index", short_lists.embedder, config=SHORT_LISTS, today=lambda: TODAY)

    for request in BUYERS:
        visitor = request.model_copy(update={"exclude": ("s-de-owner-demo", "e-de-fin-pricing")})
        assert short_lists.recommend(request) == fresh.recommend(request)
        assert short_lists.recommend(visitor) == fresh.recommend(visitor)


def test_a_write_updates_each_buyers_list_without_ranking_the_library_again(
    short_lists: Recommender, monkeypatch: pytest.MonkeyPatch
):
    for request in BUYERS:
        short_lists.recommend(request)
    ranked = []
    original = short_lists._ranked_fits
    monkeypatch.setattr(short_lists, "_ranked_fits", lambda *args: ranked.append(args) or original(*args))

    short_lists.upsert(rewrites())
    for request in BUYERS:
        short_lists.recommend(request)

    assert ranked == []


def test_the_best_totals_are_found_exactly_with_ties_in_row_order():
    rng = np.random.default_rng(4)
    totals = rng.integers(0, 50, 100_000).astype(np.float32)  # many equal totals
    rows = rng.permutation(100_000)
    # The sampled positions (every 625th) hold the largest totals: the sampled bar lets too few rows
    # through, and the exact count-th largest is used instead.
    skewed = totals.copy()
    skewed[::625] += 100

    for values in (totals, skewed):
        for count in (1, 10, 400, 5_000):
            expected = np.lexsort((rows, -values))[:count]
            np.testing.assert_array_equal(_best(values, rows, count), expected)
