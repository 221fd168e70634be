"""Batch tagging: assets per second against the model's raw encoding speed, and peak memory.

    python -m benchmarks.batch_throughput [--assets 512] [--memory-assets 200000] [--no-spark]

1. Raw encode: `embedder.encode` over the texts of N untagged assets, one call (the ceiling).
2. `tag` with the local engine over the same N assets, end to end (validation pass, language
   detection, tagger, writing): assets per second and the ratio to raw encode.
3. The same on Spark `local[2]` (session start-up excluded, model loading in the executors included).
4. Peak resident memory of a local `tag` process over 20,000 and 200,000 assets. Embedding 200,000
   texts with the real model takes hours, so this step uses a fast stand-in embedder with the real
   model's name and dimension (and the real tagger): it measures what the pipeline itself holds, and
   that this does not grow with the input. The real model adds a constant (its weights).

Prints a table and writes benchmarks/results/batch.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks._common import bar_chart
from content_library import SAMPLE_LIBRARY, Asset, load_library
from models import TAGGER_DIR
from recommender.batch import run_local
from recommender.batch_jobs import TagJob
from recommender.embeddings import Embedder, load_embedder
from recommender.tagging import Tagger

RESULTS = Path(__file__).resolve().parent / "results" / "batch.md"
BATCH_SIZE = 256
_SHORT_BODY = 600


class FastEmbedder:
    """A stand-in with a real model's name and dimension: hashed words, so microseconds per text."""

    def __init__(self, name: str, dimension: int = 896) -> None:
        self._name = name
        self._dimension = dimension

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.blake2b(word.encode(), digest_size=4).hexdigest(), 16) % self._dimension] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def fast_embedder(spec: str) -> Embedder:
    return FastEmbedder(spec)


def synthetic_assets(n: int, *, short: bool = False) -> Iterator[dict]:
    """n untagged assets cycled from the sample library, with unique ids (the tagger predicts every one)."""
    library = load_library(SAMPLE_LIBRARY).assets
    for i, asset in zip(range(n), itertools.cycle(library)):
        row = asset.model_dump(mode="json", exclude={"segments", "stages", "roles"})
        row["id"] = f"{asset.id}.{i}"
        if short:
            row["body"] = row["body"][:_SHORT_BODY]
        yield row


def write_input(path: Path, n: int, *, short: bool = False) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in synthetic_assets(n, short=short):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


@dataclass(frozen=True)
class Rate:
    """Items per second of wall-clock time and of this process's CPU time (median of the repeats)."""

    wall: float
    cpu: float | None = None


@dataclass(frozen=True)
class Results:
    texts: int
    model: str
    encode: Rate
    local: Rate
    spark: tuple[Rate, Rate] | None  # the first job, and the next one on warm workers
    memory: dict[int, tuple[float, float]]  # assets -> (peak RSS in MiB, seconds)

    def table(self) -> str:
        rows = [("raw encode, one call", self.encode, "texts"), ("tag, local engine", self.local, "assets")]
        if self.spark is not None:
            rows += [("tag, Spark local[2], first job", self.spark[0], "assets")]
            rows += [("tag, Spark local[2], next job", self.spark[1], "assets")]
        lines = ["| measure | throughput | ratio to raw encode | ratio in CPU time |", "|---|---:|---:|---:|"]
        for name, rate, unit in rows:
            cpu = f"{rate.cpu / self.encode.cpu:.2f}" if rate.cpu and self.encode.cpu else "n/a"
            lines.append(f"| {name} | {rate.wall:.2f} {unit}/s | {rate.wall / self.encode.wall:.2f} | {cpu} |")
        lines += ["", "| local `tag` input (stand-in embedder) | peak RSS | time |", "|---:|---:|---:|"]
        lines += [f"| {n:,} assets | {rss:,.0f} MiB | {seconds:,.0f} s |" for n, (rss, seconds) in self.memory.items()]
        return "\n".join(lines)


def measure(
    texts: int,
    memory_sizes: Sequence[int],
    *,
    spark: bool,
    model: str | None,
    work: Path,
    repeat: int = 3,
) -> Results:
    """Raw encode and local `tag` alternate `repeat` times and the median of each counts: other work on
    the machine then slows both alike instead of whichever ran while it did."""
    fake = model == "fake"
    tagger = Tagger.load(TAGGER_DIR)
    embedder = FastEmbedder(tagger.model_) if fake else load_embedder(model or tagger.model_)
    source = write_input(work / "assets.jsonl", texts)
    all_texts = [Asset.model_validate(row).text for row in synthetic_assets(texts)]
    embedder.encode(all_texts[:8])  # warm up: the first call pays one-off set-up
    encodes, tags = [], []
    for _ in range(repeat):
        encodes.append(_timed(texts, lambda: embedder.encode(all_texts, batch_size=64)))
        job = partial(run_local, TagJob(embedder, tagger), source, work / "local.jsonl", batch_size=BATCH_SIZE)
        tags.append(_timed(texts, job))
    spark_rate = _spark_rate(source, work, tagger, texts, fake) if spark else None
    memory = {n: _peak_memory(n, work) for n in memory_sizes}
    name = "stand-in" if fake else embedder.name
    return Results(texts, name, _median(encodes), _median(tags), spark_rate, memory)


