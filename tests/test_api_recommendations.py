"""POST /v1/recommendations, /v1/recommendations/batch, /v1/sequences and /v1/sequences/batch through the Flask
test client."""

from __future__ import annotations

import pytest

from recommender import BuyerRequest, Recommender
from recommender.types import MAX_K

#: Stands for the configured buying signals (recommender/data/stage_signals.toml) in expectations.
SIGNALS = "<the configured signals>"
REQUEST_FIELDS = [
    *("segment", "role", "stage", "signals", "query", "language", "exclude", "reading", "asset_types", "k", "explain")
]


def test_recommendations_are_the_engines_ranking_with_the_documented_fields(api_client, recommender: Recommender):
    body = {"segment": "enterprise", "role": "finance", "stage": "decision", "query": "invoice approval", "k": 3}

    response = api_client.post("/v1/recommendations", json=body)

    assert response.status_code == 200
    data = response.get_json()
    expected = recommender.recommend(BuyerRequest(**body))
    assert [item["id"] for item in data["items"]] == [item.id for item in expected.items]
    assert data["stage"] == "decision"
    assert data["stage_source"] == {"kind": "given"}
    assert data["index_version"] == recommender.version
    first, asset = data["items"][0], expected.items[0].asset
    assert first == {
        "id": asset.id,
        "title": asset.title,
        "url": asset.url,
        "asset_type": asset.asset_type.value,
        "language": asset.language,
        "score": expected.items[0].score,
    }


def test_a_browsers_locale_counts_as_its_language(api_client):
    body = {"segment": "enterprise", "role": "finance", "stage": "consideration", "k": 5}

    as_locale = api_client.post("/v1/recommendations", json=body | {"language": "de-DE"})
    as_code = api_client.post("/v1/recommendations", json=body | {"language": "de"})

    assert as_locale.status_code == 200, as_locale.get_json()
    assert as_locale.get_json()["items"] == as_code.get_json()["items"]
    assert as_code.get_json()["items"][0]["language"] == "de"


@pytest.mark.parametrize("written", ["German", "de-CH, de;q=0.9, en;q=0.8", "en;q=0.5, de"])
def test_a_language_name_or_a_browsers_accept_language_header_counts_as_its_language(api_client, written):
    body = {"segment": "enterprise", "role": "finance", "stage": "consideration", "k": 5}

    as_written = api_client.post("/v1/recommendations", json=body | {"language": written})
    as_code = api_client.post("/v1/recommendations", json=body | {"language": "de"})

    assert as_written.status_code == 200, as_written.get_json()
    assert as_written.get_json()["items"] == as_code.get_json()["items"]


