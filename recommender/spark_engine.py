"""The Spark engine of the batch commands, driver side: the jobs of batch_jobs.py, run by executors.

Four steps, all through Spark's own machinery, so any path the cluster reads (s3a://, hdfs://) works:

1. read the input with Spark's data sources (text for JSON Lines, csv, parquet; a Markdown folder is
   read on the driver and parallelised), keeping each row's file and split;
2. scan: executors validate every record; the driver gets counts per split and the bad records,
   and turns them into line numbers and into the input position of each split's first valid record;
3. number: executors parse the records again and give each valid one its input position `seq`;
4. process: records are range-partitioned by batch (seq // batch_size), sorted, and each batch
   goes through the job with models loaded once per executor Python process. The batches are
   the local engine's batches, so the models see the same inputs and give bit-identical results,
   and range partitioning leaves the output in input order across its part files.

Steps 2-4 run the functions of spark_tasks.py with `mapInArrow` (Spark's batched, vectorised
Python map): Arrow hands them exactly the values a local pyarrow reader sees (dates, lists, nulls),
with no pandas conversions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from content_library import (
    UTF8,
    LibraryError,
    RecordProblem,
    csv_delimiter,
    detect_format,
    iter_records,
    text_encoding,
)
from recommender.batch import BatchSummary, invalid_records_error
from recommender.batch_io import BatchError, OutputFormat, output_format
from recommender.batch_jobs import TagJob
from recommender.config import RankingConfig
from recommender.embeddings import load_embedder
from recommender.spark_tasks import (
    BLOCK,
    CORRUPT,
    FILE,
    NUMBERED_SCHEMA,
    SCAN_SCHEMA,
    EmbedderFactory,
    RecommendSpec,
    TagSpec,
    number,
    output_schema,
    process,
    scan,
)
from recommender.store import IndexStore
from recommender.tagging import Tagger

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER = "local[*]"
_GLOBS = {"jsonl": "*.{jsonl,ndjson}", "csv": "*.{csv,tsv}", "parquet": "*.parquet"}
_MAX_REPORTED = 50
# Spark warns about pandas >= 3 whenever a Python map is planned, although these maps never use pandas.
_PANDAS_WARNING = "PySpark does not yet fully support pandas"


# -- the driver ---------------------------------------------------------------------------------------


def run_tag(
    source: str,
    output: str,
    *,
    model: str,
    tagger: Tagger,
    fmt: str | None = None,
    input_format: str | None = None,
    encoding: str = UTF8,
    batch_size: int = 256,
    skip_invalid: bool = False,
    partitions: int | None = None,
    master: str = DEFAULT_MASTER,
    on_problem: Callable[[RecordProblem], None] = lambda problem: None,
    spark: SparkSession | None = None,
    embedder_factory: EmbedderFactory = load_embedder,
) -> BatchSummary:
    """`tag` on Spark. The model and tagger are checked on the driver, then loaded once per executor process.

    `embedder_factory` (called with `model` on each executor) is for tests that need a fake model.
    """
    options = _options(fmt, input_format, encoding, batch_size, skip_invalid, partitions, on_problem)
    TagJob(embedder_factory(model), tagger)  # raises ModelError on a mismatch, before any executor work
    with _session(spark, master, "recommender tag") as session:
        shared = session.sparkContext.broadcast(tagger)
        try:
            spec = TagSpec(model, shared, tagger.version, 64, embedder_factory)
            return _run(session, spec, "tag", source, output, **options)
        finally:
            shared.unpersist()


def run_recommend(
    source: str,
    output: str,
    *,
    index_dir: str | Path,
    k: int = 10,
    steps: int | None = None,
    config: RankingConfig | None = None,
    today: dt.date | None = None,
    ship_index: bool = False,
    fmt: str | None = None,
    input_format: str | None = None,
    encoding: str = UTF8,
    batch_size: int = 256,
    skip_invalid: bool = False,
    partitions: int | None = None,
    master: str = DEFAULT_MASTER,
    on_problem: Callable[[RecordProblem], None] = lambda problem: None,
    spark: SparkSession | None = None,
    embedder_factory: EmbedderFactory = load_embedder,
) -> BatchSummary:
    """`recommend-batch` on Spark (with `steps`, a nurture sequence per contact).

    Executors open the index at `index_dir`, which must be readable at that path on every executor
    (a shared file system; in local mode any local path), unless `ship_index` sends a copy to each.
    """
    options = _options(fmt, input_format, encoding, batch_size, skip_invalid, partitions, on_problem)
    index = str(Path(index_dir).resolve())
    version = IndexStore(index).manifest().version  # fails here, not on executors, if there is no index
    with _session(spark, master, "recommender recommend-batch") as session:
        if ship_index:
            session.sparkContext.addFile(index, recursive=True)
        config = config or RankingConfig()
        spec = RecommendSpec(index, ship_index, version, config, today or dt.date.today(), k, steps, embedder_factory)
        return _run(session, spec, "recommend-batch", source, output, **options)


def _options(
    fmt: str | None,
    input_format: str | None,
    encoding: str,
    batch_size: int,
    skip_invalid: bool,
    partitions: int | None,
    on_problem: Callable[[RecordProblem], None],
) -> dict[str, Any]:
    return {
        "fmt": fmt,
        "input_format": input_format,
        "encoding": text_encoding(encoding),  # an unknown name fails here, before a session starts
        "batch_size": batch_size,
        "skip_invalid": skip_invalid,
        "partitions": partitions,
        "on_problem": on_problem,
    }


def _run(
    spark: SparkSession,
    spec: Any,
    command: str,
    source: str,
    output: str,
    *,
    fmt: str | None,
    input_format: str | None,
    encoding: str,
    batch_size: int,
    skip_invalid: bool,
    partitions: int | None,
    on_problem: Callable[[RecordProblem], None],
) -> BatchSummary:
    from pyspark.sql.pandas.types import from_arrow_schema

    out_format = output_format(output, fmt)
    kind = _input_format(spark, source, input_format)
    delimiter = _csv_delimiter(spark, source) if kind == "csv" else ","
    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))  # bounds executor memory
    table = spec.job(loaded=False).table
    try:
        with warnings.catch_warnings(), _spark_errors(source):
            warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
            frame = _read(spark, source, kind, delimiter, encoding)
            text = {"delimiter": delimiter, "encoding": encoding}
            scanning = partial(scan, spec=spec, kind=kind, **text)
            scanned = frame.mapInArrow(scanning, from_arrow_schema(SCAN_SCHEMA)).cache()
            try:
                splits = _Splits(scanned.filter("kind = 'split'").collect(), kind)
                if splits.invalid:
                    _report(scanned, splits, source, skip_invalid, on_problem)
            finally:
                scanned.unpersist()
            numbered = frame.mapInArrow(
                partial(number, spec=spec, kind=kind, starts=splits.starts, batch_size=batch_size, **text),
                from_arrow_schema(NUMBERED_SCHEMA),
            )
            batches = max(1, math.ceil(splits.valid / batch_size))
            count = min(batches, partitions or 4 * spark.sparkContext.defaultParallelism)
            schema = output_schema(out_format, table)
            result = (
                numbered.repartitionByRange(count, "batch")
                .sortWithinPartitions("seq")
                .mapInArrow(partial(process, spec=spec, fmt=out_format, schema=schema), from_arrow_schema(schema))
            )
            _write(spark, result, out_format, output)
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    return BatchSummary(command, output, splits.records, splits.valid, splits.invalid)


@contextlib.contextmanager
def _spark_errors(source: str) -> Iterator[None]:
    """Spark's errors as one line: a path it cannot read, or the error that failed a task."""
    from pyspark.errors import AnalysisException, PythonException

    try:
        yield
    except AnalysisException as exc:
        raise BatchError(f"Spark cannot read '{source}': {exc}") from exc
    except PythonException as exc:
        lines = [line for line in str(exc).splitlines() if re.match(r"^[\w.]+: ", line)]
        raise BatchError(f"a Spark task failed: {lines[-1] if lines else exc}") from exc