def _timed(n: int, work: Callable[[], object]) -> Rate:
    cpu_started, started = _cpu_seconds(), time.perf_counter()
    work()
    return Rate(n / (time.perf_counter() - started), n / max(_cpu_seconds() - cpu_started, 1e-9))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _median(rates: Sequence[Rate]) -> Rate:
    cpu = [r.cpu for r in rates if r.cpu]
    return Rate(float(np.median([r.wall for r in rates])), float(np.median(cpu)) if cpu else None)


def _spark_rate(source: Path, work: Path, tagger: Tagger, texts: int, fake: bool) -> tuple[Rate, Rate]:
    """Two jobs in one session: the first starts the Python workers and loads the model in each."""
    import warnings

    from pyspark import cloudpickle
    from pyspark.sql import SparkSession

    from recommender import spark_engine

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # executors do not import benchmarks/
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers on this interpreter, not PATH's
    session = SparkSession.builder.master("local[2]").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    rates = []
    try:
        for job in ("first", "next"):
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                spark_engine.run_tag(
                    str(source),
                    str(work / f"spark-{job}.jsonl"),
                    model=tagger.model_,
                    tagger=tagger,
                    batch_size=BATCH_SIZE,
                    spark=session,
                    embedder_factory=fast_embedder if fake else load_embedder,
                )
            rates.append(Rate(texts / (time.perf_counter() - started)))  # executors' CPU is not ours to count
    finally:
        session.stop()
    return rates[0], rates[1]


def _peak_memory(n: int, work: Path) -> tuple[float, float]:
    """Peak RSS of a fresh process that tags n short assets with the stand-in embedder."""
    source = write_input(work / f"memory-{n}.jsonl", n, short=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch_throughput", "--child-memory", str(source)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(done.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def _child_memory(source: Path) -> None:
    tagger = Tagger.load(TAGGER_DIR)
    run_local(
        TagJob(FastEmbedder(tagger.model_), tagger), source, source.with_suffix(".out.jsonl"), batch_size=BATCH_SIZE
    )
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak (a loaded model) across fork and exec.
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    print(int(peak.split()[1]) / 1024)  # kB


def report(results: Results, path: Path) -> str:
    text = (
        "# Batch tagging throughput\n\n"
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} CPUs with "
        f"`python -m benchmarks.batch_throughput`: {results.texts} untagged sample assets, "
        f"model {results.model}, batches of {BATCH_SIZE}.\n\n"
        f"{results.table()}\n\n"
        "Raw encode is one `encode` call over all texts; it and local `tag` alternate three times and the "
        "median of each counts (each Spark job runs once). Throughput is wall-clock; the CPU-time ratio "
        "counts this process's CPU seconds, which other work on a shared machine disturbs less. `tag` "
        "includes the validation pass, language detection, the tagger and writing JSON Lines; on Spark the "
        "first job also starts the executors' Python workers and "
        "loads the model in each, which the next job of the same application finds loaded. Peak memory is "
        "measured with a stand-in embedder (hours of embedding otherwise) on assets whose bodies are cut to "
        f"{_SHORT_BODY} characters; the real model adds its weights, a constant.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    ratios = {"tag, local": results.local.wall / results.encode.wall}
    if results.spark is not None:
        ratios["Spark, first job"] = results.spark[0].wall / results.encode.wall
        ratios["Spark, next job"] = results.spark[1].wall / results.encode.wall
    bar_chart(
        path.with_suffix(".png"),
        f"Batch tagging, {results.texts} assets: throughput / raw encode",
        ["wall-clock ratio"],
        {name: [ratio] for name, ratio in ratios.items()},
        "ratio to raw encode",
        line=0.85,
    )
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=512, help="Assets for the throughput runs (default 512).")
    parser.add_argument("--memory-assets", type=int, nargs="*", default=[20_000, 200_000], help="Sizes for peak RSS.")
    parser.add_argument("--no-spark", action="store_true", help="Skip the Spark local[2] run.")
    parser.add_argument("--model", default=None, help="Embedding model (default: the tagger's), or 'fake'.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where to write the Markdown report.")
    parser.add_argument("--child-memory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        _child_memory(args.child_memory)
        return
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as work:
        results = measure(args.assets, args.memory_assets, spark=not args.no_spark, model=args.model, work=Path(work))
    print(report(results, args.results))


if __name__ == "__main__":
    main()
