"""The tagger: training, saving, loading and predicting segments, stages and roles; its model card and CV.

The synthetic library below has a known right answer: each label has words of its own ("committee" for
enterprise, "pricing" for decision, "security" for IT), mixed with filler words that differ per vendor,
so a tagger that learned the labels (not the filler) gets every asset of an unseen vendor right.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import HashEmbedder, make_asset, write_jsonl

from content_library import Asset
from content_library.schema import LABEL_FIELDS, Role, Segment, Stage
from models import TAGGER_DIR
from recommender.build import library_checksum
from recommender.cli import main
from recommender.config import DEFAULT_MODEL
from recommender.errors import ModelError, RecommenderError
from recommender.tagging import Tagger, TaggerInput, label_assets, merge_labels
from recommender.training import cross_validate, curated_labels, model_card, render_model_card, vendor_of
from recommender.types import LabelSource

SEGMENT_WORDS = {"enterprise": "committee board governance multinational", "smb": "owner shop bakery salon"}
STAGE_WORDS = {
    "awareness": "trends why problem",
    "consideration": "compare options approaches",
    "decision": "pricing contract quote",
    "retention": "onboarding renewal adoption",
}
ROLE_WORDS = {
    "enterprise": {"finance": "cost budget roi", "it": "security sso integration"},
    "smb": {"owner": "myself"},
}
STAGE_TYPES = {"awareness": "blog_post", "consideration": "guide", "decision": "pricing", "retention": "video"}
FILLERS = ["apples rivers", "mountains clouds", "lanterns violins", "harbour tides", "meadow stones", "copper kites"]
EMBEDDER = HashEmbedder()
SMALL = {"text_features": 2**12}  # enough buckets for the synthetic words; keeps fitting in milliseconds


def vendor_library(vendor: str, fillers: list[str]) -> list[Asset]:
    """One asset per (segment, stage, role, filler) of a vendor's site, with curated labels."""
    assets = []
    for segment, segment_words in SEGMENT_WORDS.items():
        for stage, stage_words in STAGE_WORDS.items():
            for role, role_words in ROLE_WORDS[segment].items():
                for j, filler in enumerate(fillers):
                    key = f"{segment}-{stage}-{role}-{j}"
                    assets.append(
                        make_asset(
                            f"{vendor}-{key}",
                            title=f"{segment_words.split()[0]} {stage_words.split()[0]}",
                            body=f"{segment_words} {stage_words} {role_words} {filler}",
                            asset_type=STAGE_TYPES[stage],
                            url=f"https://{vendor}.example.com/{key}",
                            segments=[segment],
                            stages=[stage],
                            roles=[role],
                        )
                    )
    return assets


def inputs(assets: list[Asset]) -> TaggerInput:
    return TaggerInput.of(assets, EMBEDDER.encode([a.text for a in assets]))


def truth(asset: Asset) -> dict[str, set[str]]:
    return {field: {label.value for label in getattr(asset, field)} for field in LABEL_FIELDS}


def fit(assets: list[Asset], **params) -> Tagger:
    return Tagger(**(SMALL | params)).fit(inputs(assets), curated_labels(assets), model=EMBEDDER.name)


def untagged(asset: Asset) -> Asset:
    return asset.model_copy(update={"segments": (), "stages": (), "roles": ()})


@pytest.fixture(scope="module")
def training_set() -> list[Asset]:
    return vendor_library("alpha", FILLERS[:3])


@pytest.fixture(scope="module")
def unseen_vendor() -> list[Asset]:
    return vendor_library("beta", FILLERS[3:5])


@pytest.fixture(scope="module")
def tagger(training_set: list[Asset]) -> Tagger:
    return fit(training_set)


@pytest.fixture
def saved(tagger: Tagger, tmp_path: Path) -> Path:
    return tagger.save(tmp_path / "tagger")


# -- fit and predict ---------------------------------------------------------------------------------------


def test_fit_returns_the_tagger_with_learned_attributes_and_keeps_its_parameters(training_set: list[Asset]):
    tagger = Tagger(C=0.5, threshold=0.4, **SMALL)

    assert tagger.fit(inputs(training_set), curated_labels(training_set), model=EMBEDDER.name) is tagger
    assert tagger.get_params() == {
        "C": 0.5,
        "text_weight": 1.0,
        "type_weight": 0.25,
        "text_features": 4096,
        "threshold": 0.4,
    }
    assert tagger.model_ == EMBEDDER.name
    assert tagger.labels_ == {field: tuple(m.value for m in vocabulary) for field, vocabulary in LABEL_FIELDS.items()}