class _Splits:
    """The scan's counts per file split, in input order: positions of valid records and line numbers."""

    def __init__(self, splits: Sequence[Any], kind: str) -> None:
        self.kind = kind
        ordered = sorted(splits, key=lambda row: (_path_order(row["file"]), row["block"]))
        self.starts: dict[tuple[str, int], int] = {}
        self.rows_before: dict[tuple[str, int], int] = {}
        self.lines_before: dict[tuple[str, int], int] = {}
        valid = 0
        per_file: dict[str, tuple[int, int]] = {}
        for row in ordered:
            key = (row["file"], row["block"])
            rows, lines = per_file.get(row["file"], (0, 0))
            self.starts[key], self.rows_before[key], self.lines_before[key] = valid, rows, lines
            per_file[row["file"]] = (rows + row["index"], lines + row["lines"])
            valid += row["valid"]
        self.valid = valid
        self.records = sum(row["records"] for row in splits)
        self.invalid = self.records - valid

    def problem(self, row: Any) -> RecordProblem:
        key = (row["file"], row["block"])
        if self.kind == "jsonl":
            location = f"line {self.rows_before[key] + row['index'] + 1}"
        elif self.kind == "csv":
            location = f"line {self.lines_before[key] + row['lines'] + 2}"  # the header is line 1
        elif self.kind == "parquet":
            location = f"row index {self.rows_before[key] + row['index']}"
        elif self.kind == "json":
            location = f"array index {self.rows_before[key] + row['index']}"
        else:
            location = ""
        return RecordProblem(_display(row["file"]), location, row["field"], row["message"])


