"""The application factory: configuration, the engine, and the parts that register themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from api import auth, cors, engine, errors, metrics, request_log, routes
from api.schemas import MAX_BODY_BYTES

DEFAULTS: dict[str, Any] = {
    # Where the index is: a directory made by `recommender build-index`.
    "INDEX_DIR": "index",
    # A TOML file overriding ranking weights and parameters (see recommender.config).
    "RANKING_CONFIG": None,
    # A ready `Recommender` to serve instead of loading INDEX_DIR (tests, embedding in other apps).
    "RECOMMENDER": None,
    # Hashed API keys allowed to write (see api.auth); none means no writes.
    "API_KEYS": (),
    # Origins allowed to call the API from a browser (see api.cors); none by default.
    "CORS_ORIGINS": (),
    # Request bodies above this many bytes are refused with 413.
    "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The API as a WSGI app.

    Configuration, later wins: DEFAULTS, RECOMMENDER_* environment variables (RECOMMENDER_INDEX_DIR,
    RECOMMENDER_API_KEYS, RECOMMENDER_CORS_ORIGINS, RECOMMENDER_MAX_CONTENT_LENGTH, ...), `config`.
    The index and its model are loaded here, once, so a bad setting fails at start-up.
    """
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("RECOMMENDER")
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    metrics.init_app(app)
    request_log.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    cors.init_app(app)
    engine.init_app(app)
    routes.register(app)
    return app
