"""The buyer's stage: given, inferred from buying signals by the map in data/stage_signals.toml, or the default."""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from pathlib import Path

import pytest

from content_library.schema import Segment, Stage
from recommender.config import DATA_DIR, RankingConfig, StageSignalMap
from recommender.engine import Recommender
from recommender.errors import ConfigError, UnknownSignal
from recommender.signals import check_signals, resolve_stage
from recommender.types import BuyerRequest, StageSource

SHIPPED = DATA_DIR / "stage_signals.toml"
with open(SHIPPED, "rb") as _fh:
    SHIPPED_RAW = tomllib.load(_fh)
SIGNALS = StageSignalMap.from_toml(SHIPPED)
EVENTS = tuple(SHIPPED_RAW["enterprise"])
AFTER_PURCHASE = SHIPPED_RAW["after_purchase"]
#: Every (segment, event, stage) line of the shipped file: an event added there is tested here too.
MAPPED = [(segment, event, stage) for segment in Segment for event, stage in SHIPPED_RAW[segment.value].items()]

ISSUE_VOCABULARY = {
    "site_visit",
    "return_visit",
    "pricing_page_view",
    "review_site_visit",
    "trial_signup",
    "teammate_invited",
    "product_usage",
    "content_download",
    "webinar_attended",
    "meeting",
    "demo",
    "technical_discussion",
    "security_review",
    "procurement_contact",
    "purchase_order",
    "renewal_due",
}


def resolve(segment: str, signals: list[str], stage: str | None = None) -> tuple[Stage, StageSource]:
    given = Stage(stage) if stage else None
    return resolve_stage(Segment(segment), given, signals, SIGNALS, Stage.AWARENESS)


def write_map(path: Path, enterprise: dict[str, str], smb: dict[str, str] | None = None, after: str = "") -> Path:
    def table(name: str, rows: dict[str, str]) -> str:
        return f"[{name}]\n" + "".join(f'{event} = "{stage}"\n' for event, stage in rows.items())

    path.write_text(table("enterprise", enterprise) + table("smb", smb or enterprise) + after, encoding="utf-8")
    return path


# -- the shipped map ---------------------------------------------------------------------------------------


def test_the_shipped_map_covers_exactly_the_event_vocabulary_of_the_issue_for_both_segments():
    assert set(SHIPPED_RAW["enterprise"]) == ISSUE_VOCABULARY
    assert set(SHIPPED_RAW["smb"]) == ISSUE_VOCABULARY
    assert set(SIGNALS.events) == ISSUE_VOCABULARY


@pytest.mark.parametrize(("segment", "event", "stage"), MAPPED, ids=[f"{s.value}-{e}" for s, e, _ in MAPPED])
def test_a_single_event_is_evidence_of_the_stage_the_map_gives_it(segment: Segment, event: str, stage: str):
    assert resolve(segment, [event]) == (Stage(stage), StageSource(kind="signal", signal=event))


@pytest.mark.parametrize(
    ("segment", "sequence"),
    [
        # domain.md: meetings turn into demos, demos into technical discussions, then procurement, a purchase order.
        ("enterprise", ["meeting", "demo", "technical_discussion", "procurement_contact", "purchase_order"]),
        # domain.md: came back to the site, looked at pricing, added a teammate to the trial, used the product.
        ("smb", ["return_visit", "pricing_page_view", "teammate_invited", "product_usage"]),
    ],
)
def test_each_step_of_the_segments_buying_sequence_in_domain_md_is_never_earlier_than_the_one_before(
    segment: str, sequence: list[str]
):
    positions = [resolve(segment, [event])[0].position for event in sequence]

    assert positions == sorted(positions)
    assert positions[0] == Stage.CONSIDERATION.position


def test_an_enterprise_committee_that_sent_a_purchase_order_is_in_retention():
    sequence = ["meeting", "demo", "technical_discussion", "procurement_contact", "purchase_order"]

    assert resolve("enterprise", sequence) == (Stage.RETENTION, StageSource(kind="signal", signal="purchase_order"))


def test_an_smb_owner_using_the_product_before_buying_is_deciding_not_retained():
    sequence = ["return_visit", "pricing_page_view", "teammate_invited", "product_usage"]

    assert resolve("smb", sequence) == (Stage.DECISION, StageSource(kind="signal", signal="product_usage"))


def test_a_first_site_visit_is_awareness_and_a_pricing_page_view_is_decision_in_both_segments():
    for segment in Segment:
        assert resolve(segment, ["site_visit"])[0] is Stage.AWARENESS
        assert resolve(segment, ["pricing_page_view"])[0] is Stage.DECISION


# -- several signals: the furthest evidence wins -----------------------------------------------------------


def test_the_furthest_evidence_wins_for_every_pair_of_events_in_either_order():
    purchases = set(AFTER_PURCHASE["purchase_events"])
    checked = 0
    for segment, (first, second) in itertools.product(Segment, itertools.product(EVENTS, repeat=2)):
        if first in purchases:
            continue  # what follows a purchase is the next test's subject
        stages = [Stage(SHIPPED_RAW[segment.value][event]) for event in (first, second)]

        stage, _ = resolve(segment, [first, second])

        assert stage is max(stages, key=lambda s: s.position), (segment, first, second)
        checked += 1
    assert checked == 2 * len(EVENTS) * (len(EVENTS) - len(purchases))


