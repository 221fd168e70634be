"""Hostile and malformed input never gets a 500: always a 4xx JSON error naming the field, or an answer.

Hypothesis sends arbitrary JSON bodies, and valid bodies with one field replaced by an arbitrary JSON
value, to every JSON route; the request models are checked the same way without HTTP. The cases by
hand cover what a generator rarely finds: bytes that are not JSON or not UTF-8, nesting, limits.
The single-route cases of tests/test_api_recommendations.py and tests/test_api_assets.py are not
repeated here; this file runs them over every route.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import API_WRITE_KEY, HashEmbedder, make_asset, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from api import create_app
from api.auth import hash_key
from api.errors import invalid_input
from api.schemas import (
    MAX_BODY_BYTES,
    AssetIn,
    BatchEnvelope,
    BatchItem,
    BulkUpsertRequest,
    RecommendationRequest,
    SequenceBatchEnvelope,
    SequenceRequest,
    TagRequest,
)
from content_library import LABEL_FIELDS
from content_library.schema import AssetType, Role, Segment, Stage
from recommender import UnknownSignal
from recommender.build import build_index
from recommender.engine import Recommender
from recommender.tagging import Tagger, TaggerInput
from recommender.types import BuyerRequest

AUTH = {"Authorization": f"Bearer {API_WRITE_KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def asset_json(asset_id: str, **fields: Any) -> dict[str, Any]:
    return make_asset(asset_id, **fields).model_dump(mode="json")


RECOMMENDATION = {
    "segment": "enterprise",
    "role": "finance",
    "stage": "decision",
    "signals": ["demo"],
    "query": "invoice approval",
    "language": "en",
    "exclude": ["enterprise-decision-finance"],
    "asset_types": ["case_study", "datasheet"],
    "k": 3,
    "explain": True,
}
SEQUENCE = {
    "segment": "enterprise",
    "stage": "awareness",
    "role": "finance",
    "query": "invoices",
    "language": "en",
    "exclude": ["enterprise-awareness-finance"],
    "steps": 3,
}


class Route:
    """A JSON route, its request model, a valid body for it, and where in that body the object under test sits."""

    def __init__(
        self, method: str, path: str, model: type[BaseModel], body: dict[str, Any], at: tuple[str | int, ...] = ()
    ) -> None:
        self.method, self.path, self.model, self.body, self.at = method, path, model, body, at

    @property
    def target(self) -> dict[str, Any]:
        node: Any = self.body
        for part in self.at:
            node = node[part]
        return node

    def with_field(self, key: str, value: Any) -> dict[str, Any]:
        """The valid body with `key` of the object under test set to `value`."""
        body = copy.deepcopy(self.body)
        node = body
        for part in self.at:
            node = node[part]
        node[key] = value
        return body

    def prefix(self) -> str:
        """How error fields name the object under test (the batch reports per item, so none there)."""
        if self.path.endswith("/batch"):
            return ""
        return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(self.at))

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("POST", "/v1/recommendations", RecommendationRequest, RECOMMENDATION),
    Route(
        "POST",
        "/v1/recommendations/batch",
        BatchEnvelope,
        {"requests": [{**RECOMMENDATION, "id": "contact-1"}]},
        ("requests", 0),
    ),
    Route("POST", "/v1/sequences", SequenceRequest, SEQUENCE),
    Route(
        "POST",
        "/v1/sequences/batch",
        SequenceBatchEnvelope,
        {"requests": [{**SEQUENCE, "id": "contact-1"}]},
        ("requests", 0),
    ),
    Route("POST", "/v1/tag", TagRequest, {"assets": [asset_json("tag-1")]}, ("assets", 0)),
    Route("POST", "/v1/assets:bulk", BulkUpsertRequest, {"assets": [asset_json("bulk-1")]}, ("assets", 0)),
    Route("PUT", "/v1/assets/put-1", AssetIn, asset_json("put-1")),
]
ROUTE_IDS = [repr(r) for r in ROUTES]

# JSON values of every kind; integers stay within what a JSON parser must read (huge ones: see below).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)


LIBRARY = [
    make_asset(
        f"{segment}-{stage}-{role}",
        title=f"{stage} reading for {role}",
        body=f"Invoice approval for the {segment} {role}: what to know at the {stage} stage.",
        asset_type=asset_type,
        segments=[segment],
        stages=[stage],
        roles=[role],
    )
    for segment, role in (("enterprise", "finance"), ("enterprise", "it"), ("smb", "owner"))
    for stage, asset_type in (("awareness", "whitepaper"), ("consideration", "webinar"), ("decision", "case_study"))
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recommender]:
    """A small library, with a tagger so that untagged assets are accepted too."""
    folder = tmp_path_factory.mktemp("hostile")
    embedder = HashEmbedder()
    build_index([write_jsonl(folder / "library.jsonl", LIBRARY)], folder / "index", embedder, None)
    data = TaggerInput.of(LIBRARY, embedder.encode([a.text for a in LIBRARY]))
    labels = {f: [[v.value for v in getattr(a, f)] for a in LIBRARY] for f in LABEL_FIELDS}
    tagger = Tagger(text_features=2**10).fit(data, labels, model=embedder.name)
    recommender = Recommender(folder / "index", embedder, tagger)
    yield recommender
    recommender.close()


@pytest.fixture(scope="module")
def client(engine: Recommender) -> Any:
    return create_app({"RECOMMENDER": engine, "API_KEYS": [f"{hash_key(API_WRITE_KEY)}:write"]}).test_client()


def send(client: Any, route: Route, body: Any) -> Any:
    return client.open(route.path, method=route.method, data=json.dumps(body), headers=JSON)


def error_fields(response: Any) -> list[str]:
    return [f["field"] for f in response.get_json()["error"].get("fields", [])]


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status
    assert error["message"]
    return error


def within(field: str, name: str) -> bool:
    """Whether an error's field is `name` or a part of it (`name.x`, `name[0]`)."""
    return field == name or field.startswith((f"{name}.", f"{name}["))


