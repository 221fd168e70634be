"""6. Campaign batches: many contacts answered together (`recommend_many`, `sequence_many`) against one at a time.

An email campaign asks for hundreds of contacts at once (`recommend-batch`, `/v1/*/batch`), and its
contacts usually share a few campaign queries. Answered together, each distinct query is embedded once
and searched once for every contact that asks it; the baseline, measured in the same run and alternated
with it, answers the same contacts one at a time (`recommend`, `sequence`) from an empty query cache,
so that it embeds each distinct query once too. A second mix gives every contact a query of its own:
nothing to share but the model's batching.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from benchmarks import library
from benchmarks._common import RESULTS, Log, Table
from benchmarks.latency import BUYER_QUERIES, SEQUENCE_STEPS, approximate_index, buyers
from recommender import ann
from recommender.embeddings import Embedder
from recommender.engine import Recommender
from recommender.types import BuyerRequest

#: Contacts per batch: the local batch engine's default batch size.
CONTACTS = 256
#: Alternations of together / one at a time; medians are reported.
ROUNDS = 3


@dataclass
class CampaignResult:
    size: int
    kind: str  # "exact" or "approximate"
    contacts: int
    lists: tuple[float, float]  # seconds a contact: together, one at a time (shared campaign queries)
    sequences: tuple[float, float]
    own_queries: tuple[float, float]  # lists, every contact with a query of its own


def campaign(contacts: int, *, shared: bool) -> list[BuyerRequest]:
    """`contacts` buyers of every kind, asking the campaign queries in turn, or each a text of its own."""
    mix = itertools.islice(itertools.cycle(buyers()), contacts)
    return [
        request.model_copy(update={"query": BUYER_QUERIES[i % len(BUYER_QUERIES)] + ("" if shared else f" c{i}")})
        for i, request in enumerate(mix)
    ]


def measure_size(size: int, embedder: Embedder, *, contacts: int, log: Log = print) -> list[CampaignResult]:
    built = library.ensure(size)
    recommender = Recommender(built.index_dir, embedder, verify=False, today=lambda: dt.date(2026, 1, 1))
    snapshot = recommender.snapshot
    served = snapshot.index  # kept referenced: the snapshot's vector view points into it
    stored = ann.stored_vectors(served)
    indexes = {"exact": ann.build(stored, "flat"), "approximate": approximate_index(served, stored, size, library.WORK)}
    shared, own = campaign(contacts, shared=True), campaign(contacts, shared=False)

    def one_at_a_time(answer: Callable[[BuyerRequest], object], requests: list[BuyerRequest]) -> Callable[[], object]:
        def run() -> object:
            recommender.embed_query.cache_clear()
            return [answer(request) for request in requests]

        return run

    out = []
    for kind, index in indexes.items():
        log(f"  {size:,} {kind}: {contacts} contacts")
        snapshot.index = index
        out.append(
            CampaignResult(
                size,
                kind,
                contacts,
                _per_contact(
                    contacts, lambda: recommender.recommend_many(shared), one_at_a_time(recommender.recommend, shared)
                ),
                _per_contact(
                    contacts,
                    lambda: recommender.sequence_many(shared, SEQUENCE_STEPS),
                    one_at_a_time(lambda r: recommender.sequence(r, SEQUENCE_STEPS), shared),
                ),
                _per_contact(
                    contacts, lambda: recommender.recommend_many(own), one_at_a_time(recommender.recommend, own)
                ),
            )
        )
    snapshot.index = served
    del stored
    recommender.close()
    return out


def _per_contact(contacts: int, together: Callable[[], object], alone: Callable[[], object]) -> tuple[float, float]:
    """Median seconds a contact of each call over `ROUNDS` alternations, after one untimed call of each."""
    together(), alone()
    timed: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        for call, seconds in ((together, timed[0]), (alone, timed[1])):
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
    return statistics.median(timed[0]) / contacts, statistics.median(timed[1]) / contacts


def report(results: Sequence[CampaignResult], folder: Path) -> Table:
    table = Table(
        "campaign",
        "Campaign batches: together against one at a time",
        [
            "assets",
            "index",
            "contacts",
            f"lists, {len(BUYER_QUERIES)} shared queries: ms a contact together / alone",
            "ratio",
            f"{SEQUENCE_STEPS}-step sequences, {len(BUYER_QUERIES)} shared queries: together / alone",
            "ratio",
            "lists, a query each: together / alone",
            "ratio",
        ],
    )
    for r in results:
        cells = []
        for together, alone in (r.lists, r.sequences, r.own_queries):
            cells += [f"{together * 1000:.2f} / {alone * 1000:.2f}", f"{together / alone:.2f}"]
        table.add(f"{r.size:,}", r.kind, str(r.contacts), *cells)
    table.notes.append(
        f"Each cell is the median of {ROUNDS} alternated runs over the same contacts, divided by their number. "
        "'Together' embeds the batch's distinct queries in one call and searches the index once per distinct "
        "query; 'alone' is `recommend` or `sequence` per contact, from an empty query cache (each distinct "
        "query embedded once). Vectors are synthetic (benchmarks/library.py), query vectors the model's; BLAS "
        "on one thread, as in the server and batch processes."
    )
    table.write(folder)
    return table


def run(sizes: Sequence[int], embedder: Embedder, *, quick: bool, folder: Path = RESULTS, log: Log = print) -> Table:
    results: list[CampaignResult] = []
    with threadpool_limits(1, user_api="blas"):
        for size in sizes:
            # An exact search of a million vectors takes a tenth of a second: fewer contacts there.
            contacts = 64 if quick or size >= 1_000_000 else CONTACTS
            results += measure_size(size, embedder, contacts=contacts, log=log)
    return report(results, folder)
