"""POST /v1/sequences: a nurture sequence for an email campaign, one asset per step; and
/v1/sequences/batch: up to 100 contacts' sequences, each on its own."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api import engine
from api.batches import answer_each
from api.body import json_body
from api.schemas import (
    SequenceBatchEnvelope,
    SequenceBatchItem,
    SequenceBatchResponse,
    SequenceBatchSuccess,
    SequenceRequest,
    SequenceResponse,
    to_json,
)

bp = Blueprint("sequences", __name__)


@bp.post("/sequences")
def sequence() -> dict[str, Any]:
    request = json_body(SequenceRequest)
    return to_json(SequenceResponse.of(engine.current().sequence(request, request.steps)))


@bp.post("/sequences/batch")
def sequence_batch() -> dict[str, Any]:
    envelope = json_body(SequenceBatchEnvelope)
    recommender = engine.current()
    results, version = answer_each(
        envelope.requests,
        SequenceBatchItem,
        lambda items: recommender.sequence_many(items, [item.steps for item in items]),
        lambda item, answer: SequenceBatchSuccess(id=item.id, result=SequenceResponse.of(answer)),
    )
    return to_json(SequenceBatchResponse(results=results, index_version=version or recommender.version))
