"""Access rules tests/test_api_security.py does not already pin, in process and through a real gunicorn server.

In process: every route that changes data needs the write scope (found from the URL map, so a new
route cannot slip through), every configured key is compared in constant time, and CORS matches
whole origins only. Through gunicorn, as a marketing site's traffic arrives: body limits with and
without a Content-Length, request line and header limits, CORS from the environment, and no key in
the log whatever a client sends.
"""

from __future__ import annotations

import hmac
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import (
    API_ORIGIN,
    API_READ_KEY,
    API_WRITE_KEY,
    SERVER_KEY,
    LiveServer,
    build_with_cli,
    live_server,
    make_asset,
    write_jsonl,
)

import api.auth
from api.auth import hash_key

#: Routes that take a body but only read: what any visitor's browser may call.
READ_ONLY_POSTS = {
    "/v1/recommendations",
    "/v1/recommendations/batch",
    "/v1/sequences",
    "/v1/sequences/batch",
    "/v1/tag",
}


# -- keys --------------------------------------------------------------------------------------------


def changing_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route that may change data: PUT, PATCH, DELETE, and POST except the reads."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            if not (method == "POST" and rule.rule in READ_ONLY_POSTS):
                out.append((method, rule.rule.replace("<asset_id>", "ent-dec-2")))
    return out


def test_the_routes_that_change_data_are_the_asset_writes(api_app):
    assert sorted(changing_routes(api_app)) == [
        ("DELETE", "/v1/assets/ent-dec-2"),
        ("POST", "/v1/assets:bulk"),
        ("PUT", "/v1/assets/ent-dec-2"),
    ]


@pytest.mark.parametrize("authorization", [None, f"Bearer {API_READ_KEY}"], ids=["no-key", "read-key"])
def test_every_route_that_changes_data_refuses_a_request_without_the_write_scope(api_app, authorization):
    client = api_app.test_client()
    headers = {"Authorization": authorization} if authorization else {}

    statuses = {
        (method, path): client.open(path, method=method, json={}, headers=headers).status_code
        for method, path in changing_routes(api_app)
    }

    assert set(statuses.values()) == ({401} if authorization is None else {403})
    assert client.get("/v1/assets/ent-dec-2").status_code == 200


@pytest.mark.parametrize("presented", [API_WRITE_KEY, API_READ_KEY, "not-a-key"], ids=["first", "second", "none"])
def test_every_configured_key_is_compared_in_constant_time_whichever_matches(api_client, monkeypatch, presented):
    compared = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(api.auth, "hmac", SimpleNamespace(compare_digest=compare_digest))

    api_client.delete("/v1/assets/no-such-asset", headers={"Authorization": f"Bearer {presented}"})

    configured = [bytes.fromhex(hash_key(key)[7:]) for key in (API_WRITE_KEY, API_READ_KEY)]
    assert compared == configured


# -- CORS --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://www.example.com.evil.test",
        "https://evil-www.example.com",
        "https://evil.test/https://www.example.com",
        "http://www.example.com",
        "https://www.example.com:8443",
        "https://user@www.example.com",
        "null",
        "https://www.example.co",
    ],
    ids=["suffix", "prefix", "path", "other-scheme", "other-port", "userinfo", "null", "shorter"],
)
def test_an_origin_that_only_resembles_an_allowed_one_is_refused(api_client, origin):
    simple = api_client.post("/v1/recommendations", json={"segment": "smb"}, headers={"Origin": origin})
    preflight = api_client.options(
        "/v1/assets/ent-dec-2", headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"}
    )

    assert "Access-Control-Allow-Origin" not in simple.headers
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_an_allowed_origin_in_other_letter_case_is_the_same_origin(api_client):
    shouted = API_ORIGIN.upper().replace("HTTPS", "https")

    response = api_client.post("/v1/recommendations", json={"segment": "smb"}, headers={"Origin": shouted})

    assert response.headers["Access-Control-Allow-Origin"] == shouted


def test_cross_origin_requests_never_carry_credentials(api_client):
    response = api_client.options(
        "/v1/assets/ent-dec-2", headers={"Origin": API_ORIGIN, "Access-Control-Request-Method": "PUT"}
    )

    assert response.status_code == 204
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_answer_to_a_refused_origin_still_varies_by_origin_for_caches(api_client):
    response = api_client.get("/v1/assets/ent-dec-2", headers={"Origin": "https://evil.test"})

    assert response.headers["Vary"] == "Origin"