def test_a_later_signal_of_an_earlier_stage_does_not_move_the_buyer_back():
    assert resolve("enterprise", ["demo", "site_visit", "webinar_attended"]) == (
        Stage.DECISION,
        StageSource(kind="signal", signal="demo"),
    )


def test_on_a_tie_the_latest_signal_of_the_furthest_stage_is_named_as_the_source():
    assert resolve("smb", ["pricing_page_view", "site_visit", "trial_signup"]) == (
        Stage.DECISION,
        StageSource(kind="signal", signal="trial_signup"),
    )


@pytest.mark.parametrize("segment", list(Segment))
@pytest.mark.parametrize("event", AFTER_PURCHASE["becomes_retention"])
def test_after_a_purchase_order_each_listed_event_is_evidence_of_retention(segment: Segment, event: str):
    assert resolve(segment, ["purchase_order", event]) == (
        Stage.RETENTION,
        StageSource(kind="signal", signal=event),
    )


def test_usage_months_after_the_purchase_order_still_points_to_retention():
    signals = ["purchase_order", "site_visit", "review_site_visit", "product_usage"]

    assert resolve("smb", signals) == (Stage.RETENTION, StageSource(kind="signal", signal="product_usage"))


def test_the_same_event_before_the_purchase_order_keeps_its_own_stage():
    assert resolve("smb", ["product_usage"])[0] is Stage.DECISION
    assert resolve("smb", ["product_usage", "purchase_order"]) == (
        Stage.RETENTION,
        StageSource(kind="signal", signal="purchase_order"),
    )


def test_after_purchase_turns_events_to_retention_even_when_the_purchase_itself_maps_elsewhere(tmp_path: Path):
    path = write_map(
        tmp_path / "signals.toml",
        {"signed": "decision", "login": "consideration", "visit": "awareness"},
        after='[after_purchase]\npurchase_events = ["signed"]\nbecomes_retention = ["login"]\n',
    )
    custom = StageSignalMap.from_toml(path)

    def stage_of(signals: list[str]) -> Stage:
        return resolve_stage(Segment.SMB, None, signals, custom, Stage.AWARENESS)[0]

    assert stage_of(["login", "signed"]) is Stage.DECISION
    assert stage_of(["signed", "login"]) is Stage.RETENTION
    assert stage_of(["signed", "visit"]) is Stage.DECISION  # not listed: keeps its own stage
    assert stage_of(["signed", "visit", "visit", "login"]) is Stage.RETENTION  # however long after the purchase


# -- given stage, default stage, stage source --------------------------------------------------------------


def test_a_given_stage_wins_over_signals_of_another_stage():
    assert resolve("enterprise", ["purchase_order", "renewal_due"], stage="awareness") == (
        Stage.AWARENESS,
        StageSource(kind="given"),
    )


def test_without_a_stage_or_signals_the_default_stage_is_used():
    stage, source = resolve_stage(Segment.SMB, None, [], SIGNALS, Stage.CONSIDERATION)

    assert (stage, source) == (Stage.CONSIDERATION, StageSource(kind="default"))


@pytest.mark.parametrize(
    ("signals", "stage", "expected"),
    [
        ([], "decision", "given"),
        (["demo"], "decision", "given"),
        ([], None, "default"),
        (["demo"], None, "signal:demo"),
    ],
)
def test_the_stage_source_reads_given_default_or_the_signal(signals: list[str], stage: str | None, expected: str):
    assert str(resolve("enterprise", signals, stage)[1]) == expected


def test_the_default_stage_comes_from_the_ranking_config():
    assert RankingConfig().default_stage is Stage.AWARENESS


# -- unknown events ----------------------------------------------------------------------------------------


def test_an_unknown_event_is_an_error_naming_it_and_listing_every_known_event():
    with pytest.raises(UnknownSignal) as caught:
        resolve("enterprise", ["demo", "demo_request"])

    assert str(caught.value) == f"unknown buying signal 'demo_request'; known signals are {', '.join(EVENTS)}"


def test_several_unknown_events_are_all_named_in_one_error():
    with pytest.raises(UnknownSignal, match=r"^unknown buying signals 'Demo', 'signed_contract'; known signals are "):
        check_signals(["Demo", "meeting", "signed_contract"], SIGNALS)


def test_an_unknown_event_is_an_error_even_when_a_stage_is_given():
    with pytest.raises(UnknownSignal):
        resolve("smb", ["free_trial"], stage="decision")


# -- a team's own map ----------------------------------------------------------------------------------------


CUSTOM = {
    "site_visit": "awareness",
    "analyst_call": "consideration",
    "contract_sent": "decision",
    "go_live": "retention",
}


