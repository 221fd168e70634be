"""Output of the batch commands: formats, flat tables, and a partial file that survives a crash.

Every engine produces rows as JSON-able dicts; this module turns them into JSON Lines, CSV or
Parquet. The local engine writes `OUTPUT.partial` batch by batch, fsyncs it, and records in
`OUTPUT.partial.state` how far it got (records consumed, byte offset, SHA-256 of the bytes so far);
`finish` moves the file into place with one rename, so a killed run never leaves a half OUTPUT and
`--resume` continues after the last finished batch.

Parquet cannot be appended to after a crash (its footer is written last), so its partial file is
an Arrow IPC stream, one message per batch, converted to Parquet at the end.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from recommender.errors import RecommenderError

#: Parquet row groups are cut at about this size: big enough for fast scans, small enough for memory.
_ROW_GROUP_BYTES = 64 << 20
_STATE_VERSION = 1


class BatchError(RecommenderError):
    """A batch run cannot start or continue: bad output path or format, or an unusable resume state."""


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


_SUFFIXES = {".jsonl": OutputFormat.JSONL, ".ndjson": OutputFormat.JSONL, ".csv": OutputFormat.CSV}
_SUFFIXES[".parquet"] = OutputFormat.PARQUET


def output_format(path: str | os.PathLike[str], given: str | None = None) -> OutputFormat:
    """The format to write: `given`, or the one the output path's extension names."""
    if given:
        return OutputFormat(given)
    suffix = Path(str(path)).suffix.lower()
    if suffix not in _SUFFIXES:
        choices = ", ".join(f.value for f in OutputFormat)
        raise BatchError(
            f"cannot tell the output format of '{path}' from its extension; name it .jsonl, .csv or .parquet, "
            f"or pass --format ({choices})"
        )
    return _SUFFIXES[suffix]


# -- flat tables (CSV and Parquet) -------------------------------------------------------------------


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    TEXT_LIST = "text_list"
    NUMBER_LIST = "number_list"
    JSON = "json"  # any JSON value, stored as its JSON text


_ARROW = {
    Kind.TEXT: pa.string(),
    Kind.NUMBER: pa.float64(),
    Kind.DATE: pa.date32(),
    Kind.TEXT_LIST: pa.list_(pa.string()),
    Kind.NUMBER_LIST: pa.list_(pa.float64()),
    Kind.JSON: pa.string(),
}


@dataclass(frozen=True)
class Column:
    """One column of the flat form: its name, its kind, and where its value sits in a row."""

    name: str
    kind: Kind
    path: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """How rows of one command flatten into columns for CSV and Parquet."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(column.name, _ARROW[column.kind]) for column in self.columns])

    def typed(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's columns as Parquet stores them: lists stay lists, dates become dates."""
        out = {}
        for column in self.columns:
            value = _lookup(row, column.path)
            if column.kind is Kind.DATE and isinstance(value, str):
                value = dt.date.fromisoformat(value)
            elif column.kind is Kind.JSON:
                value = json.dumps(value, ensure_ascii=False)
            out[column.name] = value
        return out

    def cells(self, row: dict[str, Any]) -> list[str]:
        """The row's columns as CSV text: lists joined with '|', numbers as Python writes them."""
        return [_cell(column.kind, _lookup(row, column.path)) for column in self.columns]


