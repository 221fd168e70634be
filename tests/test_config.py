"""The ranking configuration: defaults, the shipped data files, TOML overrides and the errors they raise."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from content_library.schema import AssetType, Segment, Stage
from recommender.config import DATA_DIR, RankingConfig, RankingWeights, TypePriors
from recommender.errors import ConfigError

WEIGHT_NAMES = ["freshness", "language", "relevance", "role", "segment", "stage", "type_prior"]
SETTING_NAMES = sorted(
    f.name for f in dataclasses.fields(RankingConfig) if f.name not in {"weights", "stage_signals", "type_priors"}
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ----------------------------------------------------------------------------------------------


def test_every_weight_is_positive_by_default():
    weights = RankingWeights()

    assert sorted(f.name for f in dataclasses.fields(weights)) == WEIGHT_NAMES
    assert all(getattr(weights, name) > 0 for name in WEIGHT_NAMES)


def test_stage_closeness_falls_with_distance_from_one_for_the_same_stage():
    closeness = RankingConfig().stage_closeness

    assert len(closeness) == len(Stage)
    assert closeness[0] == 1.0
    assert list(closeness) == sorted(closeness, reverse=True)


def test_the_default_config_reads_the_shipped_type_priors_and_stage_signals():
    config = RankingConfig()

    assert config.type_priors == TypePriors.from_toml(DATA_DIR / "type_priors.toml")
    assert set(config.stage_signals.stages) == set(Segment)


def test_the_type_prior_is_the_mean_of_the_segment_and_the_stage_affinity():
    priors = TypePriors.from_toml(DATA_DIR / "type_priors.toml")
    segment_value = priors.segment[Segment.SMB][AssetType.PRICING]
    stage_value = priors.stage[Stage.DECISION][AssetType.PRICING]

    assert priors.prior(Segment.SMB, Stage.DECISION, AssetType.PRICING) == pytest.approx(
        (segment_value + stage_value) / 2
    )


@pytest.mark.parametrize("preferred", ["whitepaper", "report", "case_study", "webinar"])
def test_enterprise_priors_favour_long_form_research_over_pricing_pages(preferred: str):
    # domain.md: committees consult whitepapers, analyst reports, case studies and webinars; prices are negotiated.
    segment = TypePriors.from_toml(DATA_DIR / "type_priors.toml").segment[Segment.ENTERPRISE]

    assert segment[AssetType(preferred)] > segment[AssetType.PRICING]


@pytest.mark.parametrize("preferred", ["review", "pricing", "guide", "demo"])
def test_smb_priors_favour_reviews_pricing_short_guides_and_trials_over_whitepapers(preferred: str):
    segment = TypePriors.from_toml(DATA_DIR / "type_priors.toml").segment[Segment.SMB]

    assert segment[AssetType(preferred)] > segment[AssetType.WHITEPAPER]
    assert segment[AssetType(preferred)] > segment[AssetType.REPORT]


# -- RankingConfig.from_toml -------------------------------------------------------------------------------


def test_a_toml_file_overrides_the_weights_and_settings_it_names_and_keeps_the_other_defaults(tmp_path: Path):
    path = write(
        tmp_path / "ranking.toml",
        'max_per_type = 2\ndefault_stage = "decision"\nstage_closeness = [1.0, 0.5, 0.2, 0.0]\n'
        "stage_from_reading = false\n[weights]\nrelevance = 3.5\nlanguage = 0.0\n",
    )

    config = RankingConfig.from_toml(path)

    defaults = RankingConfig()
    assert config.weights == dataclasses.replace(defaults.weights, relevance=3.5, language=0.0)
    assert (config.max_per_type, config.default_stage, config.stage_closeness, config.stage_from_reading) == (
        2,
        Stage.DECISION,
        (1.0, 0.5, 0.2, 0.0),
        False,
    )
    assert config.diversity == defaults.diversity
    assert config.type_priors == defaults.type_priors


def test_an_empty_toml_file_gives_the_defaults(tmp_path: Path):
    assert RankingConfig.from_toml(write(tmp_path / "ranking.toml", "")) == RankingConfig()


def test_an_unknown_weight_is_refused_with_the_known_weights_listed(tmp_path: Path):
    path = write(tmp_path / "ranking.toml", "[weights]\nrelevence = 1.0\n")

    with pytest.raises(ConfigError) as caught:
        RankingConfig.from_toml(path)

    assert str(caught.value) == f"{path} [weights]: unknown ['relevence']; known are {WEIGHT_NAMES}"


def test_an_unknown_setting_is_refused_with_the_known_settings_listed(tmp_path: Path):
    path = write(tmp_path / "ranking.toml", "max_per_typ = 3\n")

    with pytest.raises(ConfigError) as caught:
        RankingConfig.from_toml(path)

    assert str(caught.value) == f"{path}: unknown settings ['max_per_typ']; known are {SETTING_NAMES}"


def test_the_data_files_cannot_be_replaced_through_the_ranking_toml(tmp_path: Path):
    path = write(tmp_path / "ranking.toml", 'stage_signals = "mine.toml"\n')

    with pytest.raises(ConfigError, match=re.escape("unknown settings ['stage_signals']")):
        RankingConfig.from_toml(path)


def test_a_ranking_file_that_does_not_exist_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        RankingConfig.from_toml(tmp_path / "missing.toml")

    assert str(caught.value) == f"configuration file {tmp_path / 'missing.toml'} does not exist"


def test_a_ranking_file_that_is_not_toml_is_refused(tmp_path: Path):
    path = write(tmp_path / "ranking.toml", "max_per_type = \n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))} is not valid TOML: "):
        RankingConfig.from_toml(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'default_stage = "purchase"\n',
            "default_stage must be one of awareness, consideration, decision, retention, not 'purchase'",
        ),
        ("weights = 3\n", "weights must be a table, e.g. [weights] relevance = 10.0"),
        (
            "stage_closeness = [1.0, 0.5]\n",
            "stage_closeness must list 4 numbers (same stage, adjacent, two, three apart), not [1.0, 0.5]",
        ),
        ('[weights]\nrelevance = "high"\n', "relevance must be a number of 0 or more, not 'high'"),
        ("[weights]\nsegment = -2\n", "segment must be a number of 0 or more, not -2"),
        ("[weights]\nlanguage = true\n", "language must be a number of 0 or more, not True"),
        ('max_per_type = "two"\n', "max_per_type must be a whole number of 0 or more, not 'two'"),
        ("max_per_type = 2.5\n", "max_per_type must be a whole number of 0 or more, not 2.5"),
        ("freshness_half_life_days = 0\n", "freshness_half_life_days must be more than 0"),
        ('stage_from_reading = "no"\n', "stage_from_reading must be true or false, not 'no'"),
    ],
    ids=[
        "unknown default_stage",
        "weights not a table",
        "stage_closeness too short",
        "weight not a number",
        "negative weight",
        "boolean weight",
        "max_per_type not a number",
        "max_per_type fractional",
        "zero half-life",
        "stage_from_reading not a boolean",
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_with_one_message_naming_it(tmp_path: Path, text: str, problem: str):
    path = write(tmp_path / "ranking.toml", text)

    with pytest.raises(ConfigError) as caught:
        RankingConfig.from_toml(path)

    assert str(caught.value) == f"{path}: {problem}"


# -- TypePriors.from_toml ----------------------------------------------------------------------------------


def priors_toml(override: dict[str, str] | None = None, drop: str | None = None) -> str:
    """A complete priors file (every type 0.5); `override` replaces a table's body, `drop` removes a table."""
    body = "".join(f"{t.value} = 0.5\n" for t in AssetType)
    tables = [f"segment.{s.value}" for s in Segment] + [f"stage.{s.value}" for s in Stage]
    override = override or {}
    return "".join(f"[{name}]\n{override.get(name, body)}" for name in tables if name != drop)


