"""What Spark executors run for the batch commands: reading records, the jobs, and the models they load.

Everything here runs in executor Python processes (spark_engine.py is the driver). Functions take
and return Arrow record batches (`mapInArrow`); the job descriptions (`TagSpec`, `RecommendSpec`)
travel with each task and build the jobs of batch_jobs.py from models loaded once per process.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from content_library import UTF8, RawRecord, RecordInvalid, csv_cells, jsonl_record, not_text, too_many_cells
from recommender.batch_io import BatchError, OutputFormat, Table, json_line
from recommender.batch_jobs import Job, PinnedDate, RecommendJob, TagJob
from recommender.config import RankingConfig
from recommender.embeddings import Embedder
from recommender.engine import Recommender
from recommender.store import IndexStore

EmbedderFactory = Callable[[str], Embedder]

FILE, BLOCK, CORRUPT = "_batch_file", "_batch_block", "_batch_corrupt"
SCAN_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),  # "split": counts of one file split; "problem": one problem of one record
        ("file", pa.string()),
        ("block", pa.int64()),
        ("index", pa.int64()),  # rows of the split (split), or the record's row within it (problem)
        ("lines", pa.int64()),  # physical lines before the record (CSV rows can span lines)
        ("records", pa.int64()),
        ("valid", pa.int64()),
        ("field", pa.string()),
        ("message", pa.string()),
    ]
)
NUMBERED_SCHEMA = pa.schema([("seq", pa.int64()), ("batch", pa.int64()), ("item", pa.string())])


# -- what executors load, once per Python worker process --------------------------------------------

_LOADED: dict[str, tuple[tuple[Any, ...], Any]] = {}


def _cached(kind: str, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    """One loaded object per kind in this process, reloaded only when its key changes.

    Spark reuses Python workers across tasks (spark.python.worker.reuse, on by default), so the model
    loads on a worker's first task and later tasks and jobs of the run find it here.
    """
    held = _LOADED.get(kind)
    if held is None or held[0] != key:
        _LOADED.pop(kind, None)  # free the old one before loading the new
        _LOADED[kind] = (key, load())
    return _LOADED[kind][1]


def _factory_key(factory: EmbedderFactory) -> str:
    return f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', repr(factory))}"


def _embedder(factory: EmbedderFactory, spec: str) -> Embedder:
    return _cached("embedder", (_factory_key(factory), spec), lambda: factory(spec))


@dataclass(frozen=True)
class TagSpec:
    """What executors need to build the tag job: sent with the task, small (the tagger is broadcast)."""

    model: str
    tagger: Any  # a Broadcast of the Tagger
    tagger_version: str
    encode_batch_size: int
    embedder_factory: EmbedderFactory

    def job(self, loaded: bool) -> Job:
        if not loaded:
            return TagJob(None, None)
        embedder = _embedder(self.embedder_factory, self.model)
        tagger = _cached("tagger", (self.tagger_version,), lambda: self.tagger.value)
        return TagJob(embedder, tagger, encode_batch_size=self.encode_batch_size)


@dataclass(frozen=True)
class RecommendSpec:
    index_dir: str
    shipped: bool  # sent with SparkContext.addFile: executors find it with SparkFiles.get
    version: str
    config: RankingConfig
    today: dt.date
    k: int
    steps: int | None
    embedder_factory: EmbedderFactory

    def job(self, loaded: bool) -> Job:
        today = PinnedDate(self.today)
        if not loaded:
            return RecommendJob(None, k=self.k, steps=self.steps, config=self.config, today=today)
        path = self.index_dir
        if self.shipped:
            from pyspark import SparkFiles

            path = SparkFiles.get(Path(self.index_dir).name)
        embedder = _embedder(self.embedder_factory, IndexStore(path).manifest().model)
        key = (path, self.version, repr(self.config), self.today)
        recommender = _cached("recommender", key, lambda: Recommender(path, embedder, None, self.config, today=today))
        if recommender.version != self.version:
            raise BatchError(
                f"the index at {path} switched from version {self.version} to {recommender.version} during the "
                "run; run again once builds are done (or ship the index with --ship-index)"
            )
        return RecommendJob(recommender, k=self.k, steps=self.steps, config=self.config, today=today)


# -- executor functions -------------------------------------------------------------------------------


def _records(
    batch: pa.RecordBatch, kind: str, delimiter: str, encoding: str
) -> Iterator[tuple[str, int, RawRecord | None, int]]:
    """(file, split, record or None for a blank line, physical lines it spans) for each row; `delimiter`
    is what separates the cells of CSV input, `encoding` what its text and JSON Lines' is in."""
    files = batch.column(FILE).to_pylist()
    blocks = batch.column(BLOCK).to_pylist()
    rows = batch.drop_columns([FILE, BLOCK]).to_pylist()
    for file, block, row in zip(files, blocks, rows, strict=True):
        record: RawRecord | None
        lines = 1
        if kind == "jsonl":
            try:
                record = jsonl_record(file, "", (row["value"] or b"").decode(encoding))
            except UnicodeDecodeError:
                record = RawRecord(file, "", {}, not_text(encoding))
        elif kind == "csv":
            corrupt = row.pop(CORRUPT)
            lines += sum(value.count("\n") for value in row.values() if isinstance(value, str))
            record = _csv_record(file, row, corrupt, delimiter, encoding)
        elif kind in ("markdown", "json"):
            record = RawRecord(file, "", json.loads(row["data"]), row["error"])
        else:
            record = RawRecord(file, "", row)
        yield file, block, record, lines


