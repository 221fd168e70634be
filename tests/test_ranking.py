"""Scoring and selection on tiny hand-made arrays, checked against values computed by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from content_library.schema import AssetType, Role, Segment, Stage
from recommender.config import RankingConfig, RankingWeights, TypePriors
from recommender.features import ASSET_TYPES, NO_DATE, FeatureTable, language_code
from recommender.ranking import (
    BuyerContext,
    Selection,
    group_lean,
    score_components,
    select,
    smoothed_relevance,
    transfer_relevance,
    translation_pairs,
)

WEIGHTS = RankingWeights(relevance=2.0, segment=1.0, role=0.5, stage=1.0, type_prior=0.2, language=0.4, freshness=0.1)


def flat_priors(**special: float) -> TypePriors:
    """Every prior 0.5, except smb/pricing (segment) and decision/pricing (stage) when given."""
    segment = {s: {t: 0.5 for t in AssetType} for s in Segment}
    stage = {s: {t: 0.5 for t in AssetType} for s in Stage}
    segment[Segment.SMB][AssetType.PRICING] = special.get("smb_pricing", 0.5)
    stage[Stage.DECISION][AssetType.PRICING] = special.get("decision_pricing", 0.5)
    return TypePriors(segment=segment, stage=stage)


CONFIG = RankingConfig(
    weights=WEIGHTS,
    diversity=1.0,
    diversity_threshold=0.75,
    stage_closeness=(1.0, 0.5, 0.25, 0.0),
    freshness_half_life_days=10.0,
    type_priors=flat_priors(smb_pricing=1.0, decision_pricing=0.8),
)
EN, DE, ID = language_code("en"), language_code("de"), language_code("id")
TODAY = 20_000  # days since 1970-01-01


def table(rows: list[dict]) -> FeatureTable:
    """A feature table from rows of segments (2), stages (4), roles (6), type, language and published day."""
    return FeatureTable(
        segments=np.array([r["segments"] for r in rows], dtype=np.float32),
        stages=np.array([r["stages"] for r in rows], dtype=np.float32),
        roles=np.array([r["roles"] for r in rows], dtype=np.float32),
        asset_type=np.array([ASSET_TYPES.index(AssetType(r["type"])) for r in rows], dtype=np.int8),
        language=np.array([r["language"] for r in rows], dtype=np.int16),
        published=np.array([r["published"] for r in rows], dtype=np.int32),
    )


#: An smb decision-stage pricing page in English from today; an enterprise awareness whitepaper in German,
#: ten days old, that also serves IT a little; an undated retention guide labelled half smb.
FEATURES = table(
    [
        {
            "segments": [0.0, 1.0],
            "stages": [0.0, 0.0, 1.0, 0.0],
            "roles": [0, 0, 0, 0, 0, 1.0],
            "type": "pricing",
            "language": EN,
            "published": TODAY,
        },
        {
            "segments": [1.0, 0.0],
            "stages": [1.0, 0.0, 0.0, 0.0],
            "roles": [0.9, 0, 0.2, 0, 0, 0],
            "type": "whitepaper",
            "language": DE,
            "published": TODAY - 10,
        },
        {
            "segments": [0.5, 0.5],
            "stages": [0.0, 0.2, 0.0, 0.6],
            "roles": [0, 0, 0, 0, 0.8, 0.4],
            "type": "guide",
            "language": EN,
            "published": NO_DATE,
        },
    ]
)
SMB_OWNER_DECISION = BuyerContext(segment=Segment.SMB, stage=Stage.DECISION, role=Role.OWNER, language=EN, today=TODAY)


# -- score_components --------------------------------------------------------------------------------------


def components(similarity=None, context: BuyerContext = SMB_OWNER_DECISION, config: RankingConfig = CONFIG):
    found = score_components(FEATURES, None if similarity is None else np.array(similarity), context, config)
    return {name: values.tolist() for name, values in found.items()}


def test_every_component_is_its_weight_times_its_value_computed_by_hand():
    found = components(similarity=[0.5, -0.2, 1.3])

    expected = {
        "relevance": [2.0 * 0.5, 0.0, 2.0 * 1.0],  # cosine clipped to [0, 1]
        "segment": [1.0, 0.0, 0.5],
        "role": [0.5 * 1.0, 0.0, 0.5 * 0.4],
        # decision buyer: the pricing page is decision (1.0); awareness is two stages away (0.25);
        # the guide is consideration 0.2 * 0.5 = 0.1 or retention 0.6 * 0.5 = 0.3: the best counts.
        "stage": [1.0, 0.25, 0.3],
        # smb and decision priors of pricing are 1.0 and 0.8: their mean; every other type 0.5.
        "type_prior": [0.2 * 0.9, 0.2 * 0.5, 0.2 * 0.5],
        "language": [0.4, 0.0, 0.4],
        # from today: 1; ten days old, half-life ten days: 0.5; undated: 0.5 (neither favoured nor buried).
        "freshness": [0.1, 0.05, 0.05],
    }
    assert list(found) == list(expected)
    for name, values in expected.items():
        assert found[name] == pytest.approx(values, abs=1e-6), name


def test_without_a_query_role_or_language_those_components_are_left_out():
    context = BuyerContext(segment=Segment.ENTERPRISE, stage=Stage.AWARENESS, today=TODAY)

    found = components(context=context)

    assert list(found) == ["segment", "stage", "type_prior", "freshness"]
    assert found["segment"] == [0.0, 1.0, 0.5]
    assert found["stage"] == pytest.approx([0.25, 1.0, 0.1])  # guide: consideration 0.2 * 0.5 beats retention 0


def test_an_asset_published_after_today_counts_as_fresh_not_fresher():
    context = dataclasses.replace(SMB_OWNER_DECISION, today=TODAY - 30)

    assert components(context=context)["freshness"][0] == pytest.approx(0.1)


def test_a_weight_of_zero_silences_its_component():
    config = dataclasses.replace(CONFIG, weights=dataclasses.replace(WEIGHTS, segment=0.0, language=0.0))

    found = components(config=config)

    assert found["segment"] == [0.0, 0.0, 0.0]
    assert found["language"] == [0.0, 0.0, 0.0]


def test_components_are_float32_arrays_of_one_value_per_candidate():
    found = score_components(FEATURES, np.array([0.1, 0.2, 0.3], dtype=np.float32), SMB_OWNER_DECISION, CONFIG)

    assert {name: (v.shape, v.dtype) for name, v in found.items()} == {
        name: ((3,), np.dtype(np.float32)) for name in found
    }


# -- smoothed_relevance ------------------------------------------------------------------------------------


SIMILARITY = np.array([0.3, 0.9, 0.6], dtype=np.float32)
#: Each candidate's neighbours' mean cosine to the query (the second has no neighbours).
NEIGHBOUR_SIMILARITY = np.array([0.6, 0.0, 0.2], dtype=np.float32)
HAS_NEIGHBOURS = np.array([True, False, True])


def test_relevance_blends_own_similarity_with_the_mean_of_the_neighbours():
    smoothed = smoothed_relevance(SIMILARITY, NEIGHBOUR_SIMILARITY, HAS_NEIGHBOURS, weight=0.5)

    assert smoothed.tolist() == pytest.approx(
        [
            (0.3 + 0.5 * 0.6) / 1.5,  # 0.4
            0.9,  # no neighbours: its own similarity
            (0.6 + 0.5 * 0.2) / 1.5,
        ],
        abs=1e-6,
    )
    assert smoothed.dtype == np.float32


def test_a_neighbour_weight_of_zero_keeps_each_own_similarity():
    assert smoothed_relevance(SIMILARITY, NEIGHBOUR_SIMILARITY, HAS_NEIGHBOURS, weight=0.0).tolist() == pytest.approx(
        SIMILARITY.tolist()
    )


def test_candidates_without_any_neighbours_keep_their_similarity():
    none = np.zeros(3, dtype=bool)

    assert smoothed_relevance(SIMILARITY, NEIGHBOUR_SIMILARITY, none, weight=2.0).tolist() == pytest.approx(
        SIMILARITY.tolist()
    )


# -- group_lean --------------------------------------------------------------------------------------------


def test_a_groups_lean_is_its_assets_mean_lead_over_the_library_shrunk_by_their_number():
    query = np.array([1.0, 0.0], dtype=np.float32)
    means = np.zeros((5, 2), dtype=np.float32)
    means[1] = [0.6, 0.8]  # 10 assets at mean cosine 0.6
    means[3] = [0.2, 0.9]  # 30 assets at mean cosine 0.2
    counts = np.array([0, 10, 0, 30, 0])

    bias = group_lean(means, counts, query)

    library = (10 * 0.6 + 30 * 0.2) / 40  # 0.3
    assert bias.tolist() == pytest.approx(
        [0.0, 10 / (10 + 10) * (0.6 - library), 0.0, 30 / (30 + 10) * (0.2 - library), 0.0], abs=1e-6
    )
    assert bias.dtype == np.float32


def test_a_library_in_one_language_or_of_one_type_has_no_lean():
    means = np.array([[0.0, 0.0], [0.6, 0.8]], dtype=np.float32)

    assert group_lean(means, np.array([0, 500]), np.array([0.8, 0.6], dtype=np.float32)).tolist() == [0.0, 0.0]


def test_an_empty_library_has_no_lean():
    assert group_lean(np.zeros((3, 2), np.float32), np.zeros(3, int), np.ones(2, np.float32)).tolist() == [0.0] * 3


# -- select ------------------------------------------------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


PLAIN = dataclasses.replace(CONFIG, diversity=0.0, max_per_type=0)
BASE = np.array([0.2, 0.9, 0.5, 0.7, 0.1, 0.8], dtype=np.float32)
ORTHOGONAL = np.eye(6, dtype=np.float32)
ALL_GUIDES = np.full(6, ASSET_TYPES.index(AssetType.GUIDE))


def test_without_diversity_or_caps_select_takes_the_k_best_in_score_order():
    chosen = select({"segment": BASE}, ORTHOGONAL, ALL_GUIDES, 4, PLAIN)

    assert chosen.positions.tolist() == [1, 5, 3, 2]
    assert chosen.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.5])


@pytest.mark.parametrize("k", [1, 5, 6, 50])
def test_select_returns_k_items_or_every_candidate_when_there_are_fewer(k: int):
    chosen = select({"segment": BASE}, ORTHOGONAL, ALL_GUIDES, k, PLAIN)

    assert len(chosen.positions) == len(chosen.scores) == len(chosen.reasons) == min(k, 6)
    assert len(set(chosen.positions.tolist())) == min(k, 6)


def test_select_over_no_candidates_chooses_nothing():
    chosen = select({"segment": np.zeros(0, dtype=np.float32)}, np.zeros((0, 6)), np.zeros(0, np.int8), 5, CONFIG)

    assert (chosen.positions.tolist(), chosen.scores.tolist(), chosen.reasons) == ([], [], [])


def test_reasons_name_every_component_and_the_diversity_penalty_and_add_up_to_the_score():
    found = {"relevance": np.array([0.5, 1.0]), "segment": np.array([1.0, 0.25])}

    chosen = select(found, np.stack([unit(1, 0), unit(1, 0)]), np.zeros(2, np.int8), 2, CONFIG)

    assert chosen.reasons == [
        {"relevance": 0.5, "segment": 1.0, "diversity": -0.0},
        {"relevance": 1.0, "segment": 0.25, "diversity": -1.0},
    ]
    assert [sum(r.values()) for r in chosen.reasons] == pytest.approx(chosen.scores.tolist())


def test_a_near_duplicate_of_a_chosen_item_is_pushed_below_a_different_one():
    # b is a's translation (identical vector), c is another topic: a plain sort would give a, b, c.
    vectors = np.stack([unit(1, 0, 0), unit(1, 0, 0), unit(0, 1, 0)])
    base = np.array([1.0, 0.99, 0.8])

    chosen = select({"segment": base}, vectors, np.zeros(3, np.int8), 3, dataclasses.replace(CONFIG, max_per_type=0))

    assert chosen.positions.tolist() == [0, 2, 1]
    assert chosen.scores.tolist() == pytest.approx([1.0, 0.8, 0.99 - 1.0])


def test_the_penalty_grows_linearly_from_the_threshold_to_the_full_diversity_weight():
    # cosine 0.875 is halfway from the threshold 0.75 to 1: half of diversity 0.6.
    config = dataclasses.replace(CONFIG, diversity=0.6, diversity_threshold=0.75, max_per_type=0)
    # The third is 0.7 from the first and 0.61 from the second: below the threshold for both.
    vectors = np.stack([unit(1, 0, 0), unit(0.875, np.sqrt(1 - 0.875**2), 0), unit(0.7, 0, np.sqrt(1 - 0.7**2))])

    chosen = select({"segment": np.array([1.0, 0.9, 0.1])}, vectors, np.zeros(3, np.int8), 3, config)

    assert [r["diversity"] for r in chosen.reasons] == pytest.approx([0.0, -0.3, 0.0], abs=1e-6)


def test_at_most_max_per_type_items_of_one_type_while_other_types_are_left():
    pricing, review = ASSET_TYPES.index(AssetType.PRICING), ASSET_TYPES.index(AssetType.REVIEW)
    types = np.array([pricing, pricing, pricing, review, review, pricing])
    config = dataclasses.replace(PLAIN, max_per_type=2)

    chosen = select({"segment": np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.6])}, ORTHOGONAL, types, 4, config)

    assert chosen.positions.tolist() == [0, 1, 3, 4]


def test_when_the_cap_leaves_too_few_candidates_the_list_is_filled_up_and_still_sorted():
    pricing, review = ASSET_TYPES.index(AssetType.PRICING), ASSET_TYPES.index(AssetType.REVIEW)
    types = np.array([pricing, pricing, pricing, review, pricing, pricing])
    config = dataclasses.replace(PLAIN, max_per_type=2)

    chosen = select({"segment": np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.5])}, ORTHOGONAL, types, 5, config)

    # Picked 0, 1 (cap reached), 3 (the only review), then filled up with 2 and 4: sorted by score.
    assert chosen.positions.tolist() == [0, 1, 2, 4, 3]
    assert chosen.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.2])


def test_a_cap_of_zero_means_no_cap():
    chosen = select({"segment": BASE}, ORTHOGONAL, ALL_GUIDES, 6, PLAIN)

    assert chosen.positions.tolist() == [1, 5, 3, 2, 0, 4]


def test_seen_vectors_count_as_already_chosen():
    vectors = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)])
    config = dataclasses.replace(CONFIG, max_per_type=0)

    chosen = select({"segment": np.array([1.0, 0.5, 0.4])}, vectors, np.zeros(3, np.int8), 3, config, seen=vectors[:1])

    assert chosen.positions.tolist() == [1, 2, 0]
    assert chosen.reasons[2] == {"segment": 1.0, "diversity": -1.0}


def test_seen_vectors_are_ignored_when_diversity_is_off():
    vectors = np.stack([unit(1, 0), unit(0, 1)])

    chosen = select({"segment": np.array([1.0, 0.5])}, vectors, np.zeros(2, np.int8), 2, PLAIN, seen=vectors[:1])

    assert chosen.positions.tolist() == [0, 1]


# -- translations ------------------------------------------------------------------------------------------

#: a (English) and b (German) are translations at cosine 0.6; c (German) is another topic.
TRANSLATED = np.stack([unit(1, 0, 0), unit(0.6, 0.8, 0), unit(0, 0, 1)])
TRANSLATED_LANGUAGES = np.array([EN, DE, DE])
TRANSLATING = dataclasses.replace(CONFIG, translation_threshold=0.55, max_per_type=0)


def choose_translated(
    fit: list[float], config: RankingConfig = TRANSLATING, languages: np.ndarray = TRANSLATED_LANGUAGES, **options
) -> Selection:
    """`select` over the three TRANSLATED candidates, ranked by `fit` alone."""
    return select(
        {"segment": np.array(fit)}, TRANSLATED, np.zeros(3, np.int8), 3, config, languages=languages, **options
    )


def test_a_candidate_in_the_visitors_language_inherits_the_relevance_of_the_one_it_translates():
    similarity = np.array([0.8, 0.5, 0.3])

    pairs = translation_pairs(similarity, TRANSLATED, TRANSLATED_LANGUAGES, DE, 0.55, floor=1.0)
    raised = transfer_relevance(similarity, pairs)

    assert pairs.tolist() == [[1, 0]]
    assert raised.tolist() == pytest.approx([0.8, 0.8, 0.3])
    assert similarity.tolist() == pytest.approx([0.8, 0.5, 0.3])


def test_candidates_less_similar_than_the_translation_threshold_are_no_pair():
    similarity = np.array([0.8, 0.5, 0.3])

    assert translation_pairs(similarity, TRANSLATED, TRANSLATED_LANGUAGES, DE, 0.65, floor=1.0).tolist() == []


def test_a_mutual_best_match_above_the_floor_is_taken_for_a_translation_below_the_threshold():
    # b (0.6 to a) is a's most similar German candidate and a is b's most similar English one.
    similarity = np.array([0.8, 0.5, 0.3])

    pairs = translation_pairs(similarity, TRANSLATED, TRANSLATED_LANGUAGES, DE, 0.65, floor=0.55)

    assert pairs.tolist() == [[1, 0]]


def test_a_pair_above_the_floor_that_is_not_a_mutual_best_match_is_not_taken_for_a_translation():
    # d is 0.58 similar to a, but a's most similar German candidate is b (0.6).
    vectors = np.vstack([TRANSLATED, unit(0.58, 0, math.sqrt(1 - 0.58**2))])
    similarity = np.array([0.8, 0.5, 0.3, 0.2])

    pairs = translation_pairs(similarity, vectors, np.array([EN, DE, DE, DE]), DE, 0.65, floor=0.55)

    assert pairs.tolist() == [[1, 0]]


def test_without_the_visitors_language_a_pair_is_listed_both_ways_round():
    similarity = np.array([0.8, 0.5, 0.3])

    pairs = translation_pairs(similarity, TRANSLATED, TRANSLATED_LANGUAGES, None, 0.65, floor=0.55)

    assert sorted(pairs.tolist()) == [[0, 1], [1, 0]]


def test_with_the_visitors_language_known_versions_in_two_other_languages_are_paired_both_ways_round():
    # An English original and its Indonesian translation (0.6) for a German visitor; c is German.
    languages = np.array([EN, ID, DE])
    similarity = np.array([0.8, 0.5, 0.3])

    pairs = translation_pairs(similarity, TRANSLATED, languages, DE, 0.65, floor=0.55)

    assert sorted(pairs.tolist()) == [[0, 1], [1, 0]]


def test_two_similar_assets_in_one_language_are_no_translation_pair():
    # d is a's near-duplicate (0.9) in English: plain diversity's business, not a translation.
    vectors = np.vstack([TRANSLATED, unit(0.9, 0, math.sqrt(1 - 0.9**2))])
    similarity = np.array([0.8, 0.5, 0.3, 0.7])

    pairs = translation_pairs(similarity, vectors, np.array([EN, DE, DE, EN]), None, 0.65, floor=0.55)

    assert sorted(pairs.tolist()) == [[0, 1], [1, 0]]


def test_a_translation_threshold_of_one_takes_no_pairs():
    similarity = np.array([0.8, 0.5, 0.3])

    assert translation_pairs(similarity, TRANSLATED, TRANSLATED_LANGUAGES, DE, 1.0, floor=0.0).tolist() == []


def test_the_other_version_of_a_pair_taken_for_translations_pays_once_the_visitors_version_is_chosen():
    below = dataclasses.replace(TRANSLATING, translation_threshold=0.65)  # a and b (0.6) pass on the pair alone

    paired = choose_translated([0.9, 1.0, 0.2], below, preferred=DE, translations=np.array([[1, 0]]))
    unpaired = choose_translated([0.9, 1.0, 0.2], below, preferred=DE)

    assert paired.positions.tolist() == [1, 2, 0]
    assert paired.reasons[2]["diversity"] == -below.diversity
    assert unpaired.positions.tolist() == [1, 0, 2]


def test_a_translation_of_a_chosen_item_pays_the_full_penalty_though_below_the_diversity_threshold():
    chosen = choose_translated([1.0, 0.9, 0.2])

    assert chosen.positions.tolist() == [0, 2, 1]
    assert chosen.reasons[2]["diversity"] == -TRANSLATING.diversity


def test_with_the_visitors_language_known_only_the_other_language_version_pays_for_a_translation():
    # The German visitor's German version was chosen first: the English original pays; had the
    # English one come first (it cannot here), the German one would not.
    chosen = choose_translated([0.9, 1.0, 0.2], preferred=DE)
    english_first = choose_translated([1.0, 0.9, 0.2], preferred=DE)

    assert chosen.positions.tolist() == [1, 2, 0]
    assert english_first.positions.tolist() == [0, 1, 2]
    assert english_first.reasons[1]["diversity"] == 0.0


def test_a_chosen_item_outside_the_visitors_language_makes_its_translation_in_a_third_language_pay():
    # A German visitor: the English original is chosen; its Indonesian translation (0.6) pays.
    chosen = choose_translated([1.0, 0.9, 0.2], languages=np.array([EN, ID, DE]), preferred=DE)

    assert chosen.positions.tolist() == [0, 2, 1]
    assert chosen.reasons[2]["diversity"] == -TRANSLATING.diversity


def test_the_translation_of_an_item_shown_before_pays_when_they_are_a_mutual_best_match():
    # The English a was shown in an earlier step; its German translation b (0.6) is below the
    # threshold (0.65) but each is the other's best match above the floor (0.55).
    config = dataclasses.replace(TRANSLATING, translation_threshold=0.65, translation_floor=0.55)

    def penalties(config: RankingConfig) -> list[float]:
        chosen = select(
            {"segment": np.array([1.0, 0.2])},
            TRANSLATED[1:],
            np.zeros(2, np.int8),
            2,
            config,
            seen=TRANSLATED[:1],
            languages=TRANSLATED_LANGUAGES[1:],
            seen_languages=TRANSLATED_LANGUAGES[:1],
        )
        return [reason["diversity"] for reason in chosen.reasons]

    assert penalties(config) == [0.0, -config.diversity]
    assert penalties(dataclasses.replace(config, translation_floor=1.0)) == [0.0, 0.0]


def test_a_translation_threshold_of_one_turns_translation_handling_off():
    chosen = choose_translated([1.0, 0.9, 0.2], dataclasses.replace(TRANSLATING, translation_threshold=1.0))

    assert chosen.positions.tolist() == [0, 1, 2]
