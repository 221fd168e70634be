"""Health, readiness, metrics, hot reload of a rebuilt index, the pages, and the serving command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from conftest import make_asset, write_jsonl
from threadpoolctl import threadpool_info, threadpool_limits

from api import create_app, serve_command
from api.serving import GUNICORN_CONF
from recommender import Recommender
from recommender.build import build_index


def test_healthz_answers_alive(api_client):
    response = api_client.get("/healthz")

    assert (response.status_code, response.get_json()) == (200, {"status": "alive"})


def test_readyz_names_the_served_version_and_its_size(api_client, recommender: Recommender):
    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "index_version": recommender.version, "asset_count": 12}


def test_metrics_count_requests_per_route_and_status_and_describe_the_index(api_client, recommender: Recommender):
    api_client.post("/v1/recommendations", json={"segment": "smb"})
    api_client.post("/v1/recommendations", json={"segment": "smb"})
    api_client.post("/v1/recommendations", json={"segment": "nobody"})

    response = api_client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    lines = set(response.get_data(as_text=True).splitlines())
    assert 'recommender_http_requests_total{method="POST",route="/v1/recommendations",status="200"} 2.0' in lines
    assert 'recommender_http_requests_total{method="POST",route="/v1/recommendations",status="422"} 1.0' in lines
    assert (
        'recommender_http_request_duration_seconds_count{method="POST",route="/v1/recommendations",status="200"} 2.0'
        in lines
    )
    assert "recommender_index_assets 12.0" in lines
    assert f'recommender_index_version_info{{version="{recommender.version}"}} 1.0' in lines


def test_two_apps_in_one_process_keep_their_metrics_apart(api_client, recommender: Recommender):
    other = create_app({"RECOMMENDER": recommender}).test_client()
    api_client.get("/healthz")

    text = other.get("/metrics").get_data(as_text=True)

    assert 'route="/healthz"' not in text


def test_a_rebuilt_index_is_served_at_the_next_request_without_restart(
    api_client, recommender: Recommender, tmp_path: Path, small_library, embedder
):
    old = recommender.version
    extra = make_asset("rebuilt-1", title="Procurement terms checklist", stages=["decision"], roles=["procurement"])
    library = write_jsonl(tmp_path / "rebuilt.jsonl", [*small_library, extra])

    manifest = build_index([library], recommender.store.root, embedder, tagger=None).manifest

    data = api_client.post("/v1/recommendations", json={"segment": "enterprise", "k": 100}).get_json()
    assert manifest.version != old
    assert data["index_version"] == manifest.version
    assert "rebuilt-1" in [item["id"] for item in data["items"]]
    assert api_client.get("/readyz").get_json()["asset_count"] == 13


def test_a_write_by_another_process_is_seen_at_the_next_request(api_client, index_dir, embedder):
    other_process = Recommender(index_dir, embedder, today=lambda: dt.date(2026, 1, 1))

    other_process.upsert([make_asset("elsewhere-1")])

    assert api_client.get("/v1/assets/elsewhere-1").status_code == 200


def test_an_unusable_index_at_start_up_fails_loudly(tmp_path: Path):
    from recommender import IndexNotFound

    with pytest.raises(IndexNotFound, match="build one with"):
        create_app({"INDEX_DIR": str(tmp_path / "nothing")})


def test_a_forked_worker_opens_the_index_again_and_keeps_serving(api_app, monkeypatch):
    import os

    from api import engine

    with api_app.app_context():
        before = engine.current()
        monkeypatch.setattr(os, "getpid", lambda: -1)
        after = engine.current()

    assert after is not before
    assert after.version == before.version
    assert after.embedder is before.embedder


# -- pages -------------------------------------------------------------------------------------------


def test_the_playground_page_carries_the_vocabulary_and_loads_only_its_own_files(api_client, recommender):
    response = api_client.get("/")

    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
    html = response.get_data(as_text=True)
    island = html.split('<script type="application/json" id="vocabulary">', 1)[1].split("</script>", 1)[0]
    vocabulary = json.loads(island)
    assert vocabulary["signals"] == list(recommender.config.stage_signals.events)
    assert vocabulary["segments"] == ["enterprise", "smb"]
    assert '<script src="/static/playground.js">' in html


def test_the_docs_page_renders_the_openapi_document(api_client):
    with api_client.get("/docs") as response:
        assert response.status_code == 200
        assert response.content_type == "text/html; charset=utf-8"
        assert '<script src="/static/docs.js">' in response.get_data(as_text=True)


@pytest.mark.parametrize("name", ["playground.js", "playground.css", "docs.js", "docs.css"])
def test_the_pages_files_are_served(api_client, name):
    with api_client.get(f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.get_data()


# -- serving -----------------------------------------------------------------------------------------


def test_the_serve_command_runs_gunicorn_with_the_projects_settings(tmp_path: Path):
    argv = serve_command(tmp_path / "index", host="0.0.0.0", port=9000, workers=3, threads=8)

    assert argv == [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        "0.0.0.0:9000",
        "--workers",
        "3",
        "--threads",
        "8",
        "--env",
        f"RECOMMENDER_INDEX_DIR={(tmp_path / 'index').resolve()}",
        "api:create_app()",
    ]


def test_the_serve_command_brackets_an_ipv6_host(tmp_path: Path):
    assert "[::1]:8000" in serve_command(tmp_path, host="::1", port=8000)


def test_the_api_runs_numpy_blas_on_one_thread(recommender: Recommender):
    # Set wider first: the setting is per process, and an earlier app may have narrowed it already.
    threadpool_limits(2, user_api="blas")

    create_app({"RECOMMENDER": recommender})

    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