def _report(
    scanned: DataFrame, splits: _Splits, source: str, skip_invalid: bool, on_problem: Callable[[RecordProblem], None]
) -> None:
    problems = scanned.filter("kind = 'problem'").orderBy("file", "block", "index")
    if not skip_invalid:
        shown = [splits.problem(row) for row in problems.limit(_MAX_REPORTED).collect()]
        raise invalid_records_error(source, splits.invalid, shown)
    for row in problems.toLocalIterator():
        on_problem(splits.problem(row))


def _path_order(uri: str) -> tuple[str, ...]:
    """Files in the order the local engine reads a folder (sorted paths, compared part by part)."""
    return PurePosixPath(urlparse(uri).path).parts


def _display(uri: str) -> str:
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme in ("", "file") else uri


# -- reading and writing ------------------------------------------------------------------------------


def _input_format(spark: SparkSession, source: str, given: str | None) -> str:
    if given:
        return given
    local = Path(source)
    if "://" not in source and local.is_dir():
        found = set()
        for file in local.rglob("*"):
            if file.is_file() and not any(part.startswith(".") for part in file.relative_to(local).parts):
                with contextlib.suppress(LibraryError):  # READMEs, images: not content
                    found.add(detect_format(file))
        if len(found) != 1:
            what = f"files of several formats ({', '.join(sorted(found))})" if found else "no content files"
            raise BatchError(f"'{source}' holds {what}; pass --input-format (jsonl, json, csv, parquet or markdown)")
        return found.pop()
    name = urlparse(source).path if "://" in source else source
    try:
        return detect_format(name)
    except LibraryError as exc:
        raise BatchError(f"{exc} Or pass --input-format (jsonl, json, csv, parquet or markdown).") from None


def _read(spark: SparkSession, source: str, kind: str, delimiter: str, encoding: str) -> DataFrame:
    """The input as rows, each with the file it came from and the start of its split."""
    from pyspark.sql import functions as F

    meta = [F.col("_metadata.file_path").alias(FILE), F.col("_metadata.file_block_start").alias(BLOCK)]
    if kind in ("markdown", "json"):
        return _read_on_driver(spark, source, encoding)
    reader = _reader(spark, source, kind)
    if kind == "jsonl":
        # Lines split at \n only, as Python reads them; values stay as written (no schema inference), as
        # bytes, so that a line that is not text in `encoding` is that line's problem, as it is locally.
        return reader.option("lineSep", "\n").text(source).select(F.col("value").cast("binary").alias("value"), *meta)
    if kind == "parquet":
        frame = reader.parquet(source)
        return frame.select(*[F.col(f"`{name}`") for name in frame.columns], *meta)
    if kind != "csv":
        raise BatchError(f"cannot read '{kind}' input on Spark; use jsonl, json, csv, parquet or markdown")
    # Latin-1 keeps every byte, so executors decode each row in `encoding` and tell one that is not text
    # in it (csv_cells); Spark's UTF-8 reading would replace such bytes with U+FFFD and say nothing.
    csv_options = {"header": "true", "multiLine": "true", "escape": '"', "mode": "PERMISSIVE", "sep": delimiter}
    csv_options["encoding"] = "ISO-8859-1"
    header = reader.options(**csv_options).csv(source).columns  # every column as text: no inference
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(name, StringType()) for name in [*header, CORRUPT]])
    frame = reader.options(**csv_options, columnNameOfCorruptRecord=CORRUPT).schema(schema).csv(source)
    return frame.select(*[F.col(f"`{name}`") for name in [*header, CORRUPT]], *meta)