def test_a_tagger_predicts_every_label_of_a_vendor_it_never_saw(tagger: Tagger, unseen_vendor: list[Asset]):
    predicted = tagger.predict(inputs(unseen_vendor))

    wrong = [
        (asset.id, field, labels.field(field).labels)
        for asset, labels in zip(unseen_vendor, predicted, strict=True)
        for field in LABEL_FIELDS
        if set(labels.field(field).labels) != truth(asset)[field]
    ]
    assert wrong == []


def test_predictions_are_marked_predicted_with_the_taggers_version(tagger: Tagger, unseen_vendor: list[Asset]):
    labels = tagger.predict(inputs(unseen_vendor[:1]))[0]

    assert labels.model_version == tagger.version
    assert {labels.field(field).source for field in LABEL_FIELDS} == {LabelSource.PREDICTED}


def test_every_label_of_every_field_gets_a_probability_between_zero_and_one(tagger: Tagger, unseen_vendor: list[Asset]):
    for labels in tagger.predict(inputs(unseen_vendor)):
        for field, vocabulary in LABEL_FIELDS.items():
            scores = labels.field(field).scores
            assert list(scores) == [member.value for member in vocabulary]
            assert all(0.0 <= p <= 1.0 for p in scores.values()), scores


def test_predict_proba_gives_one_float32_column_per_label_in_vocabulary_order(
    tagger: Tagger, unseen_vendor: list[Asset]
):
    proba = tagger.predict_proba(inputs(unseen_vendor))

    assert {field: (p.shape, p.dtype) for field, p in proba.items()} == {
        field: ((len(unseen_vendor), len(vocabulary)), np.float32) for field, vocabulary in LABEL_FIELDS.items()
    }


def test_a_label_never_seen_in_training_is_improbable(tagger: Tagger, unseen_vendor: list[Asset]):
    proba = tagger.predict_proba(inputs(unseen_vendor))
    executive = list(tagger.labels_["roles"]).index("executive")

    assert proba["roles"][:, executive].max() < 0.05


def test_every_field_gets_at_least_its_most_likely_label_when_none_passes_the_threshold(
    training_set: list[Asset], unseen_vendor: list[Asset]
):
    strict = fit(training_set, threshold=1.0)

    for labels in strict.predict(inputs(unseen_vendor)):
        for field in LABEL_FIELDS:
            field_labels = labels.field(field)
            assert field_labels.labels == (max(field_labels.scores, key=field_labels.scores.get),)


def test_predicting_with_an_untrained_tagger_says_to_train_or_load_one(unseen_vendor: list[Asset]):
    with pytest.raises(ModelError, match=re.escape("the tagger is not trained: call fit() or Tagger.load()")):
        Tagger().predict(inputs(unseen_vendor))


def test_inputs_of_different_lengths_are_refused(tagger: Tagger, unseen_vendor: list[Asset]):
    data = inputs(unseen_vendor)
    short = TaggerInput(data.embeddings[:-1], data.asset_types, data.texts)

    with pytest.raises(ValueError, match="one row per asset"):
        tagger.predict(short)


# -- calibration -------------------------------------------------------------------------------------------


def calibrated(assets: list[Asset], **params) -> Tagger:
    return Tagger(**(SMALL | params)).fit(
        inputs(assets), curated_labels(assets), model=EMBEDDER.name, groups=[vendor_of(a) for a in assets]
    )


def log_loss(tagger: Tagger, assets: list[Asset]) -> float:
    proba = tagger.predict_proba(inputs(assets))
    truth = curated_labels(assets)
    losses = []
    for field, names in tagger.labels_.items():
        y = np.array([[name in row for name in names] for row in truth[field]], dtype=float)
        p = np.clip(proba[field].astype(float), 1e-7, 1 - 1e-7)
        losses.append(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.mean(losses))


