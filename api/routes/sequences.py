"""POST /v1/sequences: a nurture sequence for an email campaign, one asset per step."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api import engine
from api.body import json_body
from api.schemas import SequenceRequest, SequenceResponse, to_json

bp = Blueprint("sequences", __name__)


@bp.post("/sequences")
def sequence() -> dict[str, Any]:
    request = json_body(SequenceRequest)
    return to_json(SequenceResponse.of(engine.current().sequence(request, request.steps)))
