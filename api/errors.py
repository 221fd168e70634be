"""One JSON error handler for the whole API: every error is `{"error": {...}, "request_id": ...}`.

Bad input gets a 4xx naming the field and the problem; the engine's named errors get their status;
anything else is logged with its traceback and answered 500 without one.
"""

from __future__ import annotations

import logging
import re
import typing
from typing import Any

from flask import Flask, Response, current_app, g, jsonify
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from api import engine
from api.schemas import ErrorDetail, ErrorField, to_json
from content_library.schema import not_a_role
from recommender.errors import (
    AssetNotFound,
    IndexCorrupt,
    IndexNotFound,
    ModelError,
    RecommenderError,
    UnknownReading,
    UnknownSignal,
)

log = logging.getLogger(__name__)
#: Problems and field names echo part of the input (a bad language code, an unknown key): a huge one
#: must not come back whole.
_MAX_PROBLEM_CHARS = 300
#: An error names at most this many fields: a body with 100,000 unknown keys gets a short answer, not
#: a list larger than itself.
MAX_ERROR_FIELDS = 10
_QUOTED = re.compile(r"'([^']*)'")


class ApiError(Exception):
    """An error answered as it is: status, message, and the fields at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: list[ErrorField] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(status=status, message=message, fields=fields)
        self.headers = headers or {}


def invalid_input(exc: ValidationError, model: type[BaseModel]) -> ApiError:
    """400 for a body that is not JSON, 422 naming every bad field of a `model` otherwise."""
    errors = exc.errors(include_url=False, include_input=False, include_context=True)
    for error in errors:
        if error["type"] == "json_invalid":
            return ApiError(400, f"the request body is not valid JSON: {error['ctx']['error']}")
    fields = [_error_field(error, model) for error in errors[:MAX_ERROR_FIELDS]]
    names = ", ".join(dict.fromkeys(f.field for f in fields))
    more = f" and {len(errors) - len(fields)} more problems" if len(errors) > len(fields) else ""
    return ApiError(422, f"invalid request: check {names}{more}", fields)


def engine_error(exc: RecommenderError) -> ApiError:
    """The API error for an error the engine raised on purpose."""
    if isinstance(exc, AssetNotFound):
        return ApiError(404, str(exc))
    if isinstance(exc, UnknownSignal):
        known = list(engine.current().config.stage_signals.events)
        field = ErrorField(field="signals", problem=_clip(str(exc)), allowed=known)
        return ApiError(422, "invalid request: check signals", [field])
    if isinstance(exc, UnknownReading):
        # As for any id that names no asset: the request is well formed, the asset is not there (yet).
        return ApiError(404, _clip(str(exc)), [ErrorField(field="reading", problem="no asset with this id or URL")])
    if isinstance(exc, ModelError):
        # Per request this means an asset lacks curated labels and no tagger is loaded to predict them.
        return ApiError(422, str(exc))
    if isinstance(exc, IndexNotFound | IndexCorrupt):
        log.error("index unavailable: %s", exc)
        return ApiError(503, "the index is not available; the server log says why")
    log.error("engine error: %s", exc)
    return ApiError(500, "internal error; quote the request id when reporting it")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_any)


def error_response(error: ApiError) -> Response:
    response = jsonify({"error": to_json(error.detail), "request_id": g.get("request_id", "")})
    response.status_code = error.detail.status
    response.headers.update(error.headers)
    return response


def _handle_http(exc: HTTPException) -> Response | HTTPException:
    if exc.code is None or exc.code < 400:
        return exc
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return error_response(ApiError(413, f"the request body is larger than the limit of {limit} bytes"))
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    message = (exc.description or exc.name).strip()
    return error_response(ApiError(exc.code, message, headers=headers))


def _handle_any(exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, RecommenderError):
        return error_response(engine_error(exc))
    log.exception("unhandled error in request %s", g.get("request_id", "-"))
    return error_response(ApiError(500, "internal error; quote the request id when reporting it"))


def _error_field(error: Any, model: type[BaseModel]) -> ErrorField:
    loc = tuple(error["loc"])
    field = _field_name(loc)
    kind = error["type"]
    allowed: list[str] | None = None
    if kind == "extra_forbidden":
        problem = "unknown field"
        allowed = _fields_at(model, loc[:-1])
    elif kind == "missing":
        problem = "required"
    elif kind in ("enum", "literal_error"):
        problem = not_a_role() if loc[-1:] == ("role",) else error["msg"]
        allowed = _QUOTED.findall(error["ctx"]["expected"])
    else:
        problem = error["msg"].removeprefix("Value error, ")
    return ErrorField(field=_clip(field), problem=_clip(problem), allowed=allowed)


def _field_name(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _fields_at(model: type[BaseModel], path: tuple[int | str, ...]) -> list[str] | None:
    """The field names of the model found by following `path` from `model` (None if it leads elsewhere)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        if not _is_model(current) or part not in current.model_fields:
            return None
        current = _inner_model(current.model_fields[part].annotation)
    return list(current.model_fields) if _is_model(current) else None


def _inner_model(annotation: Any) -> Any:
    """The model inside `X`, `X | None`, `list[X]` or `tuple[X, ...]`."""
    if _is_model(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_PROBLEM_CHARS else text[: _MAX_PROBLEM_CHARS - 1] + "…"
