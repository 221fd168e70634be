"""The asset schema and the buyer vocabularies it uses (see ../shared/domain.md)."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from content_library.languages import language_code, preferred_language


class Segment(StrEnum):
    ENTERPRISE = "enterprise"
    SMB = "smb"


class Stage(StrEnum):
    """Buying stages, in funnel order: comparing members compares positions in the funnel."""

    AWARENESS = "awareness"
    CONSIDERATION = "consideration"
    DECISION = "decision"
    RETENTION = "retention"

    @property
    def position(self) -> int:
        return list(Stage).index(self)


class Role(StrEnum):
    EXECUTIVE = "executive"
    FINANCE = "finance"
    IT = "it"
    PROCUREMENT = "procurement"
    END_USER = "end_user"
    OWNER = "owner"


class AssetType(StrEnum):
    WHITEPAPER = "whitepaper"
    CASE_STUDY = "case_study"
    WEBINAR = "webinar"
    REVIEW = "review"
    BLOG_POST = "blog_post"
    EBOOK = "ebook"
    DATASHEET = "datasheet"
    DEMO = "demo"
    PRICING = "pricing"
    ROI_CALCULATOR = "roi_calculator"
    COMPARISON = "comparison"
    CHECKLIST = "checklist"
    GUIDE = "guide"
    REPORT = "report"
    VIDEO = "video"


#: The label fields a curator can set and the tagger predicts, with their vocabularies.
LABEL_FIELDS: dict[str, type[StrEnum]] = {"segments": Segment, "stages": Stage, "roles": Role}

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


#: Dates as exports write them, with or without a time after them: year first with dashes, slashes or
#: dots (`2025-03-01`, `2025/03/01`, `2025-03-01 10:00:00` from SQL) or none (`20250301`), day first with
#: dots as German spreadsheets write it (`01.03.2025`), or with the month's name in English, German or
#: Indonesian as sites and feeds show it (`March 1, 2025`, `1 March 2025`, `1. März 2025`, `1 Maret 2025`,
#: RSS's `Sat, 01 Mar 2025 10:15:00 GMT`). Day and month with slashes could be either way round: refused.
_YEAR_FIRST = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:[T ].*)?$")
_BASIC = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T.*)?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[T ,].*)?$")
_WEEKDAY = r"(?:[^\W\d_]+,?\s+)?"
_DAY_MONTH = re.compile(rf"^{_WEEKDAY}(\d{{1,2}})\.?\s+([^\W\d_]+)\.?,?\s+(\d{{4}})(?:[T ,].*)?$")
_MONTH_DAY = re.compile(rf"^{_WEEKDAY}([^\W\d_]+)\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?:[T ,].*)?$")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january jan januar jänner januari",
            "february feb februar februari",
            "march mar märz maerz mär mrz maret",
            "april apr",
            "may mai mei",
            "june jun juni",
            "july jul juli",
            "august aug agustus agu agt",
            "september sep sept",
            "october oct oktober okt",
            "november nov",
            "december dec dezember dez desember des",
        ),
        1,
    )
    for name in names.split()
}


def _written_date(value: str) -> Any:
    text = value.strip()
    if not text:
        return None
    year_first, day_first = _YEAR_FIRST.match(text) or _BASIC.match(text), _DAY_FIRST.match(text)
    day_month, month_day = _DAY_MONTH.match(text), _MONTH_DAY.match(text)
    try:
        if year_first:
            year, *_, month, day = year_first.groups()  # with or without a separator between them
            return dt.date(int(year), int(month), int(day))
        if day_first:
            return dt.date(int(day_first[3]), int(day_first[2]), int(day_first[1]))
        if day_month and day_month[2].lower() in _MONTHS:
            return dt.date(int(day_month[3]), _MONTHS[day_month[2].lower()], int(day_month[1]))
        if month_day and month_day[1].lower() in _MONTHS:
            return dt.date(int(month_day[3]), _MONTHS[month_day[1].lower()], int(month_day[2]))
    except ValueError:
        pass  # no such day: refused below as any other text that is not a date
    return text


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"'{value}' is not an http(s) URL")
    return value


#: Other names for the asset types (`white paper`, `customer story`, `free trial`...), shipped with the package.
ASSET_TYPE_ALIASES: Path = Path(__file__).parent / "data" / "asset_types.toml"
#: The environment variable naming a team's own file of that form, read in addition to the shipped one.
ASSET_TYPES_VARIABLE = "RECOMMENDER_ASSET_TYPES"


def spelling(name: str) -> str:
    """A name in lower snake case, as the vocabularies write theirs: `Plans & Pricing` is `plans_and_pricing`."""
    name = name.strip().lower().replace("&", " and ").replace("'", "").replace("\u2019", "")
    return re.sub(r"[\W_]+", "_", name).strip("_")


@lru_cache(maxsize=1)
def _asset_type_names() -> dict[str, str]:
    """Every name read as an asset type, in lower snake case (`spelling`), mapped to the type's value:
    the shipped names and those of the file RECOMMENDER_ASSET_TYPES names, if it is set."""
    files = [ASSET_TYPE_ALIASES]
    if os.environ.get(ASSET_TYPES_VARIABLE):
        files.append(Path(os.environ[ASSET_TYPES_VARIABLE]))
    return _names_files(AssetType, "asset type", files)[0]


#: Job titles, personas and business functions read as committee roles (`CFO`, `Head of IT`), shipped with
#: the package.
ROLE_ALIASES: Path = Path(__file__).parent / "data" / "roles.toml"
#: The environment variable naming a team's edited copy of that file, read instead of the shipped one: who
#: uses a product, and so which titles are its end users, depends on the product.
ROLES_VARIABLE = "RECOMMENDER_ROLES"


@lru_cache(maxsize=1)
def _role_names() -> tuple[dict[str, str], frozenset[str], frozenset[str]]:
    """Every name read as a role (as `_asset_type_names`), the words of a title that tell its rank, not its
    function (`senior`, `head`, `leiter`), and those that tell a kind of work, not whose (`operations`,
    `planning`): from the file RECOMMENDER_ROLES names, if it is set, or else the shipped one."""
    return _names_files(Role, "role", [Path(os.environ.get(ROLES_VARIABLE) or ROLE_ALIASES)])


def _names_files(
    vocabulary: type[StrEnum], kind: str, files: list[Path]
) -> tuple[dict[str, str], frozenset[str], frozenset[str]]:
    """The names (spelt name -> value), the `ranks` and the `activities` of the names files, in their
    `[aliases]` form. A name may not name two values."""
    out = {member.value: member.value for member in vocabulary}
    ranks: set[str] = set()
    activities: set[str] = set()
    for file in files:
        try:
            with file.open("rb") as fh:
                content = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{file}: cannot read the {kind} names ({exc})") from exc
        ranks.update(spelling(name) for name in _listed(file, "ranks", content.get("ranks", [])))
        activities.update(spelling(name) for name in _listed(file, "activities", content.get("activities", [])))
        for key, names in content.get("aliases", {}).items():
            if key not in out or out[key] != key:
                raise ValueError(f"{file}: '{key}' is not one of the {kind}s ({allowed(vocabulary)})")
            for alias in _listed(file, key, names):
                spelt = spelling(alias)
                if out.setdefault(spelt, key) != key:
                    raise ValueError(f"{file}: '{alias}' names both {out[spelt]} and {key}")
    return out, frozenset(ranks), frozenset(activities)


def _listed(file: Path, key: str, names: Any) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f'{file}: the names of {key} are not a list of strings, such as ["a name", "another"]')
    return names


def _spelt_as(read_name: Callable[[str], str | None]) -> BeforeValidator:
    """Reads a vocabulary's values as exports and CRMs write them: `End User`, `end-user` and `END_USER`
    are `end_user`; `read_name` takes the name in lower snake case (`spelling`) and returns the value it
    reads as, or None. A name it cannot read is left as written, for the error to quote it."""

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return read_name(spelling(value)) or value

    return BeforeValidator(read)


def _own_name(vocabulary: type[StrEnum]) -> Callable[[str], str | None]:
    """A reader of the vocabulary's own values, a plural read as its singular."""
    names = {member.value: member.value for member in vocabulary}
    return lambda spelt: _value(_named(spelt, names, by_word=False))