def test_a_map_file_named_by_recommender_stage_signals_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RECOMMENDER_STAGE_SIGNALS", str(write_map(tmp_path / "signals.toml", CUSTOM)))

    signal_map = RankingConfig().stage_signals

    assert signal_map.events == tuple(CUSTOM)
    assert resolve_stage(Segment.ENTERPRISE, None, ["contract_sent"], signal_map, Stage.AWARENESS)[0] is Stage.DECISION
    with pytest.raises(UnknownSignal, match="known signals are site_visit, analyst_call, contract_sent, go_live$"):
        check_signals(["demo"], signal_map)


def test_the_recommender_infers_the_stage_with_the_map_of_recommender_stage_signals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_dir: Path, embedder
):
    monkeypatch.setenv("RECOMMENDER_STAGE_SIGNALS", str(write_map(tmp_path / "signals.toml", CUSTOM)))
    recommender = Recommender(index_dir, embedder, today=lambda: dt.date(2026, 1, 1))

    result = recommender.recommend(BuyerRequest(segment="enterprise", signals=["analyst_call", "contract_sent"], k=3))

    assert (result.stage, str(result.stage_source)) == (Stage.DECISION, "signal:contract_sent")


def test_a_signal_written_with_capitals_spaces_or_hyphens_is_the_event():
    request = BuyerRequest(segment="smb", signals=["Return Visit", "pricing-page-view"])

    assert request.signals == ("return_visit", "pricing_page_view")
    assert resolve("smb", list(request.signals)) == (
        Stage.DECISION,
        StageSource(kind="signal", signal="pricing_page_view"),
    )


def test_a_map_may_write_its_events_with_capitals_or_spaces(tmp_path: Path):
    custom = StageSignalMap.from_toml(write_map(tmp_path / "signals.toml", {'"Analyst Call"': "consideration"}))

    assert custom.events == ("analyst_call",)


def test_a_map_without_an_after_purchase_table_never_turns_events_into_retention(tmp_path: Path):
    custom = StageSignalMap.from_toml(write_map(tmp_path / "signals.toml", CUSTOM))

    assert custom.purchase_events == frozenset()
    assert resolve_stage(Segment.SMB, None, ["go_live", "site_visit"], custom, Stage.AWARENESS) == (
        Stage.RETENTION,
        StageSource(kind="signal", signal="go_live"),
    )


def test_a_map_missing_a_segment_table_is_refused(tmp_path: Path):
    path = tmp_path / "signals.toml"
    path.write_text('[enterprise]\ndemo = "decision"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        StageSignalMap.from_toml(path)

    assert str(caught.value) == f"{path}: missing table [smb]"


def test_a_map_naming_an_unknown_stage_is_refused_with_the_stages_listed(tmp_path: Path):
    path = write_map(tmp_path / "signals.toml", {"demo": "purchase"})

    with pytest.raises(ConfigError) as caught:
        StageSignalMap.from_toml(path)

    assert str(caught.value) == (
        f"{path} [enterprise]: 'purchase' is not a valid Stage; "
        "stages are awareness, consideration, decision, retention"
    )


def test_a_map_listing_an_event_for_one_segment_only_is_refused(tmp_path: Path):
    path = write_map(tmp_path / "signals.toml", {"demo": "decision", "meeting": "consideration"}, {"demo": "decision"})

    with pytest.raises(ConfigError) as caught:
        StageSignalMap.from_toml(path)

    assert str(caught.value) == f"{path}: events ['meeting'] are listed for one segment only; list each for both"


def test_a_map_whose_after_purchase_table_names_unknown_events_is_refused(tmp_path: Path):
    path = write_map(
        tmp_path / "signals.toml",
        {"demo": "decision"},
        after='[after_purchase]\npurchase_events = ["po"]\nbecomes_retention = ["demo", "login"]\n',
    )

    with pytest.raises(ConfigError) as caught:
        StageSignalMap.from_toml(path)

    assert str(caught.value) == f"{path}: [after_purchase] names unknown events ['login', 'po']"


def test_a_map_file_that_does_not_exist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("RECOMMENDER_STAGE_SIGNALS", str(missing))

    with pytest.raises(ConfigError) as caught:
        RankingConfig()

    assert str(caught.value) == f"configuration file {missing} does not exist"


def test_a_map_file_that_is_not_toml_is_refused(tmp_path: Path):
    path = tmp_path / "signals.toml"
    path.write_text("[enterprise\ndemo = decision\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"^{path} is not valid TOML: "):
        StageSignalMap.from_toml(path)


def test_a_map_whose_segment_is_not_a_table_is_refused(tmp_path: Path):
    path = tmp_path / "signals.toml"
    path.write_text('enterprise = "decision"\nsmb = "decision"\n', encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"^{path}: .*enterprise"):
        StageSignalMap.from_toml(path)


def test_after_purchase_events_given_as_one_string_instead_of_a_list_are_refused_naming_the_key(tmp_path: Path):
    path = write_map(
        tmp_path / "signals.toml",
        {"purchase_order": "retention"},
        after='[after_purchase]\npurchase_events = "purchase_order"\n',
    )

    with pytest.raises(ConfigError, match=rf"^{path}: .*purchase_events"):
        StageSignalMap.from_toml(path)
