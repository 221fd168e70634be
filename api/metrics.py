"""Prometheus metrics: requests and latencies per route and status, the index's size and version.

Under gunicorn with several workers each worker writes its values to PROMETHEUS_MULTIPROC_DIR
(set by `api.gunicorn_conf` before anything imports prometheus_client) and /metrics adds them up.
"""

from __future__ import annotations

import os

from flask import Flask, current_app
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

_KEY = "metrics"
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The metrics of one app, in a registry of its own (so several apps in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests", "HTTP requests answered.", labels, namespace="recommender", registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            labels,
            namespace="recommender",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.assets = Gauge(
            "index_assets",
            "Assets in the served index, writes included.",
            namespace="recommender",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.version = Gauge(
            "index_version_info",
            "1 for the index version a worker serves (0 for versions it served before).",
            ("version",),
            namespace="recommender",
            multiprocess_mode="liveall",
            registry=self.registry,
        )
        self._index: tuple[str, int] | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def index(self, version: str, asset_count: int) -> None:
        if self._index == (version, asset_count):
            return
        if self._index is not None and self._index[0] != version:
            self.version.labels(self._index[0]).set(0)
        self.version.labels(version).set(1)
        self.assets.set(asset_count)
        self._index = (version, asset_count)

    def exposition(self) -> tuple[bytes, str]:
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def init_app(app: Flask) -> None:
    app.extensions[_KEY] = Metrics()


def current() -> Metrics:
    return current_app.extensions[_KEY]
