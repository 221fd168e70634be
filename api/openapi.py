"""The OpenAPI 3.1 document: schemas from the pydantic models, operations from the table below.

Examples link a request to its answer by name: a request example named N (in the request body or
in parameters) is answered with the status whose response holds an example named N, or with the
operation's success status when none does. The test suite sends every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pycountry
from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import engine
from api import schemas as s
from api.examples import EXAMPLES, Example

OPENAPI_VERSION = "3.1.0"
_KEY = "openapi"
_ERRORS = {
    400: "The body is not valid JSON, or is empty.",
    401: "No API key, or not a valid one.",
    403: "The API key lacks the write scope.",
    404: "No asset with that id (for a recommendation or a sequence: the id given as `reading`).",
    413: "The body is larger than the limit.",
    415: "The body is not sent with Content-Type: application/json.",
    422: "A field is invalid: the error names each one, its problem and, where there is a list, the allowed values.",
    500: "A fault of the server; the request id finds it in the log.",
    503: "The index is not available (writes: the version named current cannot be loaded, so nothing was "
    "written; rebuild the index).",
}
_ASSET_ID = {"type": "string", "pattern": s.ASSET_ID_PATTERN}
_LANGUAGES = sorted(language.alpha_2 for language in pycountry.languages if hasattr(language, "alpha_2"))
# content_library.schema matches URLs case-insensitively, and its \s (Python's) also covers \x1c-\x1f and
# \x85; JSON Schema patterns are ECMA-262, without flags and with a narrower \s.
_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x1c-\x1f\x85/$.?#][^\s\x1c-\x1f\x85]*$"
# Titles and bodies are stripped before their minimum length is checked, so they need a character the
# stripping keeps: pydantic strips the 25 characters of Unicode's White_Space, listed here as ECMA-262 reads them
# (Python's own str.strip also takes \x1c-\x1f, pydantic does not).
_VISIBLE_PATTERN = r"[^\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: str
    tag: str
    summary: str
    description: str
    status: int
    response: type[BaseModel] | str | None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    query: type[BaseModel] | None = None
    write: bool = False

    @property
    def operation_id(self) -> str:
        return self.endpoint.rsplit(".", 1)[-1]


_BODY_ERRORS = (400, 413, 415, 422)
#: 404: `reading` names no asset in the index.
_READING_ERRORS = (400, 404, 413, 415, 422)
OPERATIONS = (
    Operation(
        "post",
        "/v1/recommendations",
        "v1.recommendations.recommend",
        "Recommendations",
        "Assets for one buyer",
        "Ranks assets for a buyer by segment, role, stage (given, or inferred from buying signals), query "
        "and language. Items come best first; with `explain` each carries its score components.",
        200,
        s.RecommendationResponse,
        body=s.RecommendationRequest,
        errors=_READING_ERRORS,
    ),
    Operation(
        "post",
        "/v1/recommendations/batch",
        "v1.recommendations.batch",
        "Recommendations",
        "Assets for many buyers at once",
        f"Up to {s.MAX_BATCH} buyers, answered in one response, in order: each with its result or its error. "
        "An invalid buyer does not fail the others.",
        200,
        s.BatchResponse,
        body=s.BatchRequest,
        errors=_BODY_ERRORS,
    ),
    Operation(
        "post",
        "/v1/sequences",
        "v1.sequences.sequence",
        "Recommendations",
        "A nurture sequence for an email campaign",
        f"One asset per step (1 to {s.MAX_STEPS}), moving from the buyer's stage towards decision (from decision "
        "on, into retention), never repeating an asset, each with its reasons. The buyer is a recommendation's: "
        "the first stage is given, or inferred from the signals or the asset being read, else the default.",
        200,
        s.SequenceResponse,
        body=s.SequenceRequest,
        errors=_READING_ERRORS,
    ),
    Operation(
        "post",
        "/v1/sequences/batch",
        "v1.sequences.sequence_batch",
        "Recommendations",
        "Nurture sequences for many contacts at once",
        f"Up to {s.MAX_SEQUENCE_BATCH} contacts, each a sequence request with an optional `id`, answered in one "
        "response, in order: each with its sequence or its error. An invalid contact does not fail the others.",
        200,
        s.SequenceBatchResponse,
        body=s.SequenceBatchRequest,
        errors=_BODY_ERRORS,
    ),
    Operation(
        "get",
        "/v1/assets",
        "v1.assets.browse",
        "Assets",
        "Browse the library",
        f"Assets in id order, filtered, {s.MAX_BROWSE} at most per page; follow `next_cursor` for the next page.",
        200,
        s.BrowseResponse,
        errors=(422,),
        query=s.BrowseQuery,
    ),
    Operation(
        "get",
        "/v1/assets/{asset_id}",
        "v1.assets.get_asset",
        "Assets",
        "One asset with its labels",
        "The stored asset and the labels it is ranked by (curated, or predicted by the tagger).",
        200,
        s.AssetRecord,
        errors=(404,),
        path_parameters={"asset_id": "The asset's id."},
    ),
    Operation(
        "put",
        "/v1/assets/{asset_id}",
        "v1.assets.put_asset",
        "Assets",
        "Insert or replace an asset",
        "Needs an API key with the write scope. Missing labels are predicted by the tagger. The write is "
        "durable once answered and visible to the next request, whichever worker answers it.",
        200,
        s.WriteResponse,
        body=s.AssetPut,
        errors=(401, 403, *_BODY_ERRORS, 503),
        path_parameters={"asset_id": "The asset's id; the body's id, if given, must equal it."},
        write=True,
    ),
    Operation(
        "delete",
        "/v1/assets/{asset_id}",
        "v1.assets.delete_asset",
        "Assets",
        "Delete an asset",
        "Needs an API key with the write scope. Durable once answered.",
        204,
        None,
        errors=(401, 403, 404, 503),
        path_parameters={"asset_id": "The asset's id."},
        write=True,
    ),
    Operation(
        "post",
        "/v1/assets:bulk",
        "v1.assets.bulk_upsert",
        "Assets",
        "Insert or replace many assets",
        f"Needs an API key with the write scope. 1 to {s.MAX_BULK} assets, written in one transaction: all or "
        "none. An id may appear once.",
        200,
        s.WriteResponse,
        body=s.BulkUpsertRequest,
        errors=(401, 403, *_BODY_ERRORS, 503),
        write=True,
    ),
    Operation(
        "post",
        "/v1/tag",
        "v1.tagging.tag",
        "Assets",
        "Predict labels of assets",
        f"Segments, stages and roles with confidences for 1 to {s.MAX_TAG} assets; nothing is stored. Curated "
        "labels an asset carries are kept as they are.",
        200,
        s.TagResponse,
        body=s.TagRequest,
        errors=_BODY_ERRORS,
    ),
    Operation("get", "/healthz", "operations.healthz", "Operations", "Alive", "The process answers.", 200, s.Health),
    Operation(
        "get",
        "/readyz",
        "operations.readyz",
        "Operations",
        "Ready",
        "The index is loaded and readable.",
        200,
        s.Readiness,
        errors=(503,),
    ),
    Operation(
        "get",
        "/metrics",
        "operations.prometheus",
        "Operations",
        "Prometheus metrics",
        "Requests and latencies per route and status (`recommender_http_requests_total`, "
        "`recommender_http_request_duration_seconds`), the index size (`recommender_index_assets`) and "
        "version (`recommender_index_version_info`).",
        200,
        "text/plain",
    ),
    Operation("get", "/openapi.json", "pages.openapi_document", "Pages", "This document", "OpenAPI 3.1.", 200, "json"),
    Operation("get", "/docs", "pages.docs", "Pages", "API reference", "This document, rendered.", 200, "text/html"),
    Operation(
        "get",
        "/",
        "pages.playground",
        "Pages",
        "Playground",
        "A page for marketers: try recommendations and nurture sequences.",
        200,
        "text/html",
    ),
    Operation(
        "get",
        "/static/{filename}",
        "static",
        "Pages",
        "Scripts and styles of the pages",
        "Files of the playground and the reference page.",
        200,
        "file",
        errors=(404,),
        path_parameters={"filename": "A file name, e.g. playground.js."},
    ),
)


def document(app: Flask) -> dict[str, Any]:
    """The document for `app`, built once: its limits and buying signals are the app's configured ones."""
    if _KEY not in app.extensions:
        signals = engine.current().config.stage_signals.events
        app.extensions[_KEY] = build(app.config["MAX_CONTENT_LENGTH"], signals)
    return app.extensions[_KEY]


