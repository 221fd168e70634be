"""Reading request input into the models of `api.schemas`; every failure becomes a 4xx `ApiError`."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic_core
from flask import request
from pydantic import BaseModel, ValidationError

from api.errors import ApiError, invalid_input

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
        raise ApiError(422, "the request body must be a JSON object")
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
    # Reading the body enforces MAX_CONTENT_LENGTH (413), also for chunked bodies without a length.
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    return raw