def test_explain_adds_reasons_that_sum_to_the_score(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb", "query": "pricing", "explain": True})

    items = response.get_json()["items"]
    assert items
    for item in items:
        assert sum(item["reasons"].values()) == pytest.approx(item["score"], abs=1e-5)


def test_the_stage_is_inferred_from_buying_signals_and_named(api_client):
    body = {"segment": "enterprise", "signals": ["demo", "technical_discussion"]}

    data = api_client.post("/v1/recommendations", json=body).get_json()

    assert data["stage"] == "decision"
    assert data["stage_source"] == {"kind": "signal", "signal": "technical_discussion"}


def test_excluded_assets_and_asset_types_are_respected(api_client):
    body = {"segment": "enterprise", "asset_types": ["case_study", "guide"], "exclude": ["ent-dec-1"], "k": 10}

    items = api_client.post("/v1/recommendations", json=body).get_json()["items"]

    assert {item["id"] for item in items} == {"ent-cons-2", "ent-ret-1"}


def test_the_asset_a_visitor_is_reading_is_the_engines_reading_and_never_shown(api_client, recommender: Recommender):
    body = {"segment": "enterprise", "stage": "decision", "reading": "ent-dec-1", "k": 5}

    response = api_client.post("/v1/recommendations", json=body)

    assert response.status_code == 200, response.get_json()
    returned = [item["id"] for item in response.get_json()["items"]]
    assert returned == [item.id for item in recommender.recommend(BuyerRequest(**body)).items]
    assert "ent-dec-1" not in returned


def test_a_site_may_name_the_page_being_read_and_the_pages_seen_by_url(api_client, small_library):
    urls = {asset.id: asset.url for asset in small_library}
    by_id = {"segment": "enterprise", "reading": "ent-dec-1", "exclude": ["ent-cons-2"], "k": 5}
    by_url = by_id | {"reading": urls["ent-dec-1"] + "?utm_source=newsletter", "exclude": [urls["ent-cons-2"] + "/"]}

    answer = api_client.post("/v1/recommendations", json=by_url)

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["items"] == api_client.post("/v1/recommendations", json=by_id).get_json()["items"]
    assert {"ent-dec-1", "ent-cons-2"}.isdisjoint(item["id"] for item in answer.get_json()["items"])


def test_reading_an_asset_not_in_the_index_gets_404_naming_the_field(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb", "reading": "no-such-asset"})

    assert response.status_code == 404
    assert response.get_json()["error"] == {
        "status": 404,
        "message": "reading names no asset in the index ('no-such-asset'); give an indexed asset's id or URL",
        "fields": [{"field": "reading", "problem": "no asset with this id or URL"}],
    }


def test_segment_role_stage_and_signals_may_be_written_as_a_crm_writes_them(api_client):
    written = {"segment": "Enterprise", "role": "End User", "signals": ["Technical Discussion"], "explain": True}
    canonical = {"segment": "enterprise", "role": "end_user", "signals": ["technical_discussion"], "explain": True}

    answer = api_client.post("/v1/recommendations", json=written)

    assert answer.status_code == 200
    assert answer.get_json() == api_client.post("/v1/recommendations", json=canonical).get_json()


def test_asset_types_may_be_written_as_exports_name_them(api_client):
    body = {"segment": "enterprise", "asset_types": ["Case Studies", "how-to"], "exclude": ["ent-dec-1"], "k": 10}

    items = api_client.post("/v1/recommendations", json=body).get_json()["items"]

    assert {item["id"] for item in items} == {"ent-cons-2", "ent-ret-1"}


def test_a_job_title_counts_as_the_committee_role_it_names(api_client):
    by_title = {"segment": "enterprise", "role": "Head of IT Security", "stage": "decision", "explain": True}

    answer = api_client.post("/v1/recommendations", json=by_title)

    assert answer.status_code == 200
    assert answer.get_json() == api_client.post("/v1/recommendations", json=by_title | {"role": "it"}).get_json()


def test_a_title_that_names_no_role_is_refused_saying_titles_are_read(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "enterprise", "role": "Senior Manager"})

    assert response.status_code == 422
    [field] = response.get_json()["error"]["fields"]
    assert field["field"] == "role"
    assert field["problem"].startswith(
        "not one of executive, finance, it, procurement, end_user, owner, nor a job title"
    )


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ({"segment": "mid-market"}, "segment", ["enterprise", "smb"]),
        ({"role": "owner"}, "segment", None),
        (
            {"segment": "smb", "role": "intern"},
            "role",
            ["executive", "finance", "it", "procurement", "end_user", "owner"],
        ),
        ({"segment": "smb", "stage": "purchase"}, "stage", ["awareness", "consideration", "decision", "retention"]),
        ({"segment": "smb", "k": 0}, "k", None),
        ({"segment": "smb", "k": MAX_K + 1}, "k", None),
        ({"segment": "smb", "k": 10**9}, "k", None),
        ({"segment": "smb", "k": "5"}, "k", None),
        ({"segment": "smb", "k": 5.5}, "k", None),
        ({"segment": "smb", "k": True}, "k", None),
        ({"segment": "smb", "explain": "yes"}, "explain", None),
        ({"segment": "smb", "query": "x" * 1001}, "query", None),
        ({"segment": "smb", "query": 42}, "query", None),
        ({"segment": "smb", "language": "englisch"}, "language", None),
        ({"segment": "smb", "signals": "demo"}, "signals", None),
        ({"segment": "smb", "signals": ["pricing_page"]}, "signals", SIGNALS),
        ({"segment": "smb", "exclude": [""]}, "exclude[0]", None),
        ({"segment": "smb", "persona": "owner"}, "persona", REQUEST_FIELDS),
        (
            {"segment": "smb", "asset_types": ["hologram"]},
            "asset_types[0]",
            [
                "whitepaper",
                "case_study",
                "webinar",
                "review",
                "blog_post",
                "ebook",
                "datasheet",
                "demo",
                "pricing",
                "roi_calculator",
                "comparison",
                "checklist",
                "guide",
                "report",
                "video",
            ],
        ),
        ([{"segment": "smb"}], "body", None),
        ({"segment": None}, "segment", ["enterprise", "smb"]),
    ],
)
def test_an_invalid_field_gets_422_naming_it_with_the_allowed_values(api_client, recommender, body, field, allowed):
    if allowed == SIGNALS:
        allowed = list(recommender.config.stage_signals.events)

    response = api_client.post("/v1/recommendations", json=body)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["status"] == 422
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["fields"][0]["problem"]
    assert error["fields"][0].get("allowed") == allowed


