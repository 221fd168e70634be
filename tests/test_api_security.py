"""Access rules of the API: API keys on writes, CORS, body limits, request ids, errors and logs without secrets."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
from conftest import API_ORIGIN, API_READ_KEY, API_WRITE_KEY, make_asset

from api import create_app, keys
from api.auth import hash_key, parse_keys
from api.cors import parse_origins
from api.request_log import JsonFormatter
from recommender import ConfigError, Recommender

WRITES = [
    ("PUT", "/v1/assets/new-1", make_asset("new-1").model_dump(mode="json")),
    ("DELETE", "/v1/assets/ent-dec-2", None),
    ("POST", "/v1/assets:bulk", {"assets": [make_asset("new-1").model_dump(mode="json")]}),
]


# -- API keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=["put", "delete", "bulk"])
@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer", 401),
        (f"Basic {API_WRITE_KEY}", 401),
        ("Bearer not-a-configured-key", 401),
        (f"Bearer {API_WRITE_KEY}x", 401),
        (f"Bearer {API_READ_KEY}", 403),
        (f"Bearer {API_WRITE_KEY}", None),
    ],
    ids=["missing", "empty", "no-token", "basic", "unknown", "near-miss", "read-only", "write"],
)
def test_writes_need_a_valid_key_with_the_write_scope(api_client, method, path, body, authorization, status):
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = api_client.open(path, method=method, json=body, headers=headers)

    if status is None:
        assert response.status_code in (200, 204)
        return
    assert response.status_code == status
    assert response.get_json()["error"]["status"] == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="recommender"'


def test_a_refused_write_changes_nothing(api_client):
    api_client.delete("/v1/assets/ent-dec-2", headers={"Authorization": f"Bearer {API_READ_KEY}"})

    assert api_client.get("/v1/assets/ent-dec-2").status_code == 200


def test_without_configured_keys_every_write_is_refused(recommender: Recommender):
    client = create_app({"RECOMMENDER": recommender}).test_client()

    response = client.delete("/v1/assets/ent-dec-2", headers={"Authorization": f"Bearer {API_WRITE_KEY}"})

    assert response.status_code == 401


def test_the_key_is_checked_before_the_body(api_client):
    response = api_client.post("/v1/assets:bulk", data=b"not json", content_type="application/json")

    assert response.status_code == 401


@pytest.mark.parametrize("route", ["/v1/recommendations", "/v1/sequences", "/v1/tag"])
def test_reads_need_no_key(api_client, route):
    response = api_client.post(route, json={})

    assert response.status_code == 422


def test_keys_are_configured_as_hashes_with_scopes():
    keys = parse_keys(f"{hash_key('a')}:write,read {hash_key('b').upper().replace('SHA256', 'sha256')}:read")

    assert [sorted(k.scopes) for k in keys] == [["read", "write"], ["read"]]


@pytest.mark.parametrize(
    "entry",
    [
        "my-plain-key",
        "sha256:abc:write",
        f"{hash_key('a')}",
        f"{hash_key('a')}:admin",
        f"md5:{'0' * 64}:write",
    ],
    ids=["plain-key", "short-hash", "no-scopes", "unknown-scope", "other-algorithm"],
)
def test_a_key_entry_that_is_not_a_hash_with_scopes_fails_at_start_up(recommender: Recommender, entry):
    with pytest.raises(ConfigError, match="API key entry 1"):
        create_app({"RECOMMENDER": recommender, "API_KEYS": [entry]})


def test_keys_never_reach_the_logs_or_the_answers(api_client, caplog):
    caplog.set_level(logging.DEBUG)
    presented = ["Bearer wrong-key-zzz", f"Bearer {API_READ_KEY}", f"Bearer {API_WRITE_KEY}"]

    bodies = [
        api_client.put("/v1/assets/new-1", json={"title": 1}, headers={"Authorization": p}).get_data(as_text=True)
        for p in presented
    ]

    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert caplog.records
    for secret in ("wrong-key-zzz", API_READ_KEY, API_WRITE_KEY, hash_key(API_WRITE_KEY)[7:]):
        assert secret not in logged
        assert all(secret not in body for body in bodies)


def test_the_key_tool_makes_a_key_and_the_entry_that_accepts_it():
    made = subprocess.run([sys.executable, "-m", "api.keys"], capture_output=True, text=True, check=True).stdout
    lines = dict(line.split(":", 1) for line in made.splitlines())
    key, entry = lines["key"].strip(), lines["entry"].strip()

    assert entry == f"{hash_key(key)}:write"
    assert len(key) >= 40
    assert parse_keys([entry])[0].scopes == {"write"}


def test_the_key_tool_hashes_a_key_read_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("my-existing-key\n"))

    assert keys.main(["-", "--scopes", "write,read"]) == 0
    assert capsys.readouterr().out == f"{hash_key('my-existing-key')}:write,read\n"


def test_the_key_tool_refuses_a_key_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        keys.main(["my-key"])

    assert exit_.value.code == 2
    assert "shell history" in capsys.readouterr().err


# -- CORS --------------------------------------------------------------------------------------------


def test_an_allowed_origin_is_echoed(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb"}, headers={"Origin": API_ORIGIN})

    assert response.headers["Access-Control-Allow-Origin"] == API_ORIGIN
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-ID"
    assert response.headers["Vary"] == "Origin"


def test_another_origin_gets_no_cors_header(api_client):
    response = api_client.post("/v1/recommendations", json={"segment": "smb"}, headers={"Origin": "https://evil.test"})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_preflight_from_an_allowed_origin_lists_methods_and_headers(api_client):
    response = api_client.options(
        "/v1/assets/ent-dec-2",
        headers={"Origin": API_ORIGIN, "Access-Control-Request-Method": "PUT"},
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == API_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Request-ID"
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_a_preflight_from_another_origin_is_refused(api_client):
    response = api_client.options(
        "/v1/recommendations", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
    )

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_is_allowed_by_default(recommender: Recommender):
    client = create_app({"RECOMMENDER": recommender}).test_client()

    response = client.post("/v1/recommendations", json={"segment": "smb"}, headers={"Origin": API_ORIGIN})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_origins_are_configured_as_exact_origins():
    assert parse_origins("https://www.example.com http://localhost:8080/") == {
        "https://www.example.com",
        "http://localhost:8080",
    }


@pytest.mark.parametrize("origin", ["*", "www.example.com", "https://example.com/path", "https://*.example.com"])
def test_an_origin_entry_that_is_not_an_origin_fails_at_start_up(recommender: Recommender, origin):
    with pytest.raises(ConfigError, match="is not an origin"):
        create_app({"RECOMMENDER": recommender, "CORS_ORIGINS": [origin]})


# -- limits, request ids, errors and logs ------------------------------------------------------------


def test_a_body_over_the_limit_gets_413(recommender: Recommender):
    client = create_app({"RECOMMENDER": recommender, "MAX_CONTENT_LENGTH": 1000}).test_client()

    response = client.post("/v1/recommendations", json={"segment": "smb", "query": "x" * 1000})

    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "status": 413,
        "message": "the request body is larger than the limit of 1000 bytes",
    }


def test_the_body_limit_is_configured_from_the_environment(recommender: Recommender, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_MAX_CONTENT_LENGTH", "2000")

    app = create_app({"RECOMMENDER": recommender})

    assert app.config["MAX_CONTENT_LENGTH"] == 2000


def test_every_answer_carries_a_new_request_id(api_client):
    ids = {api_client.get(path).headers["X-Request-ID"] for path in ["/healthz", "/healthz", "/nowhere"]}

    assert len(ids) == 3
    assert all(len(i) == 32 for i in ids)


def test_a_sane_incoming_request_id_is_kept_and_quoted_in_errors(api_client):
    response = api_client.get("/v1/assets/nothing", headers={"X-Request-ID": "req-42.a:b_c"})

    assert response.headers["X-Request-ID"] == "req-42.a:b_c"
    assert response.get_json()["request_id"] == "req-42.a:b_c"


@pytest.mark.parametrize("incoming", ["x" * 129, "two words", "<script>", ""])
def test_an_insane_incoming_request_id_is_replaced(api_client, incoming):
    response = api_client.get("/healthz", headers={"X-Request-ID": incoming})

    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_an_unknown_route_and_a_wrong_method_get_json_errors(api_client):
    missing = api_client.get("/v2/recommendations")
    wrong = api_client.get("/v1/recommendations")

    assert (missing.status_code, missing.get_json()["error"]["status"]) == (404, 404)
    assert (wrong.status_code, wrong.get_json()["error"]["status"]) == (405, 405)
    assert wrong.headers["Allow"] == "OPTIONS, POST"


def test_a_server_fault_gets_500_without_details_and_is_logged_with_the_request_id(
    api_client, recommender: Recommender, monkeypatch, caplog
):
    def broken(request):
        raise RuntimeError("secret detail of /srv/index/versions")

    monkeypatch.setattr(recommender, "recommend", broken)

    response = api_client.post("/v1/recommendations", json={"segment": "smb"}, headers={"X-Request-ID": "fault-1"})

    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"status": 500, "message": "internal error; quote the request id when reporting it"},
        "request_id": "fault-1",
    }
    fault = next(r for r in caplog.records if r.exc_info)
    assert "fault-1" in fault.getMessage()
    assert "secret detail" in JsonFormatter().format(fault)


def test_each_request_is_logged_as_one_json_line_without_query_or_headers(api_client, caplog):
    caplog.set_level(logging.INFO, logger="api.access")

    api_client.get(
        "/v1/assets?segment=smb&limit=2",
        headers={"X-Request-ID": "log-1", "Authorization": f"Bearer {API_WRITE_KEY}", "Cookie": "session=abc"},
    )

    [record] = [r for r in caplog.records if r.name == "api.access"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry == {
        "time": entry["time"],
        "level": "info",
        "logger": "api.access",
        "message": "request",
        "method": "GET",
        "route": "/v1/assets",
        "status": 200,
        "duration_ms": entry["duration_ms"],
        "request_id": "log-1",
    }
    assert "segment=smb" not in line and "session=abc" not in line


def test_responses_say_not_to_sniff_their_type(api_client):
    assert api_client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"
