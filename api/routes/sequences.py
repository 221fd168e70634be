"""POST /v1/sequences: a nurture sequence for an email campaign, one asset per step."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api import engine
from api.body import json_body
from api.schemas import RecommendedAsset, SequenceRequest, SequenceResponse, SequenceStep, to_json

bp = Blueprint("sequences", __name__)


@bp.post("/sequences")
def sequence() -> dict[str, Any]:
    request = json_body(SequenceRequest)
    recommender = engine.current()
    steps = recommender.sequence(
        request.segment,
        request.stage,
        request.steps,
        role=request.role,
        query=request.query,
        language=request.language,
        exclude=request.exclude,
        reading=request.reading,
    )
    return to_json(
        SequenceResponse(
            steps=[
                SequenceStep(step=n, stage=stage, item=RecommendedAsset.of(item, explain=True))
                for n, (stage, item) in enumerate(steps, 1)
            ],
            index_version=recommender.version,
        )
    )