def _asset_type_named(spelt: str) -> str | None:
    """An asset type's value, another name for one, or a name some of whose words are one of those."""
    return _value(_named(spelt, _asset_type_names(), by_word=True))


def asset_type_by_word(name: str) -> AssetType | None:
    """The asset type `name` reads as only by some of its words, not as a whole: `Quick Start Guide` is a
    guide, by its last word. None when the whole name is a type's, or when no run of its words is."""
    found = _named(spelling(name), _asset_type_names(), by_word=True)
    return AssetType(found[0]) if found and found[1] else None


def not_a_role(written: str | None = None) -> str:
    """The sentence that says a role could not be read, and what can be; without `written`, it does not
    quote the value (the HTTP API does not echo input)."""
    quoted = "" if written is None else f"{written!r} is "
    return (
        f"{quoted}not one of {allowed(Role)}, nor a job title or persona naming one such as 'Head of IT' "
        f"(content_library/data/roles.toml lists the names; point {ROLES_VARIABLE} at an edited copy to add yours)"
    )


def _role_named(spelt: str) -> str | None:
    """A role's value, another name for one (a persona, a title such as `CFO`), or a job title read by the
    words that are left once its rank is set aside: `Senior Manager, IT Procurement` is procurement. Words
    of a kind of work are read only when no other word names a role: `Financial Planning Manager` is
    finance, `Planning Manager` end_user."""
    names, ranks, activities = _role_names()
    found = _named(spelt, names, by_word=False)
    if found is None:
        words = [word for word in _without_phrases(spelt.split("_"), ranks) if word not in ranks]
        whose = [word for word in words if word not in activities]
        for function in dict.fromkeys(["_".join(whose), "_".join(words)]):
            found = _named(function, names, by_word=True) if function else None
            if found is not None:
                break
    return _value(found)


