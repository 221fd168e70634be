"""Offline batch runs on this machine: streaming, batched, crash-safe and resumable.

The local engine reads the input as a stream, `batch_size` records at a time (never the whole
file in memory), runs a job (batch_jobs.py) on each batch and writes through a partial file that
survives a crash (batch_io.py); `resume` continues a killed run after its last finished batch.

The input is read twice: a first pass validates every record, so a bad record 900,000 lines in is
reported before hours of embedding, together with all the others, and counts the records for the
progress bar; the second pass does the work.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from content_library import UTF8, LibraryError, RecordInvalid, RecordProblem, iter_records, text_encoding
from recommender.batch_io import OutputFormat, PartialOutput, ResumeState, output_format
from recommender.batch_jobs import Job

DEFAULT_BATCH_SIZE = 256
_LINE_FORMAT = "{n_fmt}/{total_fmt} {unit}s ({percentage:.0f}%), {rate_fmt}, elapsed {elapsed}, ETA {remaining}"
#: Without --skip-invalid the run stops before any work, listing at most this many problems.
_MAX_REPORTED = 50


class ProgressMode(StrEnum):
    BAR = "bar"  # tqdm, with rate and ETA, for a terminal
    LINES = "lines"  # a plain line now and then, for logs
    OFF = "off"


@dataclass(frozen=True)
class BatchSummary:
    command: str
    output: str
    read: int
    written: int
    skipped: int
    resumed_at: int = 0

    def line(self) -> str:
        resumed = f", resumed after record {self.resumed_at}" if self.resumed_at else ""
        return (
            f"{self.command}: read {self.read} records, wrote {self.written}, "
            f"skipped {self.skipped} invalid{resumed}; output {self.output}"
        )


@dataclass(frozen=True)
class Scan:
    """What the validating first pass found: counts, and a fingerprint of every record's content."""

    records: int
    invalid: int
    fingerprint: str


def scan_input(
    job: Job,
    source: str | os.PathLike[str],
    *,
    skip_invalid: bool,
    on_problem: Callable[[RecordProblem], None],
    encoding: str = UTF8,
) -> Scan:
    """Validate every record; without `skip_invalid` any bad one stops the run, all of them listed."""
    digest = hashlib.sha256()
    records = invalid = 0
    shown: list[RecordProblem] = []
    for record in iter_records(source, encoding):
        records += 1
        data = json.dumps(record.data, sort_keys=True, ensure_ascii=False, default=str)
        digest.update(f"{record.location}\t{record.error}\t{data}\n".encode())
        try:
            job.check(record)
        except RecordInvalid as exc:
            invalid += 1
            for problem in exc.problems:
                if skip_invalid:
                    on_problem(problem)
                elif len(shown) < _MAX_REPORTED:
                    shown.append(problem)
    if invalid and not skip_invalid:
        raise invalid_records_error(source, invalid, shown)
    return Scan(records, invalid, digest.hexdigest())


def invalid_records_error(source: Any, invalid: int, shown: Sequence[RecordProblem]) -> LibraryError:
    more = f" (the first {len(shown)} problems below)" if invalid > _MAX_REPORTED else ""
    return LibraryError(
        f"Found {invalid} invalid record(s) in {source}{more}. Fix them, or pass --skip-invalid to skip them:",
        shown,
    )


def run_local(
    job: Job,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    encoding: str = UTF8,
    batch_size: int = DEFAULT_BATCH_SIZE,
    skip_invalid: bool = False,
    resume: bool = False,
    progress: ProgressMode = ProgressMode.OFF,
    progress_every: float = 30.0,
    on_problem: Callable[[RecordProblem], None] = lambda problem: None,
    stream: IO[str] | None = None,
) -> BatchSummary:
    """Run `job` over the records of `source`, writing `output` atomically, `batch_size` records at a time.

    Text input is read in `encoding` (`content_library.text_encoding`). `progress` shows a bar, or a
    plain line every `progress_every` seconds. With `resume`, a run
    interrupted on the same input and settings continues after its last finished batch; without it,
    any earlier partial output is discarded.
    """
    out_format = output_format(output, fmt)
    encoding = text_encoding(encoding)
    scan = scan_input(job, source, skip_invalid=skip_invalid, on_problem=on_problem, encoding=encoding)
    partial = PartialOutput(output, out_format, job.table)
    try:
        state = _open_partial(job, partial, scan, out_format, batch_size, skip_invalid, resume)
        resumed_at = state.records
        if partial.done:
            return BatchSummary(job.command, str(output), state.records, state.written, state.skipped, resumed_at)
        records = iter_records(source, encoding)
        for _ in itertools.islice(records, state.records):  # finished batches: read past, not redone
            pass
        meter = Progress(progress, scan.records, state.records, job.unit, every=progress_every, stream=stream)
        batch: list[Any] = []
        consumed = invalid = 0
        for record in records:
            consumed += 1
            try:
                batch.append(job.parse(record))
            except RecordInvalid:
                invalid += 1  # reported by the scan
                continue
            if len(batch) == batch_size:
                partial.append(job.process(batch), records=consumed, skipped=invalid)
                meter.update(consumed)
                batch, consumed, invalid = [], 0, 0
        if batch or consumed:
            partial.append(job.process(batch) if batch else [], records=consumed, skipped=invalid)
            meter.update(consumed)
        meter.close()
        partial.finish()
    finally:
        partial.close()
    return BatchSummary(job.command, str(output), state.records, state.written, state.skipped, resumed_at)


def _open_partial(
    job: Job,
    partial: PartialOutput,
    scan: Scan,
    out_format: OutputFormat,
    batch_size: int,
    skip_invalid: bool,
    resume: bool,
) -> ResumeState:
    def settings() -> dict[str, Any]:
        return {**job.settings(), "batch_size": batch_size, "format": out_format.value, "skip_invalid": skip_invalid}

    if resume and partial.can_resume():
        saved = partial.read_state()
        job.adopt(saved.settings)
        return partial.resume(saved, job.command, scan.fingerprint, settings())
    return partial.start(job.command, scan.fingerprint, settings())


class Progress:
    """Records done out of the total: a tqdm bar with rate and ETA, or a plain line now and then for logs."""

    def __init__(
        self,
        mode: ProgressMode,
        total: int,
        initial: int,
        unit: str,
        *,
        every: float = 30.0,
        stream: IO[str] | None = None,
    ) -> None:
        from tqdm import tqdm

        self._stream = stream or sys.stderr
        self._mode = mode
        self._every = every
        self._total = total
        self._done = initial
        self._initial = self._shown = initial
        self._started = self._last = time.monotonic()
        self._unit = unit
        self._bar = None
        if mode is ProgressMode.BAR:
            self._bar = tqdm(total=total, initial=initial, unit=unit, file=self._stream, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._mode is ProgressMode.LINES and time.monotonic() - self._last >= self._every:
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._mode is ProgressMode.LINES and self._done != self._shown:
            self._line()

    def _line(self) -> None:
        from tqdm import tqdm

        self._last = now = time.monotonic()
        self._shown = self._done
        meter = tqdm.format_meter(
            self._done,
            self._total,
            now - self._started,
            unit=self._unit,
            initial=self._initial,  # the rate counts this run's records only
            bar_format=_LINE_FORMAT,
        )
        self._stream.write(f"progress: {meter}\n")
        self._stream.flush()