def build(max_body_bytes: int, signals: Sequence[str]) -> dict[str, Any]:
    components = _schemas()
    for schema in components.values():
        _state_code_checks(schema, signals)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, EXAMPLES.get(op.operation_id, {}))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Buyer-stage recommender API",
            "version": _version(),
            "description": _description(max_body_bytes),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "Recommendations", "description": "What a buyer should see next."},
            {"name": "Assets", "description": "The content library: read freely, write with an API key."},
            {"name": "Operations", "description": "Health, readiness and metrics."},
            {"name": "Pages", "description": "Pages for people."},
        ],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {str(status): _error_response(status, {}) for status in _ERRORS},
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id: the caller's X-Request-ID if sane, else a new one.",
                    "schema": {"type": "string"},
                }
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key made with `python -m api.keys`; the server stores only its hash.",
                }
            },
        },
    }


def _operation(op: Operation, examples: Mapping[str, Example]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
        "description": op.description,
    }
    parameters = [_path_parameter(name, text, examples) for name, text in op.path_parameters.items()]
    if op.query is not None:
        parameters += _query_parameters(op.query, examples)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        body_examples = {n: {"summary": e.summary, "value": e.body} for n, e in examples.items() if e.body is not None}
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body), **_examples(body_examples)}},
        }
    responses = {str(op.status): _success(op, examples)}
    for status in (*op.errors, 500):
        mine = {n: e for n, e in examples.items() if e.status == status}
        responses[str(status)] = _error_response(status, mine) if mine else {"$ref": f"#/components/responses/{status}"}
    out["responses"] = responses
    if op.write:
        out["security"] = [{"apiKey": []}]
    return out


