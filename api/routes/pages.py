"""Pages for people: the playground (/), the API reference (/docs) and its source (/openapi.json)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template, send_from_directory

from api import engine, openapi
from content_library.schema import AssetType, Role, Segment, Stage

bp = Blueprint("pages", __name__)
#: The pages load only their own scripts and styles and call only this server.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@bp.get("/")
def playground() -> Response:
    vocabulary = {
        "segments": [s.value for s in Segment],
        "roles": [r.value for r in Role],
        "stages": [s.value for s in Stage],
        "asset_types": [t.value for t in AssetType],
        "signals": list(engine.current().config.stage_signals.events),
    }
    return _page(render_template("playground.html", vocabulary=vocabulary))


@bp.get("/docs")
def docs() -> Response:
    return _page(send_from_directory(current_app.static_folder or "", "docs.html"))


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    return openapi.document(current_app)


def _page(page: str | Response) -> Response:
    response = page if isinstance(page, Response) else Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = _CSP
    return response
