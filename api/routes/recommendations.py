"""POST /v1/recommendations (one buyer) and /v1/recommendations/batch (up to 1,000, each on its own)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api import engine
from api.batches import answer_each
from api.body import json_body
from api.schemas import (
    BatchEnvelope,
    BatchItem,
    BatchResponse,
    BatchSuccess,
    RecommendationRequest,
    RecommendationResponse,
    to_json,
)

bp = Blueprint("recommendations", __name__)


@bp.post("/recommendations")
def recommend() -> dict[str, Any]:
    request = json_body(RecommendationRequest)
    result = engine.current().recommend(request)
    return to_json(RecommendationResponse.of(result, explain=request.explain))


@bp.post("/recommendations/batch")
def batch() -> dict[str, Any]:
    envelope = json_body(BatchEnvelope)
    recommender = engine.current()
    results, version = answer_each(
        envelope.requests,
        BatchItem,
        recommender.recommend_many,
        lambda item, answer: BatchSuccess(id=item.id, result=RecommendationResponse.of(answer, explain=item.explain)),
    )
    return to_json(BatchResponse(results=results, index_version=version or recommender.version))
