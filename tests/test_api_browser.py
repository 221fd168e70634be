"""The playground in a real headless Chromium (Debian's), against a live server: a marketer's clicks."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from api import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture
def live_app(recommender):
    return create_app({"RECOMMENDER": recommender})


@pytest.fixture
def base_url(live_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(base_url + "/")
        yield page
        browser.close()


def test_a_marketer_gets_ranked_cards_for_a_buyer(page, live_app):
    page.select_option("#segment", "enterprise")
    page.select_option("#role", "finance")
    page.locator("#signals").get_by_label("demo", exact=True).check()
    page.locator("#signals").get_by_label("technical discussion", exact=True).check()
    page.fill("#query", "invoice approval")
    page.fill("#language", "en")
    page.fill("#k", "3")
    page.click("#recommend-button")
    page.wait_for_selector("#recommend-results .card >> nth=2")

    expected = (
        live_app.test_client()
        .post(
            "/v1/recommendations",
            json={
                "segment": "enterprise",
                "role": "finance",
                "signals": ["demo", "technical_discussion"],
                "query": "invoice approval",
                "language": "en",
                "k": 3,
                "explain": True,
            },
        )
        .get_json()
    )
    cards = page.locator("#recommend-results .card")
    assert cards.locator("h3").all_inner_texts() == [item["title"] for item in expected["items"]]
    assert cards.locator(".asset-type").all_inner_texts() == [
        item["asset_type"].replace("_", " ") for item in expected["items"]
    ]
    assert cards.locator(".language").all_inner_texts() == [item["language"] for item in expected["items"]]
    assert cards.nth(0).locator(".reason").count() == sum(1 for v in expected["items"][0]["reasons"].values() if v)
    assert page.inner_text("#recommend-status").startswith(
        "Stage decision (inferred from the signal technical_discussion)"
    )


def test_a_marketer_sees_what_to_show_beside_a_page_given_its_url(page, live_app):
    client = live_app.test_client()
    url = client.get("/v1/assets/ent-dec-1").get_json()["asset"]["url"]
    page.select_option("#segment", "enterprise")
    page.fill("#reading", url + "?utm_source=newsletter")
    page.fill("#k", "3")
    page.click("#recommend-button")
    page.wait_for_selector("#recommend-results .card >> nth=2")

    body = {"segment": "enterprise", "reading": "ent-dec-1", "k": 3, "explain": True}
    expected = client.post("/v1/recommendations", json=body).get_json()
    titles = page.locator("#recommend-results .card h3").all_inner_texts()
    assert titles == [item["title"] for item in expected["items"]]
    assert client.get("/v1/assets/ent-dec-1").get_json()["asset"]["title"] not in titles
    assert page.inner_text("#recommend-status").startswith(
        "Stage decision (the stage of the asset being read, ent-dec-1)"
    )


def test_a_marketer_previews_a_nurture_sequence(page, live_app):
    page.click("#tab-sequence")
    assert page.is_hidden("#panel-recommend")
    page.select_option("#seq-segment", "enterprise")
    page.select_option("#seq-stage", "awareness")
    page.fill("#seq-query", "invoices")
    page.fill("#seq-steps", "4")
    page.click("#sequence-button")
    page.wait_for_selector("#sequence-results .card >> nth=3")

    expected = (
        live_app.test_client()
        .post("/v1/sequences", json={"segment": "enterprise", "stage": "awareness", "query": "invoices", "steps": 4})
        .get_json()
    )
    cards = page.locator("#sequence-results .card")
    assert cards.locator(".step-label").all_text_contents() == [
        f"Email {s['step']} · {s['stage']}" for s in expected["steps"]
    ]
    assert cards.locator("h3").all_inner_texts() == [s["item"]["title"] for s in expected["steps"]]


def test_a_sequence_without_a_stage_starts_where_the_ticked_signals_point(page, live_app):
    page.click("#tab-sequence")
    page.select_option("#seq-segment", "smb")
    page.select_option("#seq-stage", "")
    page.locator("#seq-signals").get_by_label("pricing page view", exact=True).check()
    page.fill("#seq-steps", "2")
    page.click("#sequence-button")
    page.wait_for_selector("#sequence-results .card >> nth=1")

    cards = page.locator("#sequence-results .card")
    assert cards.locator(".step-label").all_text_contents() == ["Email 1 · decision", "Email 2 · retention"]
    assert page.inner_text("#sequence-status").startswith(
        "2 emails · first stage decision (inferred from the signal pricing_page_view)"
    )


def test_an_invalid_request_shows_the_field_and_the_problem(page):
    page.fill("#language", "xx")
    page.click("#recommend-button")
    page.wait_for_selector("#recommend-status.error li")

    assert page.inner_text("#recommend-status li") == (
        "language: 'xx' is not a language: write its ISO 639-1 code (two letters, such as en, de, id; a tag such as "
        "de-DE counts as its language) or its name (German, Deutsch)"
    )
    assert page.locator("#recommend-results .card").count() == 0


def test_the_reference_page_renders_every_operation(page, base_url, live_app):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    document = live_app.test_client().get("/openapi.json").get_json()

    page.goto(base_url + "/docs")
    page.wait_for_selector(".operation")

    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator(".operation").count() == operations
    assert page.locator("#recommend h3").text_content() == "post/v1/recommendationsAssets for one buyer"
    assert errors == []
