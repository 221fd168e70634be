"""Languages as content exports, browsers and people write them, read as ISO 639-1 codes; and the
language a text is written in, for records that do not say.

Every language with a two-letter code counts, under any of the names pycountry knows for it: the
code itself or a tag (`de`, `de-DE`, `de_DE`, `zh-Hant-TW`), its three-letter codes (`deu`, `ger`),
a withdrawn code older systems still write (`in`), its English name (`German`) and its name in
itself (`Deutsch`, `Bahasa Indonesia`). A browser's Accept-Language header names several; its
`preferred_language` is the one the visitor ranks highest.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: A language tag as browsers, CMS exports and locales write it: `de`, `de-DE`, `de_DE`, `zh-Hant-TW`.
_LANGUAGE_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
#: Codes ISO 639 withdrew that older systems still write (Java's Locale says "in" for Indonesian).
_WITHDRAWN = {"in": "id", "iw": "he", "ji": "yi"}
#: One entry of an Accept-Language header: a tag (or *) and an optional weight, `de-DE;q=0.9`.
_ACCEPTED = re.compile(r"^\s*([A-Za-z0-9_*-]+)\s*(?:;\s*q\s*=\s*([0-9.]+)\s*)?$")
#: A parenthesised qualifier closing a name: "Modern Greek (1453-)", "English (United States)".
_QUALIFIER = re.compile(r"\s*\(.*\)\s*$")
#: py3langid reads this many characters of a text: a title and the start of a body settle it.
_DETECT_CHARS = 2000


class LanguageError(ValueError):
    """A value that names no language with an ISO 639-1 code."""


def language_code(value: str) -> str:
    """The ISO 639-1 code `value` names (see the module's docstring for what counts)."""
    text = value.strip()
    tag = _LANGUAGE_TAG.match(text)
    code = _codes().get(tag.group(1).lower()) if tag else None
    if code is None:
        # "English (United States)", as some locale pickers write it, is English.
        code = _names().get(_name_key(text)) or _names().get(_name_key(_QUALIFIER.sub("", text)))
    if code is None:
        raise LanguageError(
            f"'{value}' is not a language: write its ISO 639-1 code (two letters, such as en, de, id; a tag "
            "such as de-DE counts as its language) or its name (German, Deutsch)"
        )
    return code


def is_language_code(code: str) -> bool:
    return code in _iso_639_1()


def preferred_language(value: str) -> str:
    """The language a visitor prefers: `value` itself, or the highest-weighted language of an
    Accept-Language header (`de-CH, de;q=0.9, en;q=0.8` is de); entries naming no language are passed over."""
    if "," not in value and ";" not in value:
        return language_code(value)
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(value.split(",")):
        found = _ACCEPTED.match(entry)
        if found is None or found.group(1) == "*":
            continue
        try:
            weight = float(found.group(2)) if found.group(2) is not None else 1.0
            ranked.append((-weight, position, language_code(found.group(1))))
        except ValueError:
            continue
    wanted = [entry for entry in ranked if entry[0] < 0]
    if not wanted:
        raise LanguageError(
            f"'{value}' names no language a visitor accepts (an Accept-Language header reads 'de-DE, en;q=0.8')"
        )
    return min(wanted)[2]


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the language `text` is written in (py3langid)."""
    return str(_identifier().classify(text[:_DETECT_CHARS])[0])


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    # The model also knows ISO 639-3 codes and "zxx"; an asset's language is ISO 639-1.
    identifier.set_languages([code for code in identifier.nb_classes if is_language_code(code)])
    return identifier


@lru_cache(maxsize=1)
def _iso_639_1() -> frozenset[str]:
    return frozenset(_codes().values())


@lru_cache(maxsize=1)
def _codes() -> dict[str, str]:
    """Every code that names a language with an ISO 639-1 code, mapped to it: itself, its ISO 639-2/3
    code (`deu`) and its bibliographic one (`ger`), and the withdrawn codes."""
    import pycountry

    out = dict(_WITHDRAWN)
    for lang in pycountry.languages:
        if hasattr(lang, "alpha_2"):
            for attribute in ("alpha_2", "alpha_3", "bibliographic"):
                if hasattr(lang, attribute):
                    out[getattr(lang, attribute)] = lang.alpha_2
    return out


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """The English name and the name in itself of every language with an ISO 639-1 code, mapped to
    it. Built on the first name asked for (pycountry's translations take a third of a second)."""
    import gettext

    import pycountry

    out: dict[str, str] = {}
    for lang in pycountry.languages:
        code = getattr(lang, "alpha_2", None)
        if code is None:
            continue
        names = [lang.name, getattr(lang, "common_name", lang.name)]
        try:
            own = gettext.translation("iso639-3", pycountry.LOCALES_DIR, languages=[code])
            names.append(own.gettext(lang.name))
        except FileNotFoundError:
            pass  # no translation of the names into this language
        for name in names:
            # "Modern Greek (1453-)" is also "Modern Greek"; "中文; 汉语; 华语" is three names.
            for part in name.split(";"):
                for variant in (part, _QUALIFIER.sub("", part)):
                    out.setdefault(_name_key(variant), code)
    return out


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())
