"""The library through the API: GET one and browse (open), PUT, DELETE and bulk upsert (API key), and tagging."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import API_WRITE_KEY, make_asset

from content_library import Asset
from recommender import Recommender

AUTH = {"Authorization": f"Bearer {API_WRITE_KEY}"}


def asset_json(asset_id: str, **fields) -> dict:
    return make_asset(asset_id, **fields).model_dump(mode="json")


# -- reading -----------------------------------------------------------------------------------------


def test_an_asset_comes_back_as_stored_with_its_labels(api_client, small_library):
    expected = next(a for a in small_library if a.id == "ent-dec-2")

    response = api_client.get("/v1/assets/ent-dec-2")

    assert response.status_code == 200
    data = response.get_json()
    assert Asset.model_validate(data["asset"]) == expected
    assert data["labels"]["stages"] == {
        "labels": ["decision"],
        "scores": {"awareness": 0.0, "consideration": 0.0, "decision": 1.0, "retention": 0.0},
        "source": "curated",
    }


def test_an_unknown_asset_id_gets_404(api_client):
    response = api_client.get("/v1/assets/no-such-asset")

    assert response.status_code == 404
    assert response.get_json()["error"] == {"status": 404, "message": "no asset with id 'no-such-asset' in the index"}


def test_browsing_page_by_page_returns_every_asset_once_in_id_order(api_client, small_library):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        data = api_client.get("/v1/assets", query_string=query).get_json()
        seen += [item["id"] for item in data["items"]]
        pages += 1
        cursor = data.get("next_cursor")
        if cursor is None:
            break

    assert seen == sorted(a.id for a in small_library)
    assert pages == 3


def test_a_full_last_page_has_no_next_cursor(api_client):
    data = api_client.get("/v1/assets", query_string={"limit": 12}).get_json()

    assert len(data["items"]) == 12
    assert "next_cursor" not in data


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"segment": "smb"}, ["smb-aware-1", "smb-cons-1", "smb-dec-1", "smb-dec-2"]),
        ({"asset_type": "guide"}, ["ent-cons-2", "ent-ret-1"]),
        ({"language": "de"}, ["ent-cons-2"]),
        ({"stage": "decision", "segment": "enterprise"}, ["ent-dec-1", "ent-dec-2", "ent-dec-3"]),
        ({"language": "fr"}, []),
    ],
)
def test_browsing_filters_by_type_language_segment_and_stage(api_client, query, expected):
    data = api_client.get("/v1/assets", query_string=query).get_json()

    assert [item["id"] for item in data["items"]] == expected


def test_a_browsed_asset_is_summarised_without_its_body(api_client):
    item = api_client.get("/v1/assets", query_string={"limit": 1}).get_json()["items"][0]

    assert item == {
        "id": "ent-aware-1",
        "title": "hidden cost of manual invoices",
        "url": "https://example.com/ent-aware-1",
        "asset_type": "whitepaper",
        "language": "en",
        "published": "2025-01-01",
        "segments": ["enterprise"],
        "stages": ["awareness"],
        "roles": ["executive"],
    }


def test_browsing_by_asset_type_reads_another_name_for_it(api_client):
    named = api_client.get("/v1/assets", query_string={"asset_type": "White Paper"}).get_json()["items"]

    assert [item["id"] for item in named] == [
        item["id"] for item in api_client.get("/v1/assets?asset_type=whitepaper").get_json()["items"]
    ]
    assert named and {item["asset_type"] for item in named} == {"whitepaper"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("asset_type=hologram", "asset_type"),
        ("segment=mid-market", "segment"),
        ("language=englisch", "language"),
        ("sort=title", "sort"),
        ("cursor=%21%21%21", "cursor"),
        ("cursor=abcde", "cursor"),
    ],
)
def test_a_bad_browse_parameter_gets_422_naming_it(api_client, query, field):
    response = api_client.get(f"/v1/assets?{query}")

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]


def test_a_browse_parameter_given_twice_is_refused(api_client):
    response = api_client.get("/v1/assets?segment=smb&segment=enterprise")

    assert response.status_code == 422
    assert "segment" in response.get_json()["error"]["message"]


# -- writing -----------------------------------------------------------------------------------------


def test_a_put_asset_is_acknowledged_and_seen_by_the_next_read(api_client, recommender: Recommender):
    body = asset_json("new-1", title="Invoice approval checklist", segments=["smb"], stages=["decision"])
    body.pop("id")

    response = api_client.put("/v1/assets/new-1", json=body, headers=AUTH)

    assert response.status_code == 200
    assert response.get_json() == {"ids": ["new-1"], "index_version": recommender.version}
    assert api_client.get("/v1/assets/new-1").get_json()["asset"]["title"] == "Invoice approval checklist"
    found = api_client.post("/v1/recommendations", json={"segment": "smb", "k": 100}).get_json()["items"]
    assert "new-1" in [item["id"] for item in found]


def test_an_acknowledged_write_survives_a_restart(api_client, index_dir, embedder):
    api_client.put("/v1/assets/new-1", json=asset_json("new-1"), headers=AUTH)

    reopened = Recommender(index_dir, embedder)

    assert reopened.get("new-1") is not None


def test_a_put_replaces_the_asset_with_the_same_id(api_client):
    api_client.put("/v1/assets/ent-dec-2", json=asset_json("ent-dec-2", title="Security datasheet, 2026"), headers=AUTH)

    assert api_client.get("/v1/assets/ent-dec-2").get_json()["asset"]["title"] == "Security datasheet, 2026"


def test_a_put_whose_body_id_differs_from_the_path_is_refused(api_client):
    response = api_client.put("/v1/assets/new-1", json=asset_json("new-2"), headers=AUTH)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["id"]
    assert api_client.get("/v1/assets/new-1").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"language": "xx"}, "language"),
        ({"asset_type": "hologram"}, "asset_type"),
        ({"title": ""}, "title"),
        ({"stages": ["purchase"]}, "stages[0]"),
        ({"author": "someone"}, "author"),
        ({"published": "yesterday"}, "published"),
        ({"published": 0}, "published"),
        ({"published": ""}, "published"),
        ({"published": "2025-01-31T10:00:00Z"}, "published"),
    ],
)
def test_a_put_with_an_invalid_asset_gets_422_naming_the_field(api_client, change, field):
    response = api_client.put("/v1/assets/new-1", json=asset_json("new-1") | change, headers=AUTH)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]


def test_a_put_with_an_id_the_schema_refuses_gets_422(api_client):
    response = api_client.put("/v1/assets/-leading-dash", json=asset_json("x") | {"id": "-leading-dash"}, headers=AUTH)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["id"]


def test_a_put_without_labels_needs_a_tagger(api_client):
    body = asset_json("new-1", segments=[], stages=[], roles=[])

    response = api_client.put("/v1/assets/new-1", json=body, headers=AUTH)

    assert response.status_code == 422
    assert "no tagger" in response.get_json()["error"]["message"]


def test_a_deleted_asset_is_gone_at_the_next_read(api_client):
    response = api_client.delete("/v1/assets/ent-dec-2", headers=AUTH)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert api_client.get("/v1/assets/ent-dec-2").status_code == 404
    found = api_client.post("/v1/recommendations", json={"segment": "enterprise", "k": 100}).get_json()["items"]
    assert "ent-dec-2" not in [item["id"] for item in found]


def test_deleting_an_unknown_asset_gets_404(api_client):
    response = api_client.delete("/v1/assets/no-such-asset", headers=AUTH)

    assert response.status_code == 404


def test_a_bulk_upsert_writes_every_asset(api_client):
    assets = [asset_json(f"bulk-{i}") for i in range(3)]

    response = api_client.post("/v1/assets:bulk", json={"assets": assets}, headers=AUTH)

    assert response.status_code == 200
    assert response.get_json()["ids"] == ["bulk-0", "bulk-1", "bulk-2"]
    assert [api_client.get(f"/v1/assets/bulk-{i}").status_code for i in range(3)] == [200, 200, 200]


def test_a_bulk_upsert_with_duplicate_ids_names_them_and_writes_nothing(api_client):
    assets = [asset_json("bulk-0"), asset_json("bulk-1"), asset_json("bulk-0"), asset_json("bulk-1")]

    response = api_client.post("/v1/assets:bulk", json={"assets": assets}, headers=AUTH)

    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert fields == [
        {"field": "assets[2].id", "problem": "duplicate id 'bulk-0', also at assets[0]"},
        {"field": "assets[3].id", "problem": "duplicate id 'bulk-1', also at assets[1]"},
    ]
    assert api_client.get("/v1/assets/bulk-0").status_code == 404


def test_a_bulk_upsert_with_one_invalid_asset_writes_nothing(api_client):
    assets = [asset_json("bulk-0"), asset_json("bulk-1") | {"language": "xx"}]

    response = api_client.post("/v1/assets:bulk", json={"assets": assets}, headers=AUTH)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["assets[1].language"]
    assert api_client.get("/v1/assets/bulk-0").status_code == 404


@pytest.mark.parametrize(("count", "status"), [(0, 422), (1000, 200), (1001, 422)])
def test_a_bulk_upsert_takes_1_to_1000_assets(api_client, count, status):
    assets = [asset_json(f"bulk-{i}", body="short") for i in range(count)]

    response = api_client.post("/v1/assets:bulk", json={"assets": assets}, headers=AUTH)

    assert response.status_code == status


# -- tagging -----------------------------------------------------------------------------------------


def test_tagging_predicts_labels_with_confidences_and_stores_nothing(index_dir, embedder, small_tagger):
    from api import create_app

    recommender = Recommender(index_dir, embedder, small_tagger, today=lambda: dt.date(2026, 1, 1))
    client = create_app({"RECOMMENDER": recommender}).test_client()
    untagged = asset_json("draft-1", title="vendor due diligence", segments=[], stages=[], roles=[])
    expected = recommender.tag([Asset.model_validate(untagged)])[0]

    response = client.post("/v1/tag", json={"assets": [untagged]})

    assert response.status_code == 200
    assert response.get_json() == {"labels": [{"id": "draft-1", **expected.model_dump(mode="json")}]}
    assert response.get_json()["labels"][0]["stages"]["source"] == "predicted"
    assert client.get("/v1/assets/draft-1").status_code == 404


def test_tagging_keeps_curated_labels(api_client):
    curated = asset_json("draft-1", segments=["smb"], stages=["retention"], roles=["owner"])

    labels = api_client.post("/v1/tag", json={"assets": [curated]}).get_json()["labels"][0]

    assert (labels["segments"]["labels"], labels["stages"]["labels"], labels["roles"]["labels"]) == (
        ["smb"],
        ["retention"],
        ["owner"],
    )
    assert labels["stages"]["source"] == "curated"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"assets": []}, ["assets"]),
        (
            {"assets": [{"id": "draft-1", "title": "only a title"}]},
            ["assets[0].asset_type", "assets[0].language", "assets[0].url"],
        ),
        ({"assets": [asset_json(f"d-{i}") for i in range(101)]}, ["assets"]),
        ({"asset": {}}, ["assets", "asset"]),
    ],
    ids=["empty", "incomplete-asset", "over-100", "unknown-field"],
)
def test_an_invalid_tagging_request_gets_422_naming_the_fields(api_client, body, fields):
    response = api_client.post("/v1/tag", json=body)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == fields
