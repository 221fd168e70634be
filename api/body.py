"""Reading request input into the models of `api.schemas`; every failure becomes a 4xx `ApiError`."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic_core
from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import ApiError, invalid_input
from api.schemas import ErrorField

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> M:
    """The request body validated as `model` (415 for another content type, 400 for malformed JSON)."""
    return validate_json(model, _raw_json())


def validate_json(model: type[M], raw: bytes) -> M:
    """JSON validated as `model` (whose configuration says how strict it is, see api.schemas)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_input(exc, model) from None


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, not yet validated."""
    try:
        value = pydantic_core.from_json(_raw_json())
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        # Worded as the models word it, so every route names the field at fault the same way.
        field = ErrorField(field="body", problem="Input should be an object")
        raise ApiError(422, "invalid request: check body", [field])
    return value


def query_args(model: type[M]) -> M:
    """The query string validated as `model`; a parameter given twice is an error, not a silent pick."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ApiError(422, f"give each query parameter once: {', '.join(repeated)} came more than once")
    # Query parameters are strings: validated in lax mode, so that limit=10 is a number.
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise invalid_input(exc, model) from None


def _raw_json() -> bytes:
    if request.mimetype != "application/json":
        raise ApiError(415, "send the body as JSON with the header Content-Type: application/json")
    # Reading the body enforces MAX_CONTENT_LENGTH (413) when it has a Content-Length. A body without one
    # (chunked) is cut at the limit without a word: a byte left after it means the body was too large.
    raw = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit and request.input_stream.read(1):
        raise RequestEntityTooLarge()
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    return raw
