"""For operators and orchestrators: /healthz (alive), /readyz (index loaded), /metrics (Prometheus)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response

from api import engine, metrics
from api.errors import ApiError
from api.schemas import Health, Readiness, to_json
from recommender import RecommenderError

bp = Blueprint("operations", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return to_json(Health(status="alive"))


@bp.get("/readyz")
def readyz() -> dict[str, Any]:
    try:
        recommender = engine.current()
        recommender.refresh()
    except RecommenderError as exc:
        log.error("not ready: %s", exc)
        raise ApiError(503, f"the index is not ready: {type(exc).__name__}; the server log says more") from exc
    return to_json(
        Readiness(status="ready", index_version=recommender.version, asset_count=recommender.snapshot.asset_count)
    )


@bp.get("/metrics")
def prometheus() -> Response:
    recommender = engine.current()
    recommender.refresh()
    collected = metrics.current()
    collected.index(recommender.version, recommender.snapshot.asset_count)
    body, content_type = collected.exposition()
    return Response(body, content_type=content_type)