def test_calibration_across_sites_makes_the_probabilities_fit_a_site_never_seen_better(
    three_vendors: list[Asset], unseen_vendor: list[Asset]
):
    # Strong regularisation makes the regressions under-confident: what calibration is there to mend.
    plain, sharp = fit(three_vendors, C=0.05), calibrated(three_vendors, C=0.05)

    assert all(t < 1.0 for t in sharp.temperatures_.values())
    assert log_loss(sharp, unseen_vendor) < log_loss(plain, unseen_vendor)


def test_calibration_divides_each_fields_logits_by_its_temperature_and_keeps_the_labels(
    three_vendors: list[Asset], unseen_vendor: list[Asset]
):
    plain, sharp = fit(three_vendors, C=0.05), calibrated(three_vendors, C=0.05)
    data = inputs(unseen_vendor)

    for field, temperature in sharp.temperatures_.items():
        np.testing.assert_allclose(sharp.coef_[field] * temperature, plain.coef_[field], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(sharp.intercept_[field] * temperature, plain.intercept_[field], rtol=1e-4, atol=1e-7)
    labels = lambda tagger: [[a.field(f).labels for f in LABEL_FIELDS] for a in tagger.predict(data)]  # noqa: E731
    assert labels(sharp) == labels(plain)


def test_a_tagger_trained_on_one_site_is_not_calibrated(training_set: list[Asset]):
    tagger = calibrated(training_set)

    assert tagger.temperatures_ == {field: 1.0 for field in LABEL_FIELDS}
    for field in LABEL_FIELDS:
        np.testing.assert_array_equal(tagger.coef_[field], fit(training_set).coef_[field])


# -- save and load -----------------------------------------------------------------------------------------


def test_a_saved_and_loaded_tagger_predicts_exactly_what_the_trained_one_did(
    tagger: Tagger, saved: Path, unseen_vendor: list[Asset]
):
    loaded = Tagger.load(saved)

    data = inputs(unseen_vendor)
    assert loaded.predict(data) == tagger.predict(data)
    assert (loaded.version, loaded.model_, loaded.get_params()) == (tagger.version, tagger.model_, tagger.get_params())


def test_save_writes_plain_arrays_and_metadata_with_the_checksum_and_the_card(tagger: Tagger, tmp_path: Path):
    folder = tagger.save(tmp_path / "tagger", card={"note": "for the test"})

    metadata = json.loads((folder / "tagger.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in folder.iterdir()) == ["tagger.json", "tagger.npz"]
    assert metadata["version"] == tagger.version
    assert metadata["model"] == EMBEDDER.name
    assert metadata["card"] == {"note": "for the test"}
    assert re.fullmatch(r"[0-9a-f]{64}", metadata["sha256"])
    with np.load(folder / "tagger.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted(
            ["idf"] + [f"{kind}_{field}" for field in LABEL_FIELDS for kind in ("coef", "intercept")]
        )
        assert {arrays[name].dtype for name in arrays.files} == {np.dtype(np.float32)}


def test_a_tampered_array_file_is_refused_with_a_message_naming_it(saved: Path):
    arrays = saved / "tagger.npz"
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))

    with pytest.raises(ModelError) as caught:
        Tagger.load(saved)

    assert str(caught.value) == (
        f"{arrays} is missing or does not match the checksum in {saved / 'tagger.json'}; "
        "retrain the tagger (`recommender train-tagger`) or restore the file"
    )


def test_arrays_replaced_by_another_taggers_are_refused(training_set: list[Asset], saved: Path, tmp_path: Path):
    other = fit(training_set, C=0.1).save(tmp_path / "other")
    (saved / "tagger.npz").write_bytes((other / "tagger.npz").read_bytes())

    with pytest.raises(ModelError, match="does not match the checksum"):
        Tagger.load(saved)


def test_a_missing_array_file_is_refused(saved: Path):
    (saved / "tagger.npz").unlink()

    with pytest.raises(ModelError, match=re.escape(f"{saved / 'tagger.npz'} is missing or does not match")):
        Tagger.load(saved)


def test_a_folder_without_a_tagger_says_how_to_train_one(tmp_path: Path):
    with pytest.raises(ModelError) as caught:
        Tagger.load(tmp_path)

    assert str(caught.value) == f"no trained tagger in {tmp_path}: run `recommender train-tagger`"


def test_metadata_that_is_not_json_is_refused(saved: Path):
    (saved / "tagger.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(ModelError, match=rf"^{re.escape(str(saved / 'tagger.json'))} is not valid JSON "):
        Tagger.load(saved)


def test_metadata_claiming_another_version_than_its_arrays_is_refused(saved: Path):
    metadata = json.loads((saved / "tagger.json").read_text(encoding="utf-8"))
    real = metadata["version"]
    metadata["version"] = "000000000000"
    (saved / "tagger.json").write_text(json.dumps(metadata), encoding="utf-8")

    with pytest.raises(ModelError) as caught:
        Tagger.load(saved)

    assert str(caught.value) == f"{saved} holds version 000000000000 but its arrays hash to {real}"


def smuggle_pickle(folder: Path, marker: Path) -> None:
    """Replace one array with a pickled object that would create `marker` when unpickled, checksum fixed up."""
    from recommender.tagging import _sha256

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with np.load(folder / "tagger.npz", allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["coef_segments"] = np.array([Payload()], dtype=object)
    np.savez(folder / "tagger.npz", **arrays)
    metadata = json.loads((folder / "tagger.json").read_text(encoding="utf-8"))
    metadata["sha256"] = _sha256(folder / "tagger.npz")
    (folder / "tagger.json").write_text(json.dumps(metadata), encoding="utf-8")


def test_loading_never_unpickles_even_a_file_whose_checksum_was_forged(saved: Path, tmp_path: Path):
    marker = tmp_path / "unpickled"
    smuggle_pickle(saved, marker)

    with pytest.raises(ModelError):
        Tagger.load(saved)

    assert not marker.exists()


def test_a_pickled_array_is_refused_with_a_model_error_naming_the_file(saved: Path, tmp_path: Path):
    smuggle_pickle(saved, tmp_path / "unpickled")

    with pytest.raises(ModelError) as caught:
        Tagger.load(saved)

    assert str(caught.value) == (
        f"{saved / 'tagger.npz'} is not a tagger's plain arrays "
        "(Object arrays cannot be loaded when allow_pickle=False); retrain the tagger"
    )


def test_the_shipped_tagger_passes_its_checksum_and_reads_the_default_model():
    shipped = Tagger.load(TAGGER_DIR)

    assert shipped.model_ == DEFAULT_MODEL
    assert shipped.version == json.loads((TAGGER_DIR / "tagger.json").read_text(encoding="utf-8"))["version"]


# -- version -----------------------------------------------------------------------------------------------


def test_the_version_is_a_short_content_hash_that_two_identical_trainings_share(
    tagger: Tagger, training_set: list[Asset]
):
    assert re.fullmatch(r"[0-9a-f]{12}", tagger.version)
    assert fit(training_set).version == tagger.version


@pytest.mark.parametrize("change", ["parameters", "training data", "embedding model"])
def test_the_version_changes_with_the_parameters_the_data_or_the_embedding_model(
    tagger: Tagger, training_set: list[Asset], change: str
):
    if change == "parameters":
        other = fit(training_set, C=0.5)
    elif change == "training data":
        other = fit(training_set[1:])
    else:
        other = Tagger(**SMALL).fit(inputs(training_set), curated_labels(training_set), model="another-model")

    assert other.version != tagger.version


def test_the_version_changes_when_one_coefficient_changes(training_set: list[Asset]):
    tagger = fit(training_set)
    before = tagger.version

    tagger.coef_["stages"][0, 0] += 1e-3

    assert tagger.version != before


# -- curated labels win ------------------------------------------------------------------------------------


def test_curated_fields_are_kept_and_only_the_empty_ones_are_filled_by_the_tagger(
    tagger: Tagger, unseen_vendor: list[Asset]
):
    # An asset whose curator set the segment (against what its words say) but no stage or role.
    asset = unseen_vendor[0].model_copy(update={"segments": (Segment.SMB,), "stages": (), "roles": ()})
    predicted = tagger.predict(inputs([asset]))[0]

    merged = merge_labels(asset, predicted)

    assert merged.segments.labels == ("smb",)
    assert merged.segments.scores == {"enterprise": 0.0, "smb": 1.0}
    assert merged.segments.source is LabelSource.CURATED
    assert merged.stages == predicted.stages
    assert merged.roles == predicted.roles
    assert merged.model_version == tagger.version


def test_a_fully_curated_asset_keeps_every_label_whatever_the_tagger_says(tagger: Tagger, unseen_vendor: list[Asset]):
    asset = unseen_vendor[0].model_copy(
        update={"segments": (Segment.SMB,), "stages": (Stage.RETENTION,), "roles": (Role.OWNER,)}
    )

    (labels,) = label_assets([asset], EMBEDDER.encode([asset.text]), tagger)

    assert (labels.segments.labels, labels.stages.labels, labels.roles.labels) == (("smb",), ("retention",), ("owner",))
    assert {labels.field(f).source for f in LABEL_FIELDS} == {LabelSource.CURATED}
    assert labels.model_version is None


def test_label_assets_sends_only_assets_missing_a_curated_field_to_the_tagger(
    tagger: Tagger, unseen_vendor: list[Asset], monkeypatch: pytest.MonkeyPatch
):
    assets = [unseen_vendor[0], untagged(unseen_vendor[1]), unseen_vendor[2].model_copy(update={"roles": ()})]
    asked: list[list[str]] = []
    predict = tagger.predict
    monkeypatch.setattr(tagger, "predict", lambda data: asked.append(list(data.texts)) or predict(data))

    labels = label_assets(assets, EMBEDDER.encode([a.text for a in assets]), tagger)

    assert asked == [[assets[1].text, assets[2].text]]
    assert [str(label.roles.source) for label in labels] == ["curated", "predicted", "predicted"]
    assert [str(label.segments.source) for label in labels] == ["curated", "predicted", "curated"]


def test_an_untagged_asset_without_a_tagger_is_an_error_naming_it_and_the_field():
    asset = make_asset("bare-1", stages=[])

    with pytest.raises(ModelError) as caught:
        label_assets([asset], EMBEDDER.encode([asset.text]), None)

    assert str(caught.value) == "asset 'bare-1' has no curated stages and no tagger was given to predict them"


# -- training data, cross-validation, model card -----------------------------------------------------------


@pytest.fixture(scope="module")
def three_vendors() -> list[Asset]:
    return (
        vendor_library("alpha", FILLERS[:2])
        + vendor_library("beta", FILLERS[2:4])
        + vendor_library("gamma", FILLERS[4:])
    )


def test_training_needs_curated_labels_on_every_asset_and_names_those_without(training_set: list[Asset]):
    assets = [untagged(a) for a in training_set[:12]] + training_set[12:]

    with pytest.raises(RecommenderError) as caught:
        curated_labels(assets)

    shown = ", ".join(a.id for a in assets[:10])
    assert str(caught.value) == (
        f"training needs curated segments, stages and roles on every asset; missing on {shown} and 2 more"
    )


def test_cross_validation_holds_out_each_vendor_site_in_turn(three_vendors: list[Asset]):
    cv = cross_validate(three_vendors, EMBEDDER.encode([a.text for a in three_vendors]), model="m", params=SMALL)

    assert cv.groups == ["alpha.example.com", "beta.example.com", "gamma.example.com"]
    assert list(cv.per_group_macro) == cv.groups
    assert cv.macro["segments"] == 1.0
    assert cv.macro["stages"] == 1.0
    # Roles no asset carries and none predicted have no F1: the average is over the labels in use.
    assert cv.per_label["roles"] == {"finance": 1.0, "it": 1.0, "owner": 1.0}
    assert cv.macro["roles"] == 1.0


def test_cross_validation_reports_a_vendor_the_others_do_not_prepare_for(three_vendors: list[Asset]):
    # gamma files its smb pricing pages under awareness: a convention no other vendor taught the tagger.
    shifted = [
        a.model_copy(update={"stages": (Stage.AWARENESS,)}) if a.id.startswith("gamma-smb-decision") else a
        for a in three_vendors
    ]

    cv = cross_validate(shifted, EMBEDDER.encode([a.text for a in shifted]), model="m", params=SMALL)

    assert cv.per_group_macro["alpha.example.com"]["stages"] == 1.0
    assert cv.per_group_macro["gamma.example.com"]["stages"] < 1.0


def test_cross_validation_needs_at_least_two_sites(training_set: list[Asset]):
    with pytest.raises(RecommenderError) as caught:
        cross_validate(training_set, EMBEDDER.encode([a.text for a in training_set]), model="m", params=SMALL)

    assert str(caught.value) == "cross-validation needs assets from at least two sites (URL hosts)"


def test_the_model_card_records_version_data_and_cross_validated_f1(three_vendors: list[Asset]):
    embeddings = EMBEDDER.encode([a.text for a in three_vendors])
    cv = cross_validate(three_vendors, embeddings, model=EMBEDDER.name, params=SMALL)
    tagger = fit(three_vendors)
    checksum = library_checksum(three_vendors)

    card = model_card(tagger, three_vendors, cv, checksum)

    assert set(card) == {
        "version",
        "trained_at",
        "embedding_model",
        "params",
        "training_data",
        "cross_validation",
        "calibration",
    }
    assert card["version"] == tagger.version
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", card["trained_at"])
    assert card["embedding_model"] == EMBEDDER.name
    assert card["params"] == tagger.get_params()
    assert card["training_data"] == {
        "assets": 72,
        "library_checksum": checksum,
        "sites": ["alpha.example.com", "beta.example.com", "gamma.example.com"],
        "languages": {"en": 72},
        "label_counts": {
            "segments": {"enterprise": 48, "smb": 24},
            "stages": {"awareness": 18, "consideration": 18, "decision": 18, "retention": 18},
            "roles": {"finance": 24, "it": 24, "owner": 24},
        },
    }
    assert card["cross_validation"]["macro_f1"] == cv.macro
    assert card["cross_validation"]["method"].startswith("leave-one-group-out")
    assert json.loads(json.dumps(card)) == card
    rendered = render_model_card(card)
    assert f"- **Version**: `{tagger.version}`" in rendered
    assert "| segments | 1.000 |" in rendered
    assert card["calibration"]["temperatures"] == {"segments": 1.0, "stages": 1.0, "roles": 1.0}
    assert "## Calibration" in rendered


def test_a_model_card_without_cross_validation_says_so(training_set: list[Asset]):
    tagger = fit(training_set)

    card = model_card(tagger, training_set, None, library_checksum(training_set))

    assert card["cross_validation"] is None
    assert "## Cross-validated quality" not in render_model_card(card)


# -- recommender train-tagger ------------------------------------------------------------------------------


def test_train_tagger_writes_a_loadable_tagger_and_its_model_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Two small vendors: the command trains with default parameters, three times with cross-validation.
    library = write_jsonl(
        tmp_path / "library.jsonl", vendor_library("alpha", FILLERS[:1]) + vendor_library("beta", FILLERS[1:2])
    )
    monkeypatch.setattr("recommender.embeddings.load_embedder", lambda spec: HashEmbedder(name=spec))
    output = tmp_path / "my-tagger"

    result = CliRunner().invoke(main, ["train-tagger", str(library), "--model", "hash", "--output", str(output)])

    assert result.exit_code == 0, result.output
    tagger = Tagger.load(output)
    assert result.output.splitlines()[0] == f"Trained tagger {tagger.version} on 24 assets; saved to {output}."
    assert re.fullmatch(
        r"  held-out-vendor macro-F1 segments: \d\.\d{3}\n  held-out-vendor macro-F1 stages: \d\.\d{3}\n"
        r"  held-out-vendor macro-F1 roles: \d\.\d{3}\n",
        "\n".join(result.output.splitlines()[1:]) + "\n",
    )
    assert tagger.model_ == "hash"
    assert (output / "MODEL_CARD.md").read_text(encoding="utf-8").startswith("# Tagger model card")


def test_train_tagger_on_a_library_without_curated_labels_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    library = write_jsonl(tmp_path / "library.jsonl", [make_asset("bare-1", roles=[])])
    monkeypatch.setattr("recommender.embeddings.load_embedder", lambda spec: HashEmbedder(name=spec))

    result = CliRunner().invoke(main, ["train-tagger", str(library), "--no-cv", "--output", str(tmp_path / "t")])

    assert result.exit_code == 1
    assert result.output == (
        "Error: training needs curated segments, stages and roles on every asset; missing on bare-1\n"
    )
    assert not (tmp_path / "t").exists()