# -- any JSON at all ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@PROPERTY
@given(body=json_values)
def test_property_any_json_body_gets_an_answer_or_a_422_naming_fields(client, route: Route, body: Any):
    response = send(client, route, body)

    assert response.status_code in (200, 422), response.get_data()
    if response.status_code == 422:
        error = assert_json_error(response, 422)
        assert error["fields"]
        assert all(f["problem"] for f in error["fields"])
        # Each names a field of the model, a key that was sent, or the body itself.
        known = set(route.model.model_fields) | (set(body) if isinstance(body, dict) else set()) | {"body"}
        assert all(any(within(f["field"], name) for name in known) for f in error["fields"]), error["fields"]


def fields_at_fault(route: Route, response: Any) -> list[str] | None:
    """The field names of the error (of the batch's one request, for a batch); None for an answer."""
    if route.path.endswith("/batch"):
        [result] = response.get_json()["results"]
        return [f["field"] for f in result["error"].get("fields", [])] if "error" in result else None
    return error_fields(response) if response.status_code == 422 else None


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@PROPERTY
@given(data=st.data(), value=json_values)
def test_property_one_bad_field_gets_a_422_naming_that_field(client, route: Route, data: st.DataObject, value: Any):
    # A known field or an unknown name; the value of any JSON type, valid for the field or not.
    key = data.draw(st.sampled_from(sorted(route.target)) | st.text(min_size=1, max_size=12), label="key")

    response = send(client, route, route.with_field(key, value))

    assert response.status_code in (200, 422), response.get_data()
    fields = fields_at_fault(route, response)
    if fields is not None:
        assert fields
        assert all(within(f, f"{route.prefix()}.{key}" if route.prefix() else key) for f in fields), fields


# -- the request models without HTTP ------------------------------------------------------------------

REQUEST_MODELS = [
    RecommendationRequest,
    BatchItem,
    BatchEnvelope,
    SequenceRequest,
    TagRequest,
    BulkUpsertRequest,
    AssetIn,
]


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
@PROPERTY
@given(value=json_values)
def test_property_a_request_model_accepts_or_names_each_problem_and_never_fails_otherwise(
    model: type[BaseModel], value: Any
):
    try:
        model.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        error = invalid_input(exc, model)
        assert error.detail.status == 422
        assert error.detail.fields
        assert all(f.field and f.problem for f in error.detail.fields)