# -- through a real server ---------------------------------------------------------------------------

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("access")
    library = [make_asset(f"asset-{i}", title=f"Procurement terms explained {i}") for i in range(8)]
    build_with_cli(write_jsonl(folder / "library.jsonl", library), folder / "index")
    settings = {"RECOMMENDER_MAX_CONTENT_LENGTH": str(BODY_LIMIT), "RECOMMENDER_CORS_ORIGINS": API_ORIGIN}
    with live_server(folder / "index", folder / "server.log", workers=2, threads=2, **settings) as running:
        yield running


def exchange(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes as one HTTP/1.1 request; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Connection: close"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_a_body_over_the_configured_limit_gets_413_with_or_without_a_length(server: LiveServer):
    body = json.dumps({"segment": "smb", "query": "x" * BODY_LIMIT}).encode()

    declared = exchange(server, post("/v1/recommendations", body, f"Content-Length: {len(body)}"))
    streamed = exchange(server, post("/v1/recommendations", chunked(body), "Transfer-Encoding: chunked"))

    for status, headers, answer in (declared, streamed):
        assert status == 413
        assert headers["content-type"] == "application/json"
        assert (
            json.loads(answer)["error"]["message"] == f"the request body is larger than the limit of {BODY_LIMIT} bytes"
        )


def test_a_chunked_body_within_the_limit_is_answered(server: LiveServer):
    body = json.dumps({"segment": "smb", "k": 2}).encode()

    status, _, answer = exchange(server, post("/v1/recommendations", chunked(body, 7), "Transfer-Encoding: chunked"))

    assert status == 200
    assert len(json.loads(answer)["items"]) == 2


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"GET /v1/assets/" + b"x" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 9000 + b"\r\n\r\n", 431),
        (
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(101))
            + b"\r\n",
            431,
        ),
        (b"NOT-HTTP\r\n\r\n", 400),
    ],
    ids=["request-line-5000", "header-9000", "101-headers", "garbage"],
)
def test_a_request_over_the_servers_line_or_header_limits_is_refused_and_the_server_keeps_serving(
    server: LiveServer, request_bytes: bytes, expected: int
):
    # gunicorn refuses these before the app sees them (api/gunicorn_conf.py), in plain text.
    status, _, _ = exchange(server, request_bytes)

    assert status == expected
    assert server.call("GET", "/healthz")[0] == 200


def test_cors_origins_come_from_the_environment(server: LiveServer):
    allowed = exchange(
        server, post("/v1/recommendations", b'{"segment": "smb"}', "Content-Length: 18", f"Origin: {API_ORIGIN}")
    )
    other = exchange(
        server, post("/v1/recommendations", b'{"segment": "smb"}', "Content-Length: 18", "Origin: https://evil.test")
    )

    assert allowed[1]["access-control-allow-origin"] == API_ORIGIN
    assert "access-control-allow-origin" not in other[1]


def test_no_key_reaches_the_log_whatever_a_client_sends(server: LiveServer, tmp_path: Path):
    asset = make_asset("asset-new").model_dump(mode="json")
    near_miss = SERVER_KEY[:-1] + "x"
    sent = [
        server.call("PUT", "/v1/assets/asset-new", asset, key=SERVER_KEY),
        server.call("PUT", "/v1/assets/asset-new", asset, key=near_miss),
        server.call("PUT", "/v1/assets/asset-new", {"title": SERVER_KEY[:5]}, key=SERVER_KEY),
        server.call("DELETE", f"/v1/assets/{SERVER_KEY}", key=SERVER_KEY),
        server.call("GET", f"/v1/assets?cursor={SERVER_KEY}"),
    ]
    bare = exchange(server, post("/v1/assets:bulk", b"{}", "Content-Length: 2", f"Authorization: {SERVER_KEY}"))

    assert [status for status, _ in sent] == [200, 401, 422, 404, 200]
    assert bare[0] == 401
    log = server.log_text()
    for secret in (SERVER_KEY, near_miss, hash_key(SERVER_KEY)[7:]):
        assert secret not in log
    assert all(line.startswith("{") for line in log.splitlines())
