"""Load a content library from the files teams keep it in: JSON Lines, CSV, Parquet and Markdown.

Teams export content from a CMS (CSV, JSON Lines, Parquet) or keep it in Git as Markdown files with
YAML front matter. Every format goes through the same two steps, so they all behave alike:
``iter_records`` streams raw records one at a time (batch tagging of a million assets needs that), and
``parse_record`` validates one against :class:`~content_library.schema.Asset`. ``load_library`` runs both
over several files or folders and reports every bad record at once, with file, line and field, because
fixing an export one error per run is miserable.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from content_library import languages
from content_library.schema import (
    LABEL_FIELDS,
    Asset,
    AssetType,
    allowed,
    asset_type_by_word,
    not_a_role,
    spelling,
)

#: The shipped sample library: *.jsonl assets plus README-like vendor descriptions (*.md, no front matter).
SAMPLE_LIBRARY: Path = Path(__file__).parent / "sample"

_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv"}
_FORMATS |= {".parquet": "parquet", ".md": "markdown", ".markdown": "markdown"}
_SUPPORTED = (
    "Supported formats: JSON Lines (.jsonl, .ndjson), a JSON array of assets (.json), CSV with commas, "
    "semicolons, tabs or bars between cells (.csv, .tsv), Parquet (.parquet), Markdown with YAML front matter "
    "(.md, .markdown), or a folder of such files."
)
#: What may stand between the cells of a CSV file, as spreadsheets in different locales export it.
_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
_KNOWN_FIELDS = frozenset(Asset.model_fields)
_MULTI_VALUED = frozenset({"segments", "stages", "roles", "tags"})
_ENUMS = {"asset_type": AssetType, **LABEL_FIELDS}
_SEPARATORS = re.compile(r"[|;,]")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_MAX_SHOWN = 50
#: Files are read as UTF-8 unless told otherwise (`encoding`).
UTF8 = "utf-8"
#: UTF-8's byte order mark as a Latin-1 reading shows it.
LATIN1_BOM = codecs.BOM_UTF8.decode("latin-1")


def text_encoding(name: str) -> str:
    """The codec name of an encoding text input may be read in, or a LibraryError saying why not.

    UTF-8, or an encoding of one byte per character that writes ASCII as ASCII (cp1252, which Excel on
    Western Windows saves CSV in; latin-1, cp1250, iso-8859-15...): CSV and JSON are parsed by their
    ASCII characters before a record's bytes are decoded, which UTF-16 or Shift-JIS would not allow.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise LibraryError(
            f"Unknown encoding '{name}': name one such as utf-8, cp1252 (Excel's CSV on Western Windows) or latin-1"
        ) from None
    if codec in (UTF8, "utf-8-sig"):
        return UTF8  # a byte order mark is taken off either way
    decoded = _EVERY_BYTE.decode(codec, errors="replace")
    if len(decoded) != 256 or decoded[:128] != _EVERY_BYTE[:128].decode("ascii"):
        raise LibraryError(
            f"Encoding '{name}' is not supported: text is read in UTF-8 or an encoding of one byte per character "
            "(cp1252, latin-1, cp1250...); save the file as UTF-8"
        )
    return codec


_EVERY_BYTE = bytes(range(256))


def not_text(encoding: str) -> str:
    """The problem of a record whose bytes are not text in `encoding`."""
    if encoding == UTF8:
        return "is not UTF-8 text; save the file as UTF-8, or give its encoding (--encoding cp1252)"
    return f"is not {encoding} text; give the encoding the file was saved in (--encoding), or save it as UTF-8"


#: The problem of a record whose bytes are not UTF-8 (a spreadsheet saved as Windows-1252, say).
NOT_UTF8 = not_text(UTF8)


@dataclass(frozen=True)
class RecordProblem:
    """One thing wrong with one record, located the way an editor shows it."""

    source: str
    location: str  # "line 4" (JSON Lines; CSV, header = line 1), "row index 3" (Parquet), "" (Markdown)
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.source, self.location, f"field {self.field}" if self.field else ""]
        return f"{', '.join(part for part in where if part)}: {self.message}"


@dataclass(frozen=True)
class RawRecord:
    """A record as read from a file, before validation.

    ``error`` says why the record could not be read into ``data`` (invalid JSON, bad YAML); it is kept
    as a record problem rather than raised, so one broken line does not stop a stream of a million.
    """

    source: str
    location: str
    data: dict[str, Any]
    error: str | None = None


