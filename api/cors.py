"""Cross-origin access for the marketing sites' origins only; none are allowed unless configured.

RECOMMENDER_CORS_ORIGINS lists exact origins (`https://www.example.com`, scheme, host and port as
the browser sends them), separated by whitespace or as a JSON list. An allowed origin is echoed in
Access-Control-Allow-Origin; a preflight from any other origin is refused with 403.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, request

from api.errors import ApiError
from recommender.errors import ConfigError

ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID"
#: Browsers may cache a preflight answer this long (seconds).
PREFLIGHT_MAX_AGE = 600
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
_KEY = "cors_origins"


def parse_origins(value: str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    if not value:
        return frozenset()
    entries = value.split() if isinstance(value, str) else list(value)
    origins = set()
    for entry in entries:
        origin = entry.strip().lower().rstrip("/") if isinstance(entry, str) else ""
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"CORS origin {entry!r} is not an origin like https://www.example.com (scheme, host, optional port)"
            )
        origins.add(origin)
    return frozenset(origins)


def init_app(app: Flask) -> None:
    app.extensions[_KEY] = parse_origins(app.config.get("CORS_ORIGINS"))
    app.before_request(_preflight)
    app.after_request(_allow)


def _allowed(origin: str | None) -> bool:
    return origin is not None and origin.lower() in current_app.extensions[_KEY]


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = request.headers.get("Origin")
    if origin is None or request.url_rule is None:
        return None
    if not _allowed(origin):
        raise ApiError(403, f"the origin {origin[:200]!r} may not call this API from a browser")
    response = current_app.response_class(status=204)
    # Each method of a path is its own URL rule: ask the map for all of them.
    adapter = current_app.create_url_adapter(request)
    methods = sorted(adapter.allowed_methods()) if adapter is not None else []
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def _allow(response: Response) -> Response:
    if current_app.extensions[_KEY]:
        response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if _allowed(origin):
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
    return response
