"""The OpenAPI document: valid OpenAPI 3.1, complete, and every documented example answered as documented."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import API_WRITE_KEY, HashEmbedder
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import ValidationError

from api import create_app
from api.auth import hash_key
from api.openapi import build
from api.schemas import AssetIn
from content_library import LABEL_FIELDS, SAMPLE_LIBRARY, load_library
from recommender import RankingConfig, Recommender
from recommender.build import build_index
from recommender.tagging import Tagger, TaggerInput

DOCUMENT = build(10 * 1024 * 1024, RankingConfig().stage_signals.events)


def _examples() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(path, method, example name, operation) of every request example in the document."""
    out = []
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            names: dict[str, None] = {}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            names.update(dict.fromkeys(body.get("examples", {})))
            for parameter in operation.get("parameters", []):
                names.update(dict.fromkeys(parameter.get("examples", {})))
            out += [(path, method, name, operation) for name in names]
    return out


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> tuple[Path, Tagger]:
    """The shipped sample library indexed with the test embedder, and a tagger trained on its labels."""
    embedder = HashEmbedder()
    folder = tmp_path_factory.mktemp("sample") / "index"
    build_index([SAMPLE_LIBRARY], folder, embedder, tagger=None)
    assets = load_library(SAMPLE_LIBRARY).assets
    data = TaggerInput.of(assets, embedder.encode([a.text for a in assets]))
    labels = {field: [[v.value for v in getattr(a, field)] for a in assets] for field in LABEL_FIELDS}
    return folder, Tagger(text_features=2**12).fit(data, labels, model=embedder.name)


def test_the_document_is_valid_openapi_3_1(api_client):
    served = api_client.get("/openapi.json").get_json()

    validate(served)
    assert served["openapi"] == "3.1.0"


def test_every_route_is_documented_and_every_documented_route_exists(api_app):
    served = set()
    for rule in api_app.url_map.iter_rules():
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        served |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}

    documented = {(path, method) for path, methods in DOCUMENT["paths"].items() for method in methods}

    assert documented == served


def test_every_operation_documents_its_errors_and_its_key(api_app):
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            assert "500" in operation["responses"], (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= operation["responses"].keys(), (path, method)
            if method in ("put", "delete") or path == "/v1/assets:bulk":
                assert operation["security"] == [{"apiKey": []}]
                assert {"401", "403"} <= operation["responses"].keys()


def test_the_documented_limits_are_the_configured_ones(recommender: Recommender):
    app = create_app({"RECOMMENDER": recommender, "MAX_CONTENT_LENGTH": 12345})

    description = app.test_client().get("/openapi.json").get_json()["info"]["description"]

    assert "| body_bytes | 12345 |" in description
    assert "| k | 100 |" in description
    assert "| batch_requests | 1000 |" in description


@pytest.mark.parametrize("title", ["\f", " \u3000 ", "\x1c", "\x85", "\ufeff", "\u200b", "A", " a "])
def test_the_document_accepts_a_title_exactly_when_the_api_does(title: str):
    asset = {"id": "a1", "title": title, "body": "b", "asset_type": "guide", "language": "en", "url": "https://x.io"}
    schema = {"$ref": "#/components/schemas/AssetIn", "components": DOCUMENT["components"]}
    documented = Draft202012Validator(schema).is_valid(asset)

    try:
        AssetIn.model_validate(asset)
        accepted = True
    except ValidationError:
        accepted = False

    assert documented == accepted


@pytest.mark.parametrize(("path", "method", "name", "operation"), EXAMPLES, ids=[f"{e[2]}@{e[0]}" for e in EXAMPLES])
def test_every_documented_example_is_answered_as_documented(sample_index, tmp_path, path, method, name, operation):
    folder, tagger = sample_index
    shutil.copytree(folder, tmp_path / "index")
    recommender = Recommender(tmp_path / "index", HashEmbedder(), tagger)
    client = create_app({"RECOMMENDER": recommender, "API_KEYS": [f"{hash_key(API_WRITE_KEY)}:write"]}).test_client()
    request = _request(path, method, name, operation)

    response = client.open(**request, headers={"Authorization": f"Bearer {API_WRITE_KEY}"})

    status, documented = _documented_answer(operation, name)
    assert response.status_code == status
    assert response.headers["X-Request-ID"]
    media = documented.get("content", {}).get("application/json")
    if media is None:
        assert response.get_data() == b""
        return
    body = response.get_json()
    Draft202012Validator({**media["schema"], "components": DOCUMENT["components"]}).validate(body)
    example = media.get("examples", {}).get(name, {}).get("value")
    if example is not None and "error" in example:
        assert _fields(body) == _fields(example)


def _request(path: str, method: str, name: str, operation: dict[str, Any]) -> dict[str, Any]:
    query = {}
    for parameter in operation.get("parameters", []):
        example = parameter.get("examples", {}).get(name)
        if example is None:
            continue
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", example["value"])
        else:
            query[parameter["name"]] = example["value"]
    request: dict[str, Any] = {"path": path, "method": method.upper(), "query_string": query}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("examples", {})
    if name in body:
        request["json"] = body[name]["value"]
    return request


def _documented_answer(operation: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    """The response holding an example named `name`, or the operation's success response."""
    responses = {int(status): _resolve(response) for status, response in operation["responses"].items()}
    for status, response in responses.items():
        if name in response.get("content", {}).get("application/json", {}).get("examples", {}):
            return status, response
    status = min(s for s in responses if s < 300)
    return status, responses[status]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _fields(body: dict[str, Any]) -> list[str]:
    return [f["field"] for f in body["error"].get("fields", [])]