def _reader(spark: SparkSession, source: str, kind: str) -> Any:
    options: dict[str, str] = {}
    if _is_directory(spark, source):
        options = {"recursiveFileLookup": "true", "pathGlobFilter": _GLOBS[kind]}
    return spark.read.options(**options)


def _csv_delimiter(spark: SparkSession, source: str) -> str:
    """What separates the cells, read from the header of the input's first file (content_library's rule)."""
    first = _reader(spark, source, "csv").text(source).first()
    return csv_delimiter(first.value) if first is not None else ","


def _read_on_driver(spark: SparkSession, source: str, encoding: str) -> DataFrame:
    """Markdown folders and JSON arrays are read on the driver: Markdown is one small file per asset
    written by people, and an array is one document that no split can start inside. Each record is its
    own split, numbered by its place in its file."""
    rows = []
    place: dict[str, int] = {}
    for record in iter_records(source, encoding):
        place[record.source] = index = place.get(record.source, -1) + 1
        rows.append((record.source, index, json.dumps(record.data, default=_json_value), record.error))
    schema = f"{FILE} string, {BLOCK} long, data string, error string"
    return spark.createDataFrame(rows, schema).select("data", "error", FILE, BLOCK)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)


def _hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _is_directory(spark: SparkSession, path: str) -> bool:
    hadoop_path, fs = _hadoop_path(spark, path)
    return bool(fs.exists(hadoop_path) and fs.getFileStatus(hadoop_path).isDirectory())


def _write(spark: SparkSession, result: DataFrame, fmt: OutputFormat, output: str) -> None:
    """Write to OUTPUT.partial, then rename it to OUTPUT (replacing an earlier output).

    Renames go through Hadoop's FileSystem API, so they are atomic where the file system's rename is
    (local disks, HDFS); on S3 (s3a) a rename is a copy, and `_SUCCESS` marks a complete output.
    """
    partial_path = output + ".partial"
    writer = result.write.mode("overwrite")
    if fmt is OutputFormat.JSONL:
        writer.option("lineSep", "\n").text(partial_path)
    elif fmt is OutputFormat.CSV:
        options = {"header": "true", "escape": '"', "lineSep": "\n", "emptyValue": ""}
        options |= {"ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false"}
        writer.options(**options).csv(partial_path)
    else:
        writer.parquet(partial_path)
    source, fs = _hadoop_path(spark, partial_path)
    target, _ = _hadoop_path(spark, output)
    if fs.exists(target):
        fs.delete(target, True)
    if not fs.rename(source, target):
        raise BatchError(f"could not rename {partial_path} to {output}")


def _local_workers_on_this_python(master: str) -> contextlib.AbstractContextManager[None]:
    """Local Spark workers run this interpreter (which has the project), not the first `python3` on PATH.

    PySpark reads only the PYSPARK_PYTHON variable, when the context starts; one set by the user wins.
    """
    if not master.startswith("local") or "PYSPARK_PYTHON" in os.environ:
        return contextlib.nullcontext()
    return _environment(PYSPARK_PYTHON=sys.executable)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    os.environ.update(values)
    try:
        yield
    finally:
        for key in values:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _session(spark: SparkSession | None, master: str, name: str) -> Iterator[SparkSession]:
    """The given or active session (left running), or a new one on `master` (stopped at the end)."""
    from pyspark.sql import SparkSession

    active = spark or SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        with _local_workers_on_this_python(master):
            session = SparkSession.builder.master(master).appName(name).getOrCreate()
    try:
        yield session
    finally:
        session.stop()
