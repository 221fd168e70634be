"""The API's blueprints: one per resource, the versioned ones nested under /v1."""

from __future__ import annotations

from flask import Blueprint, Flask

from api import engine, metrics
from api.routes import assets, operations, pages, recommendations, sequences, tagging


def register(app: Flask) -> None:
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v1.before_request(_refresh)
    for module in (recommendations, sequences, assets, tagging):
        v1.register_blueprint(module.bp)
    app.register_blueprint(v1)
    app.register_blueprint(operations.bp)
    app.register_blueprint(pages.bp)


def _refresh() -> None:
    # Picks up writes made by other workers and a rebuilt index version: hot reload, no restart.
    recommender = engine.current()
    recommender.refresh()
    metrics.current().index(recommender.version, recommender.snapshot.asset_count)
