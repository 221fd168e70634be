"""POST /v1/tag: predicted segments, stages and roles of assets sent in the body; nothing is stored."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api import engine
from api.body import json_body
from api.schemas import TaggedAsset, TagRequest, TagResponse, to_json

bp = Blueprint("tagging", __name__)


@bp.post("/tag")
def tag() -> dict[str, Any]:
    request = json_body(TagRequest)
    labels = engine.current().tag(request.assets)
    return to_json(
        TagResponse(
            labels=[
                TaggedAsset(
                    id=asset.id,
                    segments=label.segments,
                    stages=label.stages,
                    roles=label.roles,
                    model_version=label.model_version,
                )
                for asset, label in zip(request.assets, labels, strict=True)
            ]
        )
    )
