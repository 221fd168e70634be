"""Running the benchmarks: sizes, the model, where results go, and the summary of every table."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import RESULTS, Table, machine
from recommender.config import DEFAULT_MODEL
from recommender.embeddings import Embedder

QUICK_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)
BENCHMARKS = ("build", "latency", "http", "memory", "batch", "campaign")
#: `--model stand-in`: synthetic query vectors instead of the model (for tests and trying the suite out).
STAND_IN = "stand-in"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"Libraries of {', '.join(map(str, QUICK_SIZES))} only.")
    parser.add_argument("--sizes", type=int, nargs="+", help="Library sizes (default 10k 100k 1M).")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS, help="Run only these.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"Embedding model, or '{STAND_IN}' (no model).")
    parser.add_argument("--seconds", type=float, help="Seconds per HTTP load run (default 20, --quick 10).")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Folder for the tables and charts.")
    parser.add_argument("--work", type=Path, help="Folder caching the synthetic libraries (default benchmarks/.work).")
    args = parser.parse_args(argv)
    if args.work:
        from benchmarks import library

        library.WORK = args.work
    sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    run(sizes, args.only, model=args.model, quick=args.quick, seconds=args.seconds, folder=args.results)


def run(
    sizes: Sequence[int],
    only: Sequence[str],
    *,
    model: str,
    quick: bool,
    seconds: float | None,
    folder: Path,
) -> list[Table]:
    tables: list[Table] = []
    durations: dict[str, float] = {}
    print(f"benchmarks {', '.join(only)} at {', '.join(f'{s:,}' for s in sizes)} assets on {machine()}", flush=True)
    embedder = None
    for name in BENCHMARKS:
        if name not in only:
            continue
        print(f"{name}:", flush=True)
        started = time.perf_counter()
        if name in ("build", "latency", "campaign") and embedder is None:
            embedder = _embedder(model, max(sizes))
        table = _run_one(name, sizes, embedder, model=model, quick=quick, seconds=seconds, folder=folder)
        durations[name] = time.perf_counter() - started
        if table is not None:
            tables.append(table)
            print(table.markdown(), flush=True)
        print(f"{name}: {durations[name]:.0f} s", flush=True)
    summary(durations, folder)
    return tables


def summary(durations: dict[str, float], folder: Path) -> Path:
    """results/README.md: the latest table of every benchmark in `folder`, whichever run wrote it."""
    parts = ["# Benchmark results\n", f"The latest table of each benchmark. Last run: {_durations(durations)}.\n"]
    for name in ("index_build", "latency", "campaign", "http", "memory", "batch"):
        path = folder / f"{name}.md"
        if path.exists():
            parts.append("#" + path.read_text(encoding="utf-8").strip() + "\n")  # each title one level down
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "README.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _durations(durations: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items()) or "none"


def _embedder(model: str, size: int) -> Embedder:
    if model == STAND_IN:
        from benchmarks.library import StandInEmbedder

        return StandInEmbedder(size)
    from recommender.embeddings import load_embedder

    embedder = load_embedder(model)
    embedder.encode_query("warm up")  # the first call of a process initialises the runtime
    return embedder


def _run_one(
    name: str,
    sizes: Sequence[int],
    embedder: Embedder | None,
    *,
    model: str,
    quick: bool,
    seconds: float | None,
    folder: Path,
) -> Table | None:
    if name == "build":
        from benchmarks import index_build

        return index_build.run(embedder, quick=quick, folder=folder)
    if name == "latency":
        from benchmarks import latency

        return latency.run(sizes, embedder, quick=quick, folder=folder)
    if name == "campaign":
        from benchmarks import campaign

        return campaign.run(sizes, embedder, quick=quick, folder=folder)
    if name == "http":
        from benchmarks import http

        return http.run(sizes, model=model, seconds=seconds or (10.0 if quick else 20.0), folder=folder)
    if name == "memory":
        from benchmarks import memory

        return memory.run(sizes, model=model, folder=folder)
    from benchmarks import batch

    return batch.run(model=model, quick=quick, folder=folder)