@dataclass
class Library:
    """The loaded assets, what was skipped, the unknown fields that were ignored (to reveal typos), the
    languages read from the text of records that gave none (asset id to code), and the asset type names
    no list holds that were read by some of their words (name as written -> type and assets)."""

    assets: list[Asset] = field(default_factory=list)
    skipped: list[RecordProblem] = field(default_factory=list)
    ignored_fields: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    detected_languages: dict[str, str] = field(default_factory=dict)
    types_by_word: dict[str, tuple[str, int]] = field(default_factory=dict)

    def count_by(self, name: str) -> dict[str, int]:
        """How many assets have each value of a single-valued field (`asset_type`, `language`), by value."""
        return dict(sorted(Counter(str(getattr(asset, name)) for asset in self.assets).items()))

    def count_detected_languages(self) -> dict[str, int]:
        """How many assets got each language from their text, by language."""
        return dict(sorted(Counter(self.detected_languages.values()).items()))


class LibraryError(Exception):
    """The library cannot be loaded: a path is unreadable, or records are invalid (see ``problems``)."""

    def __init__(self, message: str, problems: Sequence[RecordProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [self.message, *(f"  {problem}" for problem in self.problems[:_MAX_SHOWN])]
        if len(self.problems) > _MAX_SHOWN:
            lines.append(f"  ... and {len(self.problems) - _MAX_SHOWN} more")
        return "\n".join(lines)


class RecordInvalid(LibraryError):
    """One record does not make a valid asset; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[RecordProblem]) -> None:
        super().__init__("Invalid asset record:", problems)


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a file from its extension: "jsonl", "json", "csv", "parquet" or "markdown"."""
    path = Path(path)
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        found = f"unsupported file extension '{path.suffix}'" if path.suffix else "no file extension"
        raise LibraryError(f"Cannot load '{path}': {found}. {_SUPPORTED}") from None


def iter_records(path: str | os.PathLike[str], encoding: str = UTF8) -> Iterator[RawRecord]:
    """Stream the raw records of a file or folder, one at a time, without reading whole files into memory.

    A folder is read recursively in sorted order (see :func:`load_library` for which files count); text
    files in `encoding` (see :func:`text_encoding`).
    """
    encoding = text_encoding(encoding)
    for file in _expand([path]):
        yield from _READERS[detect_format(file)](file, encoding)


def parse_record(record: RawRecord, *, detect_language: bool = False) -> Asset:
    """Validate one raw record into an Asset; raise RecordInvalid listing every problem.

    Unknown fields are dropped (CMS exports carry extras such as author), multi-valued fields given as
    a string ("a|b", "a;b", "a, b", a JSON array) are split, and empty values count as absent. With
    `detect_language`, a record without a language gets the one its title and body are written in.
    """
    return _parse(record, detect_language)[0]


def _parse(record: RawRecord, detect_language: bool) -> tuple[Asset, bool]:
    """parse_record's asset, and whether its language was read from its text."""
    if record.error is not None:
        raise RecordInvalid([RecordProblem(record.source, record.location, None, record.error)])
    data, found = _prepare(record.data)
    detect = detect_language and "language" not in data
    if detect:
        data["language"] = "en"  # a placeholder until the text it is read from has been validated
    try:
        asset = Asset.model_validate(data)
    except ValidationError as exc:
        found += [(str(error["loc"][0]) if error["loc"] else None, _message(error)) for error in exc.errors()]
    if found:
        raise RecordInvalid([RecordProblem(record.source, record.location, *problem) for problem in found])
    if detect:
        asset = asset.model_copy(update={"language": languages.detect_language(asset.text)})
    return asset, detect


def load_library(*paths: str | os.PathLike[str], skip_invalid: bool = False, encoding: str = UTF8) -> Library:
    """Load assets from files and folders, in the order given.

    A folder is read recursively in sorted order: its .jsonl, .ndjson, .csv, .tsv and .parquet files, its
    .json files that hold an array, and its .md/.markdown files that start with a '---' front matter
    line; other Markdown and JSON files (READMEs, settings) and other extensions are ignored. Field
    names are read as the schema writes them (`Asset Type` is asset_type). Every bad record and
    duplicate id is collected; unless ``skip_invalid`` is set, the load then fails with a LibraryError
    listing them all. With ``skip_invalid`` the valid assets load (the first of duplicate ids wins) and
    ``Library.skipped`` says what was left out. A record without a language gets the one its title and
    body are written in (py3langid), listed in ``Library.detected_languages``; an asset type name read by
    some of its words (`Quick Start Guide`) is listed in ``Library.types_by_word``. Text files are read
    in ``encoding``: UTF-8 by default, or one byte per character (see :func:`text_encoding`).
    """
    encoding = text_encoding(encoding)
    if not paths:
        raise LibraryError(f"No library given: pass at least one file or folder. {_SUPPORTED}")
    files = _expand(paths)
    library = Library(sources=[str(file) for file in files])
    ignored: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for file in files:
        for record in _READERS[detect_format(file)](file, encoding):
            ignored.update(str(key).strip() for key in record.data if _field_name(key) not in _KNOWN_FIELDS)
            try:
                asset, detected = _parse(record, detect_language=True)
            except RecordInvalid as exc:
                library.skipped += exc.problems
                continue
            here = ", ".join(part for part in (record.source, record.location) if part)
            if asset.id in first_seen:
                message = f"duplicate id '{asset.id}', already used at {first_seen[asset.id]}"
                library.skipped.append(RecordProblem(record.source, record.location, "id", message))
                continue
            first_seen[asset.id] = here
            library.assets.append(asset)
            if detected:
                library.detected_languages[asset.id] = asset.language
            written = next((value for key, value in record.data.items() if _field_name(key) == "asset_type"), None)
            if isinstance(written, str) and asset_type_by_word(written) is not None:
                name = written.strip()
                library.types_by_word[name] = (asset.asset_type.value, library.types_by_word.get(name, ("", 0))[1] + 1)
    library.ignored_fields = dict(sorted(ignored.items()))
    if library.skipped and not skip_invalid:
        records = len({(problem.source, problem.location) for problem in library.skipped})
        raise LibraryError(
            f"Found {len(library.skipped)} problem(s) in {records} record(s) of the content library. "
            "Fix them, or skip those records (--skip-invalid on the command line, skip_invalid=True in Python):",
            library.skipped,
        )
    return library


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to read, checked up front so a typo in the last path fails before any reading."""
    files: dict[Path, Path] = {}
    for given in map(Path, paths):
        if given.is_dir():
            found = _folder_files(given)
            if not found:
                raise LibraryError(f"Folder '{given}' holds no content files. {_SUPPORTED}")
        elif given.exists():
            detect_format(given)
            found = [given]
        else:
            raise LibraryError(f"No such file or folder: '{given}'. {_SUPPORTED}")
        for file in found:  # a folder and a file inside it given together: read the file once
            files.setdefault(file.resolve(), file)
    return list(files.values())


def _folder_files(folder: Path) -> list[Path]:
    files = []
    for file in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in file.relative_to(folder).parts)  # .git, .obsidian
        kind = _FORMATS.get(file.suffix.lower())
        if hidden or kind is None or not file.is_file():
            continue
        if (kind != "markdown" or _has_front_matter(file)) and (kind != "json" or _holds_array(file)):
            files.append(file)
    return files


def _holds_array(file: Path) -> bool:
    """A .json file in a folder is content when it is an array; an object may be any tool's settings."""
    with file.open("rb") as handle:
        return handle.read(4096).removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"[")


def _has_front_matter(file: Path) -> bool:
    with file.open("rb") as handle:
        return handle.readline().removeprefix(codecs.BOM_UTF8).rstrip() == b"---"


def _read_jsonl(path: Path, encoding: str) -> Iterator[RawRecord]:
    source = str(path)
    with path.open("rb") as handle:  # bytes, so one badly encoded line is that line's problem only
        for number, raw in enumerate(handle, start=1):
            location = f"line {number}"
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                yield RawRecord(source, location, {}, not_text(encoding))
                continue
            record = jsonl_record(source, location, text)
            if record is not None:
                yield record


def jsonl_record(source: str, location: str, line: str) -> RawRecord | None:
    """One line of a JSON Lines file as a raw record, or None for a blank line."""
    line = line.removeprefix("\ufeff")
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return RawRecord(source, location, {}, f"is not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(data, dict):
        return RawRecord(source, location, {}, f"is a JSON {_json_kind(data)}, not an object of the asset's fields")
    return RawRecord(source, location, data)


def _read_csv(path: Path, encoding: str) -> Iterator[RawRecord]:
    source = str(path)
    # Read as Latin-1, one character per byte, so that a row that is not text in `encoding` is that
    # row's problem only (`csv_cells`); the characters CSV is parsed by are ASCII, which every encoding
    # read (`text_encoding`) keeps as they are.
    with path.open(encoding="latin-1", newline="") as handle:
        previous = 0
        try:
            header = handle.readline().removeprefix(LATIN1_BOM)
            delimiter = csv_delimiter(header)
            reader = csv.DictReader(itertools.chain([header], handle), delimiter=delimiter)
            if reader.fieldnames is None:  # reads the header, so line_num counts it as line 1
                return
            previous = reader.line_num
            for row in reader:
                location = f"line {previous + 1}"  # where the row starts, even if a cell spans lines
                previous = reader.line_num
                if None in row:  # DictReader files cells beyond the header under the key None
                    yield RawRecord(source, location, {}, too_many_cells(len(row.pop(None) or []), delimiter))
                elif (cells := csv_cells(row, encoding)) is None:
                    yield RawRecord(source, location, {}, not_text(encoding))
                else:
                    yield RawRecord(source, location, cells)
        except csv.Error as exc:
            raise LibraryError(f"Cannot read '{path}' as CSV, line {previous + 1}: {exc}") from exc


def csv_cells(row: Mapping[str, Any], encoding: str = UTF8) -> dict[str, Any] | None:
    """A CSV row read as Latin-1 (one character per byte) as the text its bytes hold in `encoding`, names
    included; None when a cell or name is not text in it. Spark's executors read CSV the same way."""
    try:
        return {
            _decoded(key, encoding).removeprefix("\ufeff"): _decoded(value, encoding)
            if isinstance(value, str)
            else value
            for key, value in row.items()
        }
    except UnicodeDecodeError:
        return None


def _decoded(text: str, encoding: str) -> str:
    return text.encode("latin-1").decode(encoding)


def _file_text(path: Path, encoding: str) -> str:
    return path.read_bytes().decode("utf-8-sig" if encoding == UTF8 else encoding)


def _json_kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def too_many_cells(extra: int, delimiter: str) -> str:
    """The problem of a CSV row with `extra` cells more than its header."""
    return f"has {extra} more cell(s) than the header; quote cells that contain {_DELIMITERS[delimiter]}"


def csv_delimiter(header: str) -> str:
    """What separates the cells of a CSV file, read from its header line: a comma, or the semicolon,
    tab or bar that separates more of its names (spreadsheets in German locales save with semicolons)."""
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=counts.__getitem__)  # of equal counts the first: the comma
    return best if counts[best] else ","


def _read_json(path: Path, encoding: str) -> Iterator[RawRecord]:
    """A JSON array of assets, or an object holding one (`{"items": [...], "total": 120}`), as APIs export."""
    source = str(path)
    try:
        data = json.loads(_file_text(path, encoding))
    except UnicodeDecodeError as exc:
        raise LibraryError(f"Cannot read '{path}': it {not_text(encoding)}") from exc
    except json.JSONDecodeError as exc:
        raise LibraryError(f"Cannot read '{path}' as JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if isinstance(data, dict):
        arrays = [value for value in data.values() if isinstance(value, list)]
        data = arrays[0] if len(arrays) == 1 else data
    if not isinstance(data, list):
        raise LibraryError(
            f"Cannot read '{path}': it holds a JSON {_json_kind(data)}, not an array of assets "
            "([{...}, {...}], or an object with one such array)"
        )
    for index, item in enumerate(data):
        location = f"array index {index}"
        if isinstance(item, dict):
            yield RawRecord(source, location, item)
        else:
            yield RawRecord(source, location, {}, f"is a JSON {_json_kind(item)}, not an object of the asset's fields")


def _read_parquet(path: Path, encoding: str) -> Iterator[RawRecord]:
    """The rows of a Parquet file; its text is UTF-8 by the format's definition, whatever `encoding` says."""
    import pyarrow  # here, not at the top: a slow import that JSON Lines and CSV users never need
    import pyarrow.parquet

    try:
        parquet = pyarrow.parquet.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise LibraryError(f"Cannot read '{path}' as Parquet: {exc}") from exc
    with parquet:
        index = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                yield RawRecord(str(path), f"row index {index}", row)
                index += 1


def _read_markdown(path: Path, encoding: str) -> Iterator[RawRecord]:
    """One asset per file: front matter between '---' lines, the Markdown text after it as the body."""
    source = str(path)
    try:
        text = _file_text(path, encoding)
    except UnicodeDecodeError:
        yield RawRecord(source, "", {}, not_text(encoding))
        return
    data: Any = {}
    body = text
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            data = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            yield RawRecord(source, "", {}, _yaml_problem(exc))
            return
        if not isinstance(data, dict):
            yield RawRecord(source, "", {}, "front matter must be 'field: value' lines")
            return
        body = text[match.end() :]
    elif text.split("\n", 1)[0].strip() == "---":
        yield RawRecord(source, "", {}, "front matter opened by '---' is not closed by a '---' line")
        return
    data = {_field_name(key): value for key, value in data.items()}
    body = body.strip()
    if is_absent(data.get("id")):
        data["id"] = path.stem
    if is_absent(data.get("title")):
        heading, body = _take_heading(body)
        if heading:
            data["title"] = heading
    if body:
        data["body"] = body
    yield RawRecord(source, "", data)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """YAML's error in one line, with line numbers of the file (PyYAML counts from 0 after the '---')."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"front matter is not valid YAML: {exc}"
    detail = f"{exc.problem}"
    if exc.context and exc.context_mark is not None:
        detail += f" ({exc.context} from line {exc.context_mark.line + 2})"
    return f"front matter is not valid YAML at line {exc.problem_mark.line + 2}: {detail}"


_READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "markdown": _read_markdown,
}


def _take_heading(body: str) -> tuple[str | None, str]:
    """The first '# ' heading outside code fences, and the body without it."""
    lines = body.splitlines()
    fenced = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            rest = "\n".join(lines[:number] + lines[number + 1 :])
            return line[2:].strip().rstrip("#").strip(), rest.strip()
    return None, body


def _field_name(key: Any) -> str:
    """A field's name as the schema writes it: exports write `Asset Type`, `URL` and ` title`; YAML keys may be
    numbers."""
    return spelling(str(key))


def is_absent(value: Any) -> bool:
    """How files say a field is not given: null, or text of only whitespace (an empty CSV cell)."""
    return value is None or (isinstance(value, str) and not value.strip())


def _prepare(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Known, non-empty fields ready for the model, and the problems found on the way."""
    prepared: dict[str, Any] = {}
    written: dict[str, str] = {}
    problems: list[tuple[str | None, str]] = []
    for key, value in data.items():
        name = _field_name(key)
        if name not in _KNOWN_FIELDS or is_absent(value):
            continue
        if name in written:
            problems.append((name, f"given twice, as '{written[name]}' and '{str(key).strip()}'"))
            continue
        written[name] = str(key).strip()
        if name in _MULTI_VALUED and isinstance(value, str):
            try:
                value = _split(value)
            except ValueError as exc:
                problems.append((name, str(exc)))
                continue
        elif name == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # CMS exports and YAML often carry numeric ids
        elif name == "language" and value is False:
            value = "no"  # YAML 1.1 reads Norwegian, `language: no`, as false
        prepared[name] = value
    return prepared, problems


def _split(value: str) -> list[Any]:
    text = value.strip()
    if not text.startswith("["):
        return [item.strip() for item in _SEPARATORS.split(text) if item.strip()]
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{value!r} starts like a JSON array but is not valid JSON") from None
    return items


def _message(error: Any) -> str:
    """Pydantic's error as a sentence that says what is allowed."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    name = str(error["loc"][0]) if error["loc"] else ""
    if kind == "missing":
        return "required but missing or empty"
    if kind == "enum" and name == "asset_type":
        return (
            f"{value!r} is not one of {allowed(AssetType)}, nor another name for one such as 'white paper' "
            "(content_library/data/asset_types.toml lists them; add yours in a file of that form named by "
            "RECOMMENDER_ASSET_TYPES)"
        )
    if kind == "enum" and name == "roles":
        return not_a_role(value)
    if kind == "enum" and name in _ENUMS:
        return f"{value!r} is not one of {allowed(_ENUMS[name])}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "string_pattern_mismatch" and name == "id":
        return f"{value!r} is not a valid id: use letters, digits and . _ : - (1-128, letter or digit first)"
    if kind.startswith("date_"):
        return f"{value!r} is not a date; write it as YYYY-MM-DD"
    if kind == "string_too_long":
        return f"is {len(value)} characters long; at most {ctx['max_length']} are allowed"
    if kind == "string_type":
        return f"expected text, got {value!r}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list of values, got {value!r}"
    return str(error["msg"])