def test_a_complete_priors_file_loads(tmp_path: Path):
    priors = TypePriors.from_toml(write(tmp_path / "priors.toml", priors_toml()))

    assert priors.prior(Segment.ENTERPRISE, Stage.RETENTION, AssetType.VIDEO) == 0.5


def test_a_priors_file_missing_a_table_is_refused(tmp_path: Path):
    path = write(tmp_path / "priors.toml", priors_toml(drop="stage.retention"))

    with pytest.raises(ConfigError) as caught:
        TypePriors.from_toml(path)

    assert str(caught.value) == f"{path}: missing table [stage.retention]"


def test_a_priors_file_naming_an_unknown_asset_type_is_refused_with_the_types_listed(tmp_path: Path):
    body = "".join(f"{t.value} = 0.5\n" for t in AssetType) + "brochure = 0.5\n"
    path = write(tmp_path / "priors.toml", priors_toml({"segment.smb": body}))

    with pytest.raises(ConfigError) as caught:
        TypePriors.from_toml(path)

    assert str(caught.value) == (
        f"{path} [segment.smb]: unknown types ['brochure']; types are " + ", ".join(t.value for t in AssetType)
    )


def test_a_priors_table_without_a_value_for_every_type_is_refused_naming_the_missing_ones(tmp_path: Path):
    body = "".join(f"{t.value} = 0.5\n" for t in AssetType if t not in (AssetType.DEMO, AssetType.VIDEO))
    path = write(tmp_path / "priors.toml", priors_toml({"stage.decision": body}))

    with pytest.raises(ConfigError) as caught:
        TypePriors.from_toml(path)

    assert str(caught.value) == f"{path} [stage.decision]: no prior for demo, video"


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_a_prior_outside_zero_to_one_is_refused(tmp_path: Path, value: str):
    body = "".join(f"{t.value} = {value if t is AssetType.GUIDE else '0.5'}\n" for t in AssetType)
    path = write(tmp_path / "priors.toml", priors_toml({"segment.enterprise": body}))

    with pytest.raises(ConfigError) as caught:
        TypePriors.from_toml(path)

    assert str(caught.value) == f"{path} [segment.enterprise]: priors must lie between 0 and 1"


def test_a_priors_file_named_by_recommender_type_priors_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RECOMMENDER_TYPE_PRIORS", str(write(tmp_path / "priors.toml", priors_toml())))

    priors = RankingConfig().type_priors

    assert {priors.prior(s, t, a) for s in Segment for t in Stage for a in AssetType} == {0.5}


def test_a_priors_section_that_is_not_a_table_is_refused(tmp_path: Path):
    path = write(tmp_path / "priors.toml", "segment = 3\n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}"):
        TypePriors.from_toml(path)


def test_a_prior_that_is_not_a_number_is_refused(tmp_path: Path):
    body = "".join(f"{t.value} = {'true' if t is AssetType.GUIDE else '0.5'}\n" for t in AssetType)
    path = write(tmp_path / "priors.toml", priors_toml({"segment.smb": body}))

    with pytest.raises(ConfigError, match="guide"):
        TypePriors.from_toml(path)