def test_an_integral_number_counts_as_an_integer_as_in_json_schema(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb", "k": 2.0})

    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 2


def test_a_huge_invalid_value_is_not_echoed_back_whole(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb", "language": "x" * 100_000})

    assert response.status_code == 422
    assert len(response.get_data()) < 2_000


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"segment": ', "application/json", 400),
        (b"", "application/json", 400),
        (b'{"segment": "\xff"}', "application/json", 400),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b'{"segment": "smb"}', "text/plain", 415),
        (b"segment=smb", "application/x-www-form-urlencoded", 415),
        (b'{"segment": "smb"}', None, 415),
    ],
    ids=["truncated", "empty", "invalid-utf8", "deeply-nested", "text-plain", "form", "no-content-type"],
)
def test_a_body_that_is_not_json_gets_a_4xx_json_error(api_client, data, content_type, status):
    headers = {"Content-Type": content_type} if content_type else {}

    response = api_client.post("/v1/recommendations", data=data, headers=headers)

    assert response.status_code == status
    assert response.get_json()["error"]["status"] == status


def test_json_with_a_charset_parameter_is_accepted(api_client):
    response = api_client.post(
        "/v1/recommendations", data=b'{"segment": "smb"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert response.status_code == 200


# -- batch -------------------------------------------------------------------------------------------


def test_a_batch_answers_each_request_in_order_as_a_single_request_would(api_client):
    requests = [
        {"id": "contact-1", "segment": "enterprise", "role": "it", "query": "single sign-on", "k": 2},
        {"id": "contact-2", "segment": "smb", "signals": ["pricing_page_view"], "k": 3},
        {"segment": "enterprise", "stage": "retention", "k": 1},
    ]

    response = api_client.post("/v1/recommendations/batch", json={"requests": requests})

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r.get("id") for r in results] == ["contact-1", "contact-2", None]
    for request, result in zip(requests, results, strict=True):
        single = {k: v for k, v in request.items() if k != "id"}
        assert result["result"] == api_client.post("/v1/recommendations", json=single).get_json()