def valid_or_not(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values the field takes (also in forms lax validation converts), sometimes any JSON."""
    return st.one_of(valid, valid, valid, json_values)


BUYER_FIELDS = {
    "role": valid_or_not(st.none() | st.sampled_from([r.value for r in Role] + [" Finance "])),
    "stage": valid_or_not(st.none() | st.sampled_from([s.value for s in Stage])),
    "signals": valid_or_not(st.lists(st.sampled_from(["site_visit", "demo", "purchase_order", "renewal_due"]))),
    "query": valid_or_not(st.none() | st.text(max_size=1100)),
    "language": valid_or_not(st.none() | st.sampled_from(["en", "de", "EN", " id ", "zz"])),
    "exclude": valid_or_not(st.lists(st.sampled_from([a.id for a in LIBRARY]) | st.text(max_size=130))),
    "asset_types": valid_or_not(st.lists(st.sampled_from([t.value for t in AssetType]), max_size=16)),
    "k": valid_or_not(st.integers(min_value=-2, max_value=120) | st.sampled_from(["5", 5.0, 2.5, True])),
}


@PROPERTY
@given(
    fields=st.fixed_dictionaries(
        {"segment": valid_or_not(st.sampled_from([s.value for s in Segment]))}, optional=BUYER_FIELDS
    )
)
def test_property_every_buyer_request_the_model_accepts_the_engine_answers(engine: Recommender, fields: dict):
    try:
        request = BuyerRequest.model_validate(fields)
    except ValidationError:
        return
    try:
        result = engine.recommend(request)
    except UnknownSignal:  # named by the API as a 422
        return
    assert len(result.items) <= request.k
    assert not {item.id for item in result.items} & set(request.exclude)


# -- bytes that are not JSON, or not a JSON object ----------------------------------------------------

NOT_JSON = {
    "truncated": b'{"segment": ',
    "trailing-comma": b'{"segment": "smb",}',
    "single-quotes": b"{'segment': 'smb'}",
    "invalid-utf8": b'{"segment": "sm\xc3\x28"}',
    "latin-1": '{"query": "Café"}'.encode("latin-1"),
    "lone-surrogate": b'{"query": "\\ud800"}',
    "byte-order-mark": b'\xef\xbb\xbf{"segment": "smb"}',
    "nested-2000-deep": b"[" * 2000 + b"]" * 2000,
    "nested-objects": b'{"a": ' * 300 + b"1" + b"}" * 300,
    "number-of-5000-digits": b'{"k": ' + b"9" * 5000 + b"}",
    "two-documents": b'{"segment": "smb"} {"segment": "smb"}',
    "whitespace-only": b" \n\t ",
}


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("data", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_body_that_is_not_json_gets_400_on_every_route(client, route: Route, data: bytes):
    response = client.open(route.path, method=route.method, data=data, headers=JSON)

    error = assert_json_error(response, 400)
    assert error["message"].startswith(("the request body is not valid JSON", "the request body is empty"))


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("body", [[], ["x"], "text", 7, 1.5, True, None], ids=repr)
def test_a_body_that_is_not_an_object_gets_422_naming_the_body_on_every_route(client, route: Route, body: Any):
    response = send(client, route, body)

    error = assert_json_error(response, 422)
    assert error["fields"] == [{"field": "body", "problem": "Input should be an object"}]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_body_over_the_size_limit_gets_413_on_every_route(client, route: Route):
    body = route.with_field("topic" if "title" in route.target else "query", "x" * MAX_BODY_BYTES)

    response = send(client, route, body)

    assert_json_error(response, 413)


def stream(client: Any, route: Route, data: bytes) -> Any:
    """The body sent without a Content-Length (chunked), as gunicorn hands such a body to the app."""
    return client.open(
        route.path,
        method=route.method,
        input_stream=io.BytesIO(data),
        headers={**JSON, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_body_without_a_length_over_the_size_limit_gets_413_on_every_route(client, route: Route):
    data = json.dumps(route.body).encode()

    over = stream(client, route, data + b" " * (MAX_BODY_BYTES - len(data) + 1))
    at_the_limit = stream(client, route, data + b" " * (MAX_BODY_BYTES - len(data)))

    assert_json_error(over, 413)
    assert at_the_limit.status_code == 200


# -- strings: huge, null bytes, any Unicode -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "size", "status"),
    [("title", 500, 200), ("title", 501, 422), ("body", 100_000, 200), ("body", 100_001, 422), ("url", 2049, 422)],
)
def test_asset_text_is_taken_up_to_its_limit_and_refused_beyond_it(client, field: str, size: int, status: int):
    value = "https://example.com/" + "x" * (size - 20) if field == "url" else "x" * size

    response = client.put("/v1/assets/long-1", json=asset_json("long-1") | {field: value}, headers=AUTH)

    assert response.status_code == status
    if status == 422:
        assert error_fields(response) == [field]


def test_a_huge_unknown_field_is_named_but_not_echoed_whole(client):
    response = client.post("/v1/sequences", json=SEQUENCE | {"x" * 100_000: "y" * 1_000_000})

    assert_json_error(response, 422)
    assert error_fields(response) == ["x" * 299 + "…"]
    assert len(response.get_data()) < 2_000


def test_a_body_with_thousands_of_bad_fields_names_the_first_ten_and_counts_the_rest(client):
    body = {"segment": "smb"} | {f"extra-{i}": 0 for i in range(20_000)}

    response = client.post("/v1/recommendations", json=body)

    error = assert_json_error(response, 422)
    assert error_fields(response) == [f"extra-{i}" for i in range(10)]
    assert error["message"].endswith(", extra-9 and 19990 more problems")
    assert len(response.get_data()) < 5_000


@PROPERTY
@given(title=st.text(min_size=1, max_size=200).filter(str.strip), topic=st.text(max_size=200))
def test_property_any_unicode_text_is_stored_and_read_back_exactly(client, title: str, topic: str):
    sent = asset_json("unicode-1") | {"title": title, "topic": topic}
    expected = AssetIn.model_validate(sent).model_dump(mode="json")

    written = client.put("/v1/assets/unicode-1", json=sent, headers=AUTH)
    read = client.get("/v1/assets/unicode-1")

    assert written.status_code == 200
    assert read.get_json()["asset"] == {k: v for k, v in expected.items() if v is not None}


def test_null_bytes_are_ordinary_characters_in_text_and_refused_in_ids(client):
    query = client.post("/v1/recommendations", json={"segment": "smb", "query": "pay\u0000bills"})
    put = client.put("/v1/assets/nul-1", json=asset_json("nul-1", title="a\u0000b"), headers=AUTH)
    bad_id = client.put("/v1/assets/nul%002", json=asset_json("x") | {"id": None}, headers=AUTH)
    exclude = client.post("/v1/recommendations", json={"segment": "smb", "exclude": ["a\u0000b"]})

    assert query.status_code == 200
    assert put.status_code == 200
    assert client.get("/v1/assets/nul-1").get_json()["asset"]["title"] == "a\u0000b"
    assert bad_id.status_code == 422 and error_fields(bad_id) == ["id"]
    assert exclude.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/v1/assets/%FF%FE", "/v1/assets/a%00b", "/v1/assets/" + "x" * 10_000, "/v1/assets/..%2F..%2Fetc%2Fpasswd"],
    ids=["invalid-utf8", "null-byte", "10000-chars", "traversal"],
)
def test_a_hostile_asset_id_in_the_path_is_not_found_and_not_echoed_whole(client, path: str):
    response = client.get(path)

    assert_json_error(response, 404)
    assert len(response.get_data()) < 1_000


@pytest.mark.parametrize(
    "query",
    ["limit=%00", "limit=" + "9" * 5000, "cursor=%FF", "segment=%FF%FE", "%FF=1", "limit=1e3", "limit=-1"],
    ids=["null-byte", "5000-digits", "invalid-utf8-cursor", "invalid-utf8-value", "invalid-utf8-name", "float", "neg"],
)
def test_a_hostile_browse_parameter_gets_422(client, query: str):
    response = client.get(f"/v1/assets?{query}")

    assert_json_error(response, 422)
    assert len(error_fields(response)) == 1


# -- numbers, enums and sizes over every route --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommendations", {"segment": "smb", "k": 10**100}, "k"),
        ("/v1/recommendations", {"segment": "smb", "k": -(10**9)}, "k"),
        ("/v1/recommendations", {"segment": "smb", "k": 1e308}, "k"),
        ("/v1/sequences", SEQUENCE | {"steps": 0}, "steps"),
        ("/v1/sequences", SEQUENCE | {"steps": 10**9}, "steps"),
        ("/v1/sequences", SEQUENCE | {"steps": "3"}, "steps"),
    ],
    ids=["k-10^100", "k-negative", "k-1e308", "steps-0", "steps-10^9", "steps-string"],
)
def test_a_count_out_of_range_gets_422_naming_it(client, path: str, body: dict, field: str):
    response = client.post(path, json=body)

    assert_json_error(response, 422)
    assert error_fields(response) == [field]


@pytest.mark.parametrize("k", [0, 10**9, "3", None])
def test_a_bad_k_inside_a_batch_fails_only_its_own_request(client, k: Any):
    body = {"requests": [{"id": "bad", "segment": "smb", "k": k}, {"id": "good", "segment": "smb", "k": 2}]}

    results = client.post("/v1/recommendations/batch", json=body).get_json()["results"]

    assert results[0]["id"] == "bad"
    assert [f["field"] for f in results[0]["error"]["fields"]] == ["k"]
    assert len(results[1]["result"]["items"]) == 2


@pytest.mark.parametrize(
    ("path", "body", "field", "vocabulary"),
    [
        ("/v1/sequences", SEQUENCE | {"stage": "purchase"}, "stage", Stage),
        ("/v1/sequences", SEQUENCE | {"segment": "mid-market"}, "segment", Segment),
        ("/v1/tag", {"assets": [asset_json("t-1") | {"asset_type": "hologram"}]}, "assets[0].asset_type", AssetType),
        ("/v1/assets:bulk", {"assets": [asset_json("b-1") | {"stages": ["purchase"]}]}, "assets[0].stages[0]", Stage),
        ("/v1/assets:bulk", {"assets": [asset_json("b-1") | {"segments": ["SME"]}]}, "assets[0].segments[0]", Segment),
    ],
    ids=["sequence-stage", "sequence-segment", "tag-asset-type", "bulk-stage", "bulk-segment"],
)
def test_an_unknown_enum_value_gets_422_listing_the_allowed_values(client, path, body, field, vocabulary):
    response = client.post(path, json=body, headers=AUTH)

    error = assert_json_error(response, 422)
    assert error["fields"] == [
        {"field": field, "problem": error["fields"][0]["problem"], "allowed": [v.value for v in vocabulary]}
    ]


def test_an_unknown_enum_value_inside_a_batch_lists_the_allowed_values_in_its_own_error(client):
    body = {"requests": [{"id": "c-1", "segment": "smb", "asset_types": ["hologram"]}]}

    [result] = client.post("/v1/recommendations/batch", json=body).get_json()["results"]

    assert result["error"]["fields"][0]["field"] == "asset_types[0]"
    assert result["error"]["fields"][0]["allowed"] == [t.value for t in AssetType]


def test_a_batch_of_1000_invalid_requests_answers_each_with_its_own_error(client):
    requests = [{"id": f"c-{i}", "segment": "mid-market"} for i in range(1000)]

    results = client.post("/v1/recommendations/batch", json={"requests": requests}).get_json()["results"]

    assert [r["id"] for r in results] == [f"c-{i}" for i in range(1000)]
    assert {r["error"]["fields"][0]["field"] for r in results} == {"segment"}


def test_repeated_contact_ids_in_a_batch_are_each_answered(client):
    body = {"requests": [{"id": "same", "segment": "smb", "k": 1}, {"id": "same", "segment": "enterprise", "k": 1}]}

    results = client.post("/v1/recommendations/batch", json=body).get_json()["results"]

    assert [(r["id"], len(r["result"]["items"])) for r in results] == [("same", 1), ("same", 1)]


def test_ids_that_differ_only_by_surrounding_spaces_are_duplicates_in_a_bulk_upsert(client):
    assets = [asset_json("dup-1"), asset_json("dup-1") | {"id": "  dup-1 "}]

    response = client.post("/v1/assets:bulk", json={"assets": assets}, headers=AUTH)

    assert_json_error(response, 422)
    assert error_fields(response) == ["assets[1].id"]
    assert client.get("/v1/assets/dup-1").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segment": "smb", "exclude": [f"id-{i}" for i in range(10_001)]}, "exclude"),
        ({"segment": "smb", "signals": ["demo"] * 201}, "signals"),
        ({"segment": "smb", "asset_types": ["video"] * 16}, "asset_types"),
    ],
    ids=["exclude-10001", "signals-201", "asset-types-16"],
)
def test_a_list_over_its_limit_gets_422_naming_it(client, body: dict, field: str):
    response = client.post("/v1/recommendations", json=body)

    assert_json_error(response, 422)
    assert error_fields(response) == [field]