def _without_phrases(words: list[str], phrases: frozenset[str]) -> list[str]:
    """`words` without the runs of two or more that a phrase of `phrases` spells (`vice_president`)."""
    runs = sorted((phrase.split("_") for phrase in phrases if "_" in phrase), key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(words):
        run = next((run for run in runs if words[i : i + len(run)] == run), None)
        if run is None:
            out.append(words[i])
        i += len(run) if run else 1
    return out


def _value(found: tuple[str, bool] | None) -> str | None:
    return found[0] if found else None


def _named(name: str, known: Mapping[str, str], by_word: bool) -> tuple[str, bool] | None:
    """The value `name` (spelt) reads as, and whether a shorter run of its words named it. The whole name
    comes first; with `by_word`, then ever shorter runs of its last words (English puts the head of a
    compound last: `security whitepaper`), then of its first (Indonesian puts it first: `panduan pengguna`)."""
    words = name.split("_")
    runs = [words]
    if by_word:
        runs += [words[i:] for i in range(1, len(words))] + [words[:i] for i in range(len(words) - 1, 0, -1)]
    for n, run in enumerate(runs):
        spelt = "_".join(run)
        singular = spelt[:-3] + "y" if spelt.endswith("ies") else spelt.removesuffix("s")
        value = known.get(spelt) or known.get(singular)
        if value:
            return value, n > 0
    return None


def _event_name(value: Any) -> Any:
    return (spelling(value) or value) if isinstance(value, str) else value


SegmentName = Annotated[Segment, _spelt_as(_own_name(Segment))]
StageName = Annotated[Stage, _spelt_as(_own_name(Stage))]
#: A committee role, another name for one (roles.toml: `CFO`, `Economic Buyer`), or a job title some of whose
#: words, its rank aside, are one of those (`Head of IT Security` is it).
RoleName = Annotated[Role, _spelt_as(_role_named)]
#: A buying-signal event: `Pricing Page View` and `pricing-page-view` are `pricing_page_view`.
EventName = Annotated[str, BeforeValidator(_event_name), StringConstraints(min_length=1, max_length=64)]
#: A language: its code, a tag (`de-DE`) or its name (`German`, `Deutsch`); stored as the ISO 639-1 code.
LanguageCode = Annotated[str, AfterValidator(language_code)]
#: A visitor's language: as LanguageCode, or a browser's Accept-Language header (its preferred language).
VisitorLanguage = Annotated[str, AfterValidator(preferred_language)]
#: An asset type, another name for one (asset_types.toml), or a name some of whose words are one of those
#: (`Quick Start Guide` is a guide: `asset_type_by_word`).
AssetTypeName = Annotated[AssetType, _spelt_as(_asset_type_named)]


class Asset(BaseModel):
    """One piece of marketing content. Curated labels are optional: the tagger fills what is missing."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=_ID_PATTERN, description="Unique id: letters, digits and . _ : - (max 128).")
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(
        default="",
        max_length=100_000,
        description="The text or abstract; may be empty (a video, a pricing page): the title then stands alone.",
    )
    asset_type: AssetTypeName = Field(
        description="The asset's type; another name for one, such as 'White Paper' or 'Case Studies', counts as it."
    )
    language: LanguageCode = Field(
        description="ISO 639-1 code; a tag (de-DE) or the language's name (German, Deutsch) counts as its code."
    )
    url: Annotated[str, AfterValidator(_url)] = Field(max_length=2048)
    published: dt.date | None = None
    segments: tuple[SegmentName, ...] = ()
    stages: tuple[StageName, ...] = ()
    roles: tuple[RoleName, ...] = ()
    topic: str | None = Field(default=None, max_length=200)
    tags: tuple[str, ...] = ()

    @field_validator("published", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        # CMS exports often carry a timestamp; the date is what matters for freshness.
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, str):
            return _written_date(value)
        return value

    @field_validator("segments", "stages", "roles", "tags", mode="after")
    @classmethod
    def _unique(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(dict.fromkeys(value))

    @property
    def text(self) -> str:
        """What the embedding and the tagger read: the title, then the body if there is one."""
        return f"{self.title}\n\n{self.body}" if self.body else self.title


def allowed(enum: type[StrEnum]) -> str:
    return ", ".join(member.value for member in enum)
