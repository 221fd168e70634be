"""4. Memory of the server: resident and proportional set size per library size and worker count.

For each size, gunicorn serves the library with 1 worker and then with 4, each after 1,000
requests (so every worker has touched its index pages). Read from /proc/<pid>/smaps_rollup of the
master and its workers: RSS counts a shared page once per process that maps it, PSS splits it
between them. The memory-mapped index files (vectors, ids, features) are file pages in the page
cache, shared by every worker; the model's weights are shared too, because the app is loaded in
the master before the workers fork. So total PSS with 4 workers stays well under 4 x the RSS of
one. Bytes per asset: the index on disk, and the growth of the server's PSS from the smallest
library to the largest, divided by the assets added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import library
from benchmarks._common import RESULTS, Log, Table, bar_chart, size_label
from benchmarks.server import Memory, memory, post, serve
from recommender.store import IndexStore

WORKER_COUNTS = (1, 4)
_REQUESTS = 1000
_MIB = 1024 * 1024


@dataclass(frozen=True)
class MemoryRun:
    size: int
    workers: int
    memory: Memory
    disk: int  # bytes of the index version on disk


def measure(size: int, workers: int, *, model: str, log_file: Path) -> MemoryRun:
    built = library.ensure(size)
    with serve(built.index_dir, size=size, model=model, workers=workers, log=log_file) as server:
        for i in range(_REQUESTS):
            body = {"segment": ("enterprise", "smb")[i % 2], "stage": "awareness", "k": 10}
            if i % 4 == 0:
                body["query"] = f"invoice approval {i % 50}"
            post(server, "/v1/recommendations", body)
        used = memory(server)
    store = IndexStore(built.index_dir)
    disk = sum(p.stat().st_size for p in store.version_dir(store.require_current()).rglob("*") if p.is_file())
    return MemoryRun(size, workers, used, disk)


def run(sizes: Sequence[int], *, model: str, folder: Path = RESULTS, log: Log = print) -> Table:
    folder.mkdir(parents=True, exist_ok=True)
    log_file = library.WORK / "memory-server.log"  # git-ignored: logs are not results
    log_file.unlink(missing_ok=True)
    runs: list[MemoryRun] = []
    for size in sizes:
        for workers in WORKER_COUNTS:
            runs.append(measure(size, workers, model=model, log_file=log_file))
            m = runs[-1].memory
            log(f"  {size_label(size)} x{workers}: RSS {m.rss / _MIB:,.0f} MiB, PSS {m.pss / _MIB:,.0f} MiB")
    table = Table(
        "memory",
        "Server memory (gunicorn master + workers, after 1,000 requests)",
        [
            "assets",
            "workers",
            "RSS total MiB",
            "PSS total MiB",
            "of which file-backed (shared maps) MiB",
            "largest worker RSS MiB",
            "PSS / (workers x one worker's RSS)",
            "index on disk MiB",
            "disk bytes per asset",
        ],
    )
    for r in runs:
        m = r.memory
        table.add(
            f"{r.size:,}",
            r.workers,
            f"{m.rss / _MIB:,.0f}",
            f"{m.pss / _MIB:,.0f}",
            f"{m.pss_file / _MIB:,.0f}",
            f"{m.worker_rss / _MIB:,.0f}",
            f"{m.pss / (r.workers * m.worker_rss):.2f}",
            f"{r.disk / _MIB:,.0f}",
            f"{r.disk / r.size:,.0f}",
        )
    one = [r for r in runs if r.workers == 1]
    if len(one) > 1:
        growth = (one[-1].memory.pss - one[0].memory.pss) / (one[-1].size - one[0].size)
        table.notes.append(
            f"One worker's server grows by {growth:,.0f} bytes of PSS per asset from {one[0].size:,} to "
            f"{one[-1].size:,} assets (vectors of {library.DIMENSION} float32 = {library.DIMENSION * 4:,} bytes, "
            "the HNSW graph, ids, features and SQLite pages touched)."
        )
    table.notes.append(
        "RSS counts a shared page in every process that maps it; PSS divides it among them, so PSS total is "
        "what the server really holds. The index files are memory-mapped and the model is loaded before the "
        "workers fork, so extra workers add little: compare PSS with workers x one worker's RSS."
    )
    table.write(folder)
    groups = [f"{size_label(r.size)} x{r.workers}" for r in runs]
    bar_chart(
        folder / "memory.png",
        "Server memory, MiB",
        groups,
        {"RSS total": [r.memory.rss / _MIB for r in runs], "PSS total": [r.memory.pss / _MIB for r in runs]},
        "MiB",
    )
    return table
