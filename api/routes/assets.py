"""The content library: read one asset, browse with filters, and (with an API key) write and delete."""

from __future__ import annotations

import base64
from typing import Any

import pydantic_core
from flask import Blueprint, Response

from api import engine
from api.auth import require
from api.body import json_body, json_object, query_args, validate_json
from api.errors import ApiError
from api.schemas import (
    AssetIn,
    AssetRecord,
    AssetSummary,
    BrowseQuery,
    BrowseResponse,
    BulkUpsertRequest,
    ErrorField,
    WriteResponse,
    to_json,
)

bp = Blueprint("assets", __name__)


@bp.get("/assets/<asset_id>")
def get_asset(asset_id: str) -> dict[str, Any]:
    found = engine.current().get(asset_id)
    if found is None:
        raise ApiError(404, f"no asset with id {asset_id[:128]!r} in the index")
    return to_json(AssetRecord(asset=found[0], labels=found[1]))


@bp.get("/assets")
def browse() -> dict[str, Any]:
    query = query_args(BrowseQuery)
    filters = {
        name: str(value)
        for name in ("asset_type", "language", "segment", "stage")
        if (value := getattr(query, name)) is not None
    }
    # One more than the page tells whether another page follows.
    rows = engine.current().snapshot.browse(filters, query.limit + 1, _decode_cursor(query.cursor))
    page = rows[: query.limit]
    next_cursor = _encode_cursor(page[-1][0].id) if len(rows) > query.limit else None
    items = [AssetSummary.of(asset, labels) for asset, labels in page]
    return to_json(BrowseResponse(items=items, next_cursor=next_cursor))


@bp.put("/assets/<asset_id>")
@require("write")
def put_asset(asset_id: str) -> dict[str, Any]:
    body = json_object()
    if body.get("id") not in (None, asset_id):
        problem = f"must equal the id in the path, {asset_id[:128]!r}, or be left out"
        raise ApiError(422, "invalid request: check id", [ErrorField(field="id", problem=problem)])
    asset = validate_json(AssetIn, pydantic_core.to_json(body | {"id": asset_id}))
    recommender = engine.current()
    recommender.upsert([asset])
    return to_json(WriteResponse(ids=[asset.id], index_version=recommender.version))


@bp.delete("/assets/<asset_id>")
@require("write")
def delete_asset(asset_id: str) -> Response:
    engine.current().delete([asset_id])
    return Response(status=204)


@bp.post("/assets:bulk")
@require("write")
def bulk_upsert() -> dict[str, Any]:
    request = json_body(BulkUpsertRequest)
    first: dict[str, int] = {}
    duplicates = []
    for position, asset in enumerate(request.assets):
        if asset.id in first:
            problem = f"duplicate id {asset.id!r}, also at assets[{first[asset.id]}]"
            duplicates.append(ErrorField(field=f"assets[{position}].id", problem=problem))
        first.setdefault(asset.id, position)
    if duplicates:
        raise ApiError(422, "invalid request: each asset id may appear once in a bulk upsert", duplicates)
    recommender = engine.current()
    recommender.upsert(request.assets)
    return to_json(WriteResponse(ids=[a.id for a in request.assets], index_version=recommender.version))


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    """The id a page starts after. Any cursor of the documented form decodes to some string to compare
    ids against; one not made by this API just starts the listing at an arbitrary point."""
    if cursor is None:
        return None
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("latin-1")