def test_a_bad_request_in_a_batch_fails_alone_with_its_own_error(api_client, recommender: Recommender):
    requests = [
        {"id": "good-1", "segment": "smb", "k": 1},
        {"id": "bad-segment", "segment": "mid-market"},
        {"id": "bad-signal", "segment": "smb", "signals": ["pricing_page"]},
        "not an object",
        {"id": "good-2", "segment": "enterprise", "k": 1},
        {"id": "bad-reading", "segment": "smb", "reading": "no-such-asset"},
    ]

    results = api_client.post("/v1/recommendations/batch", json={"requests": requests}).get_json()["results"]

    assert [r.get("id") for r in results] == ["good-1", "bad-segment", "bad-signal", None, "good-2", "bad-reading"]
    assert [("result" in r, r.get("error", {}).get("status")) for r in results] == [
        (True, None),
        (False, 422),
        (False, 422),
        (False, 422),
        (True, None),
        (False, 404),
    ]
    assert results[5]["error"]["fields"][0]["field"] == "reading"
    assert results[1]["error"]["fields"][0]["field"] == "segment"
    assert results[2]["error"]["fields"][0] == {
        "field": "signals",
        "problem": results[2]["error"]["fields"][0]["problem"],
        "allowed": list(recommender.config.stage_signals.events),
    }
    assert results[3]["error"]["fields"][0]["field"] == "body"


def test_an_empty_batch_gets_an_empty_answer(api_client, recommender: Recommender):
    response = api_client.post("/v1/recommendations/batch", json={"requests": []})

    assert response.status_code == 200
    assert response.get_json() == {"results": [], "index_version": recommender.version}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requests": [{"segment": "smb"}] * 1001}, "requests"),
        ({"requests": {"segment": "smb"}}, "requests"),
        ({}, "requests"),
        ({"requests": [], "priority": 1}, "priority"),
    ],
    ids=["over-1000", "not-a-list", "missing", "unknown-field"],
)
def test_a_batch_envelope_that_is_invalid_fails_whole(api_client, body, field):
    response = api_client.post("/v1/recommendations/batch", json=body)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]


def test_a_batch_of_1000_is_answered(api_client):
    requests = [{"id": f"contact-{i}", "segment": ["smb", "enterprise"][i % 2], "k": 1} for i in range(1000)]

    results = api_client.post("/v1/recommendations/batch", json={"requests": requests}).get_json()["results"]

    assert [r["id"] for r in results] == [f"contact-{i}" for i in range(1000)]
    assert all(len(r["result"]["items"]) == 1 for r in results)


# -- sequences ---------------------------------------------------------------------------------------


