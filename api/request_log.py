"""Request ids, one structured log line per request, and the JSON log format.

Every response carries X-Request-ID: the caller's own if it is sane (1-128 of letters, digits and
`._:-`), a new one otherwise. The access log line holds method, route (the URL rule, not the path),
status, duration_ms and request_id: never headers, query strings or bodies, so no key or personal
data reaches the logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from api import metrics

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("api.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's `data` and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "data", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(HEADER, "")
    g.request_id = incoming if _SANE.match(incoming) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    # A request refused before _start ran (e.g. by routing) still gets an id.
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[HEADER] = request_id
    response.headers["X-Content-Type-Options"] = "nosniff"
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    metrics.current().observe(request.method, route, response.status_code, seconds)
    access_log.info(
        "request",
        extra={
            "data": {
                "method": request.method[:16],
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": request_id,
            }
        },
    )
    return response
