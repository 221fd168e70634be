"""Schemathesis against the app's own /openapi.json: generated requests, valid and invalid, on every route.

Every check is on: no server error, status codes, content types, headers and bodies as documented,
invalid data rejected and valid data accepted, authentication not ignored, and the rest. The app runs
in process (WSGI) over the shipped sample library, indexed with the test embedder, with a tagger
trained on it so that assets without labels can be written too. Examples per operation are bounded
so that the whole file runs in a minute or two.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import API_WRITE_KEY, HashEmbedder
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS

from api import create_app
from api.auth import hash_key
from api.openapi import build
from api.schemas import MAX_BODY_BYTES
from content_library import LABEL_FIELDS, SAMPLE_LIBRARY, load_library
from recommender import RankingConfig
from recommender.build import build_index
from recommender.engine import Recommender
from recommender.tagging import Tagger, TaggerInput

#: Generated cases per operation and generation mode.
MAX_EXAMPLES = 25
AUTH = {"Authorization": f"Bearer {API_WRITE_KEY}"}


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recommender]:
    embedder = HashEmbedder()
    folder: Path = tmp_path_factory.mktemp("schemathesis") / "index"
    build_index([SAMPLE_LIBRARY], folder, embedder, tagger=None)
    assets = load_library(SAMPLE_LIBRARY).assets
    data = TaggerInput.of(assets, embedder.encode([a.text for a in assets]))
    labels = {field: [[v.value for v in getattr(a, field)] for a in assets] for field in LABEL_FIELDS}
    tagger = Tagger(text_features=2**12).fit(data, labels, model=embedder.name)
    recommender = Recommender(folder, embedder, tagger)
    yield recommender
    recommender.close()


@pytest.fixture(scope="module")
def app(recommender: Recommender) -> Flask:
    return create_app({"RECOMMENDER": recommender, "API_KEYS": [f"{hash_key(API_WRITE_KEY)}:write,read"]})


# Operations are listed when the module is collected, so the document is built here the way the app
# builds it; the first test proves the app serves exactly this document.
DOCUMENT = build(MAX_BODY_BYTES, RankingConfig().stage_signals.events)
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
# An invalid body over the size limit is refused with 413 before it is read, as the document says.
_rejected = schema.config.checks.negative_data_rejection
_rejected.expected_statuses = [*_rejected.expected_statuses, "413"]


def test_the_document_under_test_is_the_one_the_app_serves(app: Flask):
    assert app.test_client().get("/openapi.json").get_json() == DOCUMENT


def keep_rules_json_schema_cannot_state(case: schemathesis.Case) -> None:
    """Make a generated write obey the two documented rules that JSON Schema cannot express.

    PUT: an `id` in the body, when given, equals the id in the path. Bulk upsert: each id appears
    once. A case breaking them is refused with 422 naming the field (tests/test_api_assets.py), which
    the positive-data check would otherwise count as valid data refused. Cases generated to be invalid
    are left as they are.
    """
    if not isinstance(case.body, dict) or (case.meta is not None and case.meta.generation.mode.is_negative):
        return
    # A copy: an explicit example's body is the document's own object, which other tests read too.
    body = case.body = copy.deepcopy(case.body)
    if case.method == "PUT" and isinstance(body.get("id"), str):
        del body["id"]
    if case.operation.path == "/v1/assets:bulk" and isinstance(body.get("assets"), list):
        seen: set[str] = set()
        unique = []
        for asset in body["assets"]:
            key = asset.get("id") if isinstance(asset, dict) else None
            if isinstance(key, str) and key in seen:
                continue
            unique.append(asset)
            if isinstance(key, str):
                seen.add(key)
        body["assets"] = unique


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
# The WSGI transport leaves the docs page's file response unclosed; the server closes it (it is Flask's own).
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
def test_every_operation_answers_generated_requests_as_documented(app: Flask, case: schemathesis.Case):
    # Checks that replay a request (e.g. without its key) send it to the app as well.
    case.operation.schema.app = app
    keep_rules_json_schema_cannot_state(case)

    case.call_and_validate(app=app, headers=AUTH, checks=CHECKS.get_all())
