"""Languages as people, exports and browsers write them (content_library.languages)."""

from __future__ import annotations

import pytest

from content_library.languages import (
    LanguageError,
    _identifier,
    detect_language,
    is_language_code,
    language_code,
    preferred_language,
)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-CH, de;q=0.9, en;q=0.8", "de"),
        ("en;q=0.5, id", "id"),  # the weight, not the order, says which is preferred
        ("fr;q=0.8, de;q=0.8", "fr"),  # of equal weights the first
        ("*, de;q=0.5", "de"),  # the wildcard names no language
        ("xx, en;q=0.3", "en"),  # nor does an unknown tag
        ("de;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        ("id_ID", "id"),
    ],
)
def test_a_browsers_accept_language_header_names_its_preferred_language(header: str, language: str) -> None:
    assert preferred_language(header) == language


@pytest.mark.parametrize("header", ["*", "xx, yy", "de;q=0", ""])
def test_a_header_naming_no_wanted_language_is_refused(header: str) -> None:
    with pytest.raises(LanguageError, match=f"'{header}'"):
        preferred_language(header)


def test_an_asset_has_one_language_so_a_header_is_not_one() -> None:
    with pytest.raises(LanguageError, match="is not a language"):
        language_code("de, en;q=0.5")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Eingangsrechnungen werden automatisch erfasst, geprüft und zur Freigabe weitergeleitet.", "de"),
        ("Cara membayar tagihan pemasok lebih cepat dengan persetujuan otomatis.", "id"),
        ("Supplier invoices are captured, checked and routed for approval automatically.", "en"),
    ],
)
def test_the_language_of_a_text_is_read_from_it(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_language_detection_answers_only_iso_639_1_codes() -> None:
    assert all(is_language_code(code) for code in _identifier().nb_classes)
