"""The API app as served, plus one empty JSON route: the baseline of the HTTP benchmark.

`gunicorn 'benchmarks.http_app:create_app()'` with the product's gunicorn settings. The empty
route goes through the same server, middleware (request ids, logs, metrics, CORS) and JSON
encoder as the product's routes, so what the recommendation route costs beyond it is the engine's.
It exists only here, never in the product's app.

BENCH_MODEL=stand-in in the environment serves with synthetic query vectors instead of the model
(for the suite's tests); the library size comes from BENCH_SIZE.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from api import create_app as create_product_app


def create_app() -> Flask:
    config: dict[str, Any] = {}
    if os.environ.get("BENCH_MODEL") == "stand-in":
        from benchmarks.library import StandInEmbedder
        from recommender.engine import Recommender

        index_dir = os.environ["RECOMMENDER_INDEX_DIR"]
        config["RECOMMENDER"] = Recommender(index_dir, StandInEmbedder(int(os.environ.get("BENCH_SIZE", "10000"))))
    app = create_product_app(config)

    @app.post("/bench/empty")
    def empty() -> dict[str, Any]:
        return {}

    return app
