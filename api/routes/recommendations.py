"""POST /v1/recommendations (one buyer) and /v1/recommendations/batch (up to 1,000, each on its own)."""

from __future__ import annotations

from typing import Any

import pydantic_core
from flask import Blueprint
from pydantic import JsonValue

from api import engine
from api.body import json_body, validate_json
from api.errors import ApiError, engine_error
from api.schemas import (
    BatchEnvelope,
    BatchFailure,
    BatchItem,
    BatchResponse,
    BatchSuccess,
    RecommendationRequest,
    RecommendationResponse,
    to_json,
)
from recommender import RecommendationResult

bp = Blueprint("recommendations", __name__)


@bp.post("/recommendations")
def recommend() -> dict[str, Any]:
    request = json_body(RecommendationRequest)
    result = engine.current().recommend(request)
    return to_json(RecommendationResponse.of(result, explain=request.explain))


@bp.post("/recommendations/batch")
def batch() -> dict[str, Any]:
    envelope = json_body(BatchEnvelope)
    parsed = [_item(raw) for raw in envelope.requests]
    valid = [item for item in parsed if isinstance(item, BatchItem)]
    recommender = engine.current()
    answers = iter(recommender.recommend_many(valid))
    results: list[BatchSuccess | BatchFailure] = []
    version = None
    for raw, item in zip(envelope.requests, parsed, strict=True):
        if isinstance(item, ApiError):
            results.append(BatchFailure(id=_raw_id(raw), error=item.detail))
            continue
        answer = next(answers)
        if isinstance(answer, RecommendationResult):
            version = version or answer.index_version
            results.append(BatchSuccess(id=item.id, result=RecommendationResponse.of(answer, explain=item.explain)))
        else:
            results.append(BatchFailure(id=item.id, error=engine_error(answer).detail))
    return to_json(BatchResponse(results=results, index_version=version or recommender.version))


def _item(raw: JsonValue) -> BatchItem | ApiError:
    # Validated from its own JSON so that it follows exactly the rules of a single request.
    try:
        return validate_json(BatchItem, pydantic_core.to_json(raw))
    except ApiError as exc:
        return exc


def _raw_id(raw: JsonValue) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None