def _success(op: Operation, examples: Mapping[str, Example]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": op.summary, "headers": _headers()}
    if op.response is None:
        return out
    if isinstance(op.response, str):
        media, schema = {
            "text/plain": ("text/plain", {"type": "string"}),
            "text/html": ("text/html", {"type": "string"}),
            "json": ("application/json", {"type": "object"}),
            "file": ("application/octet-stream", {"type": "string"}),
        }[op.response]
        out["content"] = {media: {"schema": schema}}
        return out
    mine = {n: {"summary": e.summary, "value": e.response} for n, e in examples.items() if e.status == op.status}
    out["content"] = {"application/json": {"schema": _ref(op.response), **_examples(mine)}}
    return out


def _error_response(status: int, examples: Mapping[str, Example]) -> dict[str, Any]:
    values = {n: {"summary": e.summary, "value": e.response} for n, e in examples.items()}
    return {
        "description": _ERRORS[status],
        "headers": _headers(),
        "content": {"application/json": {"schema": _ref(s.ErrorBody), **_examples(values)}},
    }


def _path_parameter(name: str, text: str, examples: Mapping[str, Example]) -> dict[str, Any]:
    values = {n: {"summary": e.summary, "value": e.path[name]} for n, e in examples.items() if name in e.path}
    schema = _ASSET_ID if name == "asset_id" else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "description": text, "schema": schema, **_examples(values)}


def _query_parameters(model: type[BaseModel], examples: Mapping[str, Example]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _state_code_checks(schema, ())
    out = []
    for name, info in model.model_fields.items():
        prop = dict(schema["properties"][name])
        prop.pop("title", None)
        values = {n: {"summary": e.summary, "value": e.query[name]} for n, e in examples.items() if name in e.query}
        parameter = {"name": name, "in": "query", "required": info.is_required(), "schema": prop}
        if info.description:
            parameter["description"] = info.description
        out.append({**parameter, **_examples(values)})
    return out


def _state_code_checks(schema: dict[str, Any], signals: Sequence[str]) -> None:
    """Write into `schema` what validators check in code, so that the document says what is accepted.

    Languages are ISO 639-1 codes (the validator also reads a tag such as de-DE, or a name such as German,
    as its code, which the field's description says), URLs are http(s), titles hold more than whitespace,
    and buying signals are the configured events.
    """
    properties = schema.get("properties", {})
    if "language" in properties:
        _string_of(properties["language"])["enum"] = _LANGUAGES
    if "url" in properties:
        _string_of(properties["url"])["pattern"] = _URL_PATTERN
    if "title" in properties:
        _string_of(properties["title"])["pattern"] = _VISIBLE_PATTERN
    if "signals" in properties and signals:
        properties["signals"]["items"] = {"type": "string", "enum": list(signals)}


def _string_of(prop: dict[str, Any]) -> dict[str, Any]:
    """The string schema of a property that is a string or a string or null."""
    return next((option for option in prop.get("anyOf", []) if option.get("type") == "string"), prop)


def _schemas() -> dict[str, Any]:
    requests = [
        s.RecommendationRequest,
        s.BatchRequest,
        s.SequenceRequest,
        s.SequenceBatchRequest,
        s.AssetPut,
        s.BulkUpsertRequest,
        s.TagRequest,
    ]
    responses = [
        s.RecommendationResponse,
        s.BatchResponse,
        s.SequenceResponse,
        s.SequenceBatchResponse,
        s.BrowseResponse,
        s.AssetRecord,
        s.WriteResponse,
        s.TagResponse,
        s.Health,
        s.Readiness,
        s.ErrorBody,
    ]
    pairs = [(m, "validation") for m in requests] + [(m, "serialization") for m in responses]
    _, top = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    return dict(sorted(top["$defs"].items()))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _headers() -> dict[str, Any]:
    return {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def _examples(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"examples": dict(values)} if values else {}


def _version() -> str:
    try:
        return version("buyer-stage-recommender")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        return "0"


def _description(max_body_bytes: int) -> str:
    limits = dict(s.LIMITS, body_bytes=max_body_bytes)
    rows = "\n".join(f"| {name} | {value} |" for name, value in limits.items())
    return f"""Content recommendations for B2B buyers by segment, committee role and buying stage.

**Access.** Reads are open. Writes (PUT, DELETE and bulk upsert of assets) need an API key with the
`write` scope: `Authorization: Bearer <key>`; 401 without a valid key, 403 without the scope.

**Browsers.** Cross-origin calls are allowed only from the origins in RECOMMENDER_CORS_ORIGINS.

**Errors.** Every error is `{{"error": {{"status", "message", "fields"}}, "request_id"}}`; `fields` names
each bad field, its problem and, where there is a list, the allowed values. Unknown fields are
rejected. Every response carries `X-Request-ID`.

**Limits** (a body over `body_bytes` gets 413; the others 422):

| limit | value |
|---|---|
{rows}
"""