def _csv_record(source: str, row: dict[str, Any], corrupt: str | None, delimiter: str, encoding: str) -> RawRecord:
    if corrupt is not None:  # Spark flags rows with too many or too few cells; only too many is an error
        import csv

        cells = next(csv.reader([corrupt], delimiter=delimiter), [])
        if len(cells) > len(row):
            return RawRecord(source, "", {}, too_many_cells(len(cells) - len(row), delimiter))
    decoded = csv_cells(row, encoding)
    return RawRecord(source, "", {}, not_text(encoding)) if decoded is None else RawRecord(source, "", decoded)


def scan(
    batches: Iterator[pa.RecordBatch], *, spec: Any, kind: str, delimiter: str = ",", encoding: str = UTF8
) -> Iterator[pa.RecordBatch]:
    job = spec.job(loaded=False)
    counts: dict[tuple[str, int], list[int]] = {}  # rows, lines, records, valid
    for batch in batches:
        problems: list[dict[str, Any]] = []
        for file, block, record, lines in _records(batch, kind, delimiter, encoding):
            count = counts.setdefault((file, block), [0, 0, 0, 0])
            index, lines_before = count[0], count[1]
            count[0] += 1
            count[1] += lines
            if record is None:
                continue
            count[2] += 1
            try:
                job.check(record)
            except RecordInvalid as exc:
                for problem in exc.problems:
                    problems.append(
                        {"kind": "problem", "file": file, "block": block, "index": index, "lines": lines_before}
                        | {"field": problem.field, "message": problem.message}
                    )
            else:
                count[3] += 1
        if problems:
            yield pa.RecordBatch.from_pylist(problems, schema=SCAN_SCHEMA)
    splits = [
        {"kind": "split", "file": file, "block": block, "index": rows, "lines": lines, "records": records}
        | {"valid": valid}
        for (file, block), (rows, lines, records, valid) in counts.items()
    ]
    yield pa.RecordBatch.from_pylist(splits, schema=SCAN_SCHEMA)


def number(
    batches: Iterator[pa.RecordBatch],
    *,
    spec: Any,
    kind: str,
    starts: dict[tuple[str, int], int],
    batch_size: int,
    delimiter: str = ",",
    encoding: str = UTF8,
) -> Iterator[pa.RecordBatch]:
    job = spec.job(loaded=False)
    seen: dict[tuple[str, int], int] = {}
    for batch in batches:
        out: dict[str, list[Any]] = {"seq": [], "batch": [], "item": []}
        for file, block, record, _ in _records(batch, kind, delimiter, encoding):
            if record is None:
                continue
            try:
                item = job.parse(record)
            except RecordInvalid:
                continue  # reported by the scan
            n = seen.get((file, block), 0)
            seen[(file, block)] = n + 1
            seq = starts[(file, block)] + n
            out["seq"].append(seq)
            out["batch"].append(seq // batch_size)
            out["item"].append(job.dump(item))
        yield pa.RecordBatch.from_pydict(out, schema=NUMBERED_SCHEMA)


def process(
    batches: Iterator[pa.RecordBatch], *, spec: Any, fmt: OutputFormat, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    job = spec.job(loaded=True)
    _limit_threads()
    pending: list[Any] = []
    current = None
    for batch in batches:
        for number, text in zip(batch.column("batch").to_pylist(), batch.column("item").to_pylist(), strict=True):
            if pending and number != current:
                yield _encode(job.process(pending), job.table, fmt, schema)
                pending = []
            current = number
            pending.append(job.load(text))
    if pending:
        yield _encode(job.process(pending), job.table, fmt, schema)


def _encode(rows: Sequence[dict[str, Any]], table: Table, fmt: OutputFormat, schema: pa.Schema) -> pa.RecordBatch:
    if fmt is OutputFormat.JSONL:
        columns: list[dict[str, Any]] = [{"value": json_line(row)} for row in rows]
    elif fmt is OutputFormat.CSV:
        columns = [dict(zip(table.names, table.cells(row), strict=True)) for row in rows]
    else:
        columns = [table.typed(row) for row in rows]
    return pa.RecordBatch.from_pylist(columns, schema=schema)


def _limit_threads() -> None:
    """One task, one share of the cores: several Python workers each using every core slow each other down."""
    from pyspark import TaskContext

    context = TaskContext.get()
    torch = sys.modules.get("torch")  # imported by a model that uses it; never imported just for this
    if context is not None and torch is not None and torch.get_num_threads() != context.cpus():
        torch.set_num_threads(max(1, context.cpus()))


def output_schema(fmt: OutputFormat, table: Table) -> pa.Schema:
    if fmt is OutputFormat.JSONL:
        return pa.schema([("value", pa.string())])
    if fmt is OutputFormat.CSV:
        return pa.schema([(name, pa.string()) for name in table.names])
    return table.arrow_schema
