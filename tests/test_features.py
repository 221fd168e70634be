"""Language numbers: stored in every index, so they must never move."""

from __future__ import annotations

from recommender.features import _NUMBERED, _numbered, language_code, language_name


def test_languages_keep_the_numbers_that_indexes_built_before_store():
    assert [language_code(code) for code in ("aa", "de", "en", "id", "zu")] == [0, 31, 36, 64, 183]
    assert language_name(36) == "en"


def test_a_code_a_later_pycountry_adds_is_numbered_after_the_others_and_none_moves():
    assert _numbered([*_NUMBERED, "zz", "ab"]) == (*_NUMBERED, "zz")


def test_a_code_a_later_pycountry_drops_keeps_its_number():
    assert _numbered([code for code in _NUMBERED if code != "sh"]) == _NUMBERED