def _lookup(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _cell(kind: Kind, value: Any) -> str:
    if kind is Kind.JSON:
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(_cell(kind, item) for item in value)
    return repr(value) if isinstance(value, float) else str(value)


# -- encoding -------------------------------------------------------------------------------------------


def json_line(row: dict[str, Any]) -> str:
    """One JSON Lines row without its newline; both engines write exactly this text."""
    return json.dumps(row, ensure_ascii=False)


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class _Encoder:
    """Bytes of the file's start and of each batch, for one output format."""

    def __init__(self, fmt: OutputFormat, table: Table) -> None:
        self.format = fmt
        self.table = table

    def header(self) -> bytes:
        if self.format is OutputFormat.CSV:
            return csv_text([self.table.names]).encode()
        if self.format is OutputFormat.PARQUET:
            return self.table.arrow_schema.serialize().to_pybytes()
        return b""

    def batch(self, rows: Sequence[dict[str, Any]]) -> bytes:
        if self.format is OutputFormat.CSV:
            return csv_text([self.table.cells(row) for row in rows]).encode()
        if self.format is OutputFormat.PARQUET:
            typed = [self.table.typed(row) for row in rows]
            return pa.RecordBatch.from_pylist(typed, schema=self.table.arrow_schema).serialize().to_pybytes()
        return "".join(json_line(row) + "\n" for row in rows).encode()


# -- resume state ---------------------------------------------------------------------------------------


@dataclass
class ResumeState:
    """How far a run got; rewritten atomically after every batch.

    `records` counts raw input records consumed (valid or not), so a resumed run skips exactly those;
    `offset` and `sha256` describe the partial file's bytes that belong to finished batches.
    """

    command: str
    fingerprint: str
    settings: dict[str, Any]
    records: int = 0
    written: int = 0
    skipped: int = 0
    batches: int = 0
    offset: int = 0
    sha256: str = field(default_factory=lambda: hashlib.sha256().hexdigest())
    #: Set just before the output is moved into place: a run killed after that move resumes as done.
    finished: bool = False
    version: int = _STATE_VERSION


class PartialOutput:
    """`OUTPUT.partial` and its state file: opened fresh or resumed, appended per batch, then finished.

    The partial file is locked while open, so a second run on the same OUTPUT fails instead of
    interleaving its batches.
    """

    def __init__(self, output: str | os.PathLike[str], fmt: OutputFormat, table: Table) -> None:
        self.output = Path(output)
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.state_path = self.output.with_name(self.output.name + ".partial.state")
        self._encoder = _Encoder(fmt, table)
        self._file: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self.state: ResumeState | None = None
        #: Whether `resume` found the run already finished, its output in place: nothing left to do.
        self.done = False

    def can_resume(self) -> bool:
        return self.state_path.is_file()

    def read_state(self) -> ResumeState:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            state = ResumeState(**raw)
        except FileNotFoundError:
            raise BatchError(f"nothing to resume: {self.state_path} does not exist") from None
        except (ValueError, TypeError) as exc:
            raise BatchError(f"{self.state_path} is not a resume state ({exc}); {_START_OVER}") from exc
        if state.version != _STATE_VERSION:
            raise BatchError(f"{self.state_path} was written by another release; {_START_OVER}")
        return state

    def start(self, command: str, fingerprint: str, settings: dict[str, Any]) -> ResumeState:
        """Begin from nothing, discarding any earlier partial output."""
        if self.output.is_dir():
            raise BatchError(f"'{self.output}' is a folder; give a file name for the output")
        self._open()
        assert self._file is not None
        self._file.truncate(0)
        self.state = ResumeState(command, fingerprint, settings)
        self._append(self._encoder.header())
        self._save_state()
        return self.state

    def resume(self, saved: ResumeState, command: str, fingerprint: str, settings: dict[str, Any]) -> ResumeState:
        """Continue after the last finished batch of an interrupted run with the same input and settings."""
        if saved.command != command:
            raise BatchError(f"{self.state_path} belongs to a `{saved.command}` run, not `{command}`; {_START_OVER}")
        if saved.fingerprint != fingerprint:
            raise BatchError(f"the input changed since the interrupted run that wrote {self.partial}; {_START_OVER}")
        changed = sorted(
            key for key in settings.keys() | saved.settings.keys() if settings.get(key) != saved.settings.get(key)
        )
        if changed:
            was = ", ".join(f"{key} {saved.settings.get(key)!r} (now {settings.get(key)!r})" for key in changed)
            raise BatchError(f"the interrupted run used {was}; use the same settings to resume, or {_START_OVER}")
        if saved.finished and not self.partial.exists():
            # Killed between moving the output into place and removing this state file.
            if not self.output.is_file():
                raise BatchError(f"{self.state_path} says the run finished but {self.output} is gone; {_START_OVER}")
            self.state_path.unlink()
            _fsync_dir(self.output.parent)
            self.state, self.done = saved, True
            return saved
        self._open()
        assert self._file is not None
        if os.fstat(self._file.fileno()).st_size < saved.offset or self._hash_prefix(saved.offset) != saved.sha256:
            raise BatchError(f"{self.partial} does not match {self.state_path}; {_START_OVER}")
        self._file.truncate(saved.offset)  # bytes after the offset are from a batch that never finished
        self._file.seek(saved.offset)
        self.state = saved
        return saved

    def append(self, rows: Sequence[dict[str, Any]], *, records: int, skipped: int) -> None:
        """Write one finished batch and record it: after this returns, the batch survives a crash."""
        assert self.state is not None
        self._append(self._encoder.batch(rows))
        self.state.records += records
        self.state.skipped += skipped
        self.state.written += len(rows)
        self.state.batches += 1
        self._save_state()

    def finish(self) -> None:
        """Move the complete output into place (one rename) and remove the partial state."""
        assert self._file is not None and self.state is not None
        self.state.finished = True
        self._save_state()
        if self._encoder.format is OutputFormat.PARQUET:
            converted = self.output.with_name(self.output.name + ".partial.parquet")
            _spool_to_parquet(self.partial, converted)
            os.replace(converted, self.output)
            self.partial.unlink()
        else:
            os.replace(self.partial, self.output)
        _fsync_dir(self.output.parent)
        self.state_path.unlink()
        _fsync_dir(self.output.parent)
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # also releases the lock
            self._file = None

    # -- internals ------------------------------------------------------------------------------------

    def _open(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.partial, "a+b")  # held open, and locked, for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise BatchError(f"another run is writing {self.output} (it holds {self.partial})") from None
        self._file = handle

    def _append(self, data: bytes) -> None:
        assert self._file is not None and self.state is not None
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._digest.update(data)
        self.state.offset += len(data)
        self.state.sha256 = self._digest.hexdigest()

    def _hash_prefix(self, size: int) -> str:
        assert self._file is not None
        self._digest = hashlib.sha256()
        self._file.seek(0)
        remaining = size
        while remaining:
            chunk = self._file.read(min(remaining, 1 << 20))
            if not chunk:
                break
            self._digest.update(chunk)
            remaining -= len(chunk)
        return self._digest.hexdigest()

    def _save_state(self) -> None:
        assert self.state is not None
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(asdict(self.state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)
        _fsync_dir(self.state_path.parent)


_START_OVER = "run without --resume to start over"


def _spool_to_parquet(spool: Path, target: Path) -> None:
    """Copy the Arrow IPC spool into a Parquet file, a row group at a time (bounded memory)."""
    import pyarrow.ipc
    import pyarrow.parquet

    with open(spool, "rb") as source:
        reader = pyarrow.ipc.open_stream(source)
        with pyarrow.parquet.ParquetWriter(target, reader.schema) as writer:
            pending: list[pa.RecordBatch] = []
            size = 0
            for batch in reader:
                pending.append(batch)
                size += batch.nbytes
                if size >= _ROW_GROUP_BYTES:
                    writer.write_table(pa.Table.from_batches(pending, reader.schema))
                    pending, size = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, reader.schema))
    with open(target, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)
