"""`content_library.urls`: one page's address however a browser or a campaign link writes it."""

from __future__ import annotations

import pytest

from content_library.urls import is_url, url_key


@pytest.mark.parametrize(
    "written",
    [
        "https://example.com/resources/sso-guide",
        "http://example.com/resources/sso-guide",
        "https://www.example.com/resources/sso-guide",
        "https://EXAMPLE.com/resources/sso-guide/",
        "https://example.com:443/resources/sso-guide",
        "https://example.com/resources/sso-guide#chapter-2",
        "https://example.com/resources/sso-guide?utm_source=newsletter&utm_campaign=q3&gclid=abc",
        "  https://example.com/resources/sso-guide  ",
    ],
)
def test_ways_of_writing_one_page_share_its_key(written: str):
    assert url_key(written) == "example.com/resources/sso-guide"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://example.com/resources/sso-guide", "https://example.com/resources/SSO-guide"),
        ("https://example.com/post?p=1", "https://example.com/post?p=2"),
        ("https://example.com/a", "https://example.org/a"),
        ("https://example.com/a", "https://example.com:8443/a"),
        ("https://example.com/de/a", "https://example.com/a"),
    ],
)
def test_addresses_of_different_pages_keep_different_keys(one: str, other: str):
    assert url_key(one) != url_key(other)


def test_query_parameters_that_name_the_page_are_kept_in_one_order_and_escapes_are_read():
    assert url_key("https://example.com/%C3%BCber?b=2&utm_medium=email&a=1") == "example.com/über?a=1&b=2"
    assert url_key("https://example.com/über?a=1&b=2") == "example.com/über?a=1&b=2"


@pytest.mark.parametrize(
    ("text", "expected"), [("https://example.com/a", True), ("HTTP://example.com", True), ("ledgerly-0046", False)]
)
def test_a_reference_is_a_url_when_it_starts_with_http_or_https(text: str, expected: bool):
    assert is_url(text) is expected


@pytest.mark.parametrize("written", ["hTtPS://]", "https://example.com:port/a", "https://[::1/a"])
def test_an_address_the_standard_library_cannot_split_still_has_a_key(written: str):
    assert url_key(written) == written.lower()