def test_a_sequence_moves_down_the_funnel_without_repeating_an_asset(api_client, recommender: Recommender):
    body = {"segment": "enterprise", "role": "finance", "stage": "awareness", "query": "invoices", "steps": 6}

    response = api_client.post("/v1/sequences", json=body)

    assert response.status_code == 200
    data = response.get_json()
    steps = data["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert [s["stage"] for s in steps] == ["awareness"] * 2 + ["consideration"] * 2 + ["decision"] * 2
    ids = [s["item"]["id"] for s in steps]
    assert len(set(ids)) == len(ids)
    assert all(sum(s["item"]["reasons"].values()) == pytest.approx(s["item"]["score"], abs=1e-5) for s in steps)
    assert data["index_version"] == recommender.version


def test_a_sequence_without_a_stage_starts_where_the_signals_point(api_client):
    body = {"segment": "enterprise", "signals": ["site_visit", "meeting"], "steps": 3}

    data = api_client.post("/v1/sequences", json=body).get_json()

    assert (data["stage"], data["stage_source"]) == ("consideration", {"kind": "signal", "signal": "meeting"})
    assert [s["stage"] for s in data["steps"]] == ["consideration", "consideration", "decision"]


def test_a_sequence_reads_a_browsers_accept_language_header_as_a_recommendation_does(api_client):
    body = {"segment": "smb", "stage": "awareness", "steps": 2, "language": "de-CH, de;q=0.9, en;q=0.8"}

    response = api_client.post("/v1/sequences", json=body)

    assert response.status_code == 200
    assert response.get_json() == api_client.post("/v1/sequences", json=body | {"language": "de"}).get_json()
    assert response.get_json() != api_client.post("/v1/sequences", json=body | {"language": "en"}).get_json()


def test_a_sequence_after_a_read_asset_never_uses_it(api_client, small_library):
    body = {"segment": "enterprise", "stage": "awareness", "steps": len(small_library), "reading": "ent-dec-1"}

    steps = api_client.post("/v1/sequences", json=body).get_json()["steps"]

    assert {s["item"]["id"] for s in steps} == {a.id for a in small_library} - {"ent-dec-1"}


def test_a_sequence_after_an_asset_not_in_the_index_gets_404_naming_the_field(api_client):
    body = {"segment": "smb", "stage": "awareness", "steps": 3, "reading": "no-such-asset"}

    response = api_client.post("/v1/sequences", json=body)

    assert response.status_code == 404
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["reading"]


def test_a_sequence_is_shorter_when_the_library_runs_out(api_client, small_library):
    keep = {"smb-dec-1", "smb-dec-2"}
    exclude = [a.id for a in small_library if a.id not in keep]
    body = {"segment": "smb", "stage": "decision", "steps": 5, "exclude": exclude}

    steps = api_client.post("/v1/sequences", json=body).get_json()["steps"]

    assert {s["item"]["id"] for s in steps} == keep
    assert len(steps) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segment": "smb", "stage": "awareness", "steps": 0}, "steps"),
        ({"segment": "smb", "stage": "awareness", "steps": 13}, "steps"),
        ({"segment": "smb", "steps": 3, "k": 5}, "k"),
        ({"segment": "smb", "steps": 3, "stage": "someday"}, "stage"),
        ({"stage": "awareness", "steps": 3}, "segment"),
        ({"segment": "smb", "stage": "awareness"}, "steps"),
        ({"segment": "smb", "stage": "awareness", "steps": 3, "signals": ["webinar"]}, "signals"),
        ({"segment": "smb", "stage": "awareness", "steps": 3, "language": "zz"}, "language"),
    ],
)
def test_an_invalid_sequence_request_gets_422_naming_the_field(api_client, body, field):
    response = api_client.post("/v1/sequences", json=body)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]


# -- sequence batches --------------------------------------------------------------------------------


def test_a_sequence_batch_answers_each_contact_in_order_as_a_single_sequence_would(api_client):
    requests = [
        {"id": "contact-1", "segment": "enterprise", "role": "finance", "query": "invoices", "steps": 4},
        {"id": "contact-2", "segment": "smb", "signals": ["return_visit"], "steps": 2},
        {"segment": "enterprise", "stage": "decision", "steps": 3},
    ]

    response = api_client.post("/v1/sequences/batch", json={"requests": requests})

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r.get("id") for r in results] == ["contact-1", "contact-2", None]
    assert [len(r["result"]["steps"]) for r in results] == [4, 2, 3]
    for request, result in zip(requests, results, strict=True):
        single = {k: v for k, v in request.items() if k != "id"}
        assert result["result"] == api_client.post("/v1/sequences", json=single).get_json()


def test_a_bad_contact_in_a_sequence_batch_fails_alone_with_its_own_error(api_client):
    requests = [
        {"id": "good", "segment": "smb", "stage": "awareness", "steps": 2},
        {"id": "no-steps", "segment": "smb"},
        {"id": "with-k", "segment": "smb", "steps": 2, "k": 2},
        {"id": "bad-reading", "segment": "smb", "steps": 2, "reading": "no-such-asset"},
    ]

    results = api_client.post("/v1/sequences/batch", json={"requests": requests}).get_json()["results"]

    assert [(r.get("id"), "result" in r, r.get("error", {}).get("status")) for r in results] == [
        ("good", True, None),
        ("no-steps", False, 422),
        ("with-k", False, 422),
        ("bad-reading", False, 404),
    ]
    assert [r["error"]["fields"][0]["field"] for r in results[1:]] == ["steps", "k", "reading"]


def test_a_sequence_batch_of_more_than_100_contacts_fails_whole(api_client):
    body = {"requests": [{"segment": "smb", "steps": 1}] * 101}

    response = api_client.post("/v1/sequences/batch", json=body)

    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["requests"]
