"""FAISS indexes over L2-normalised vectors: exact for small libraries, HNSW for large ones.

Inner product of normalised vectors is cosine similarity. Indexes are written to one file and read
back memory-mapped (`IO_FLAG_MMAP_IFC`), so gunicorn workers on one machine share the pages of one
copy instead of each holding its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path

import faiss
import numpy as np

from recommender.errors import IndexCorrupt

#: Below this many assets an exact scan is fast enough (about 1.5 ms per 10,000 x 384 floats here).
AUTO_APPROXIMATE_FROM = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
#: efSearch is at least this and at least the number of candidates asked for.
HNSW_EF_SEARCH = 128
#: Nearest neighbours kept per asset (see `neighbours`).
NEIGHBOURS = 5


class IndexKind(StrEnum):
    AUTO = "auto"
    FLAT = "flat"
    HNSW = "hnsw"


def resolve_kind(kind: IndexKind | str, n: int) -> IndexKind:
    kind = IndexKind(kind)
    if kind is IndexKind.AUTO:
        return IndexKind.HNSW if n >= AUTO_APPROXIMATE_FROM else IndexKind.FLAT
    return kind


def build(vectors: np.ndarray, kind: IndexKind | str = IndexKind.AUTO) -> faiss.Index:
    """Index `vectors` (n, d) float32, rows L2-normalised; row i gets FAISS id i."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    kind = resolve_kind(kind, n)
    if kind is IndexKind.HNSW:
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatIP(d)
    if n:
        index.add(vectors)
    return index


def kind_of(index: faiss.Index) -> IndexKind:
    return IndexKind.HNSW if isinstance(index, faiss.IndexHNSW) else IndexKind.FLAT


def write(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read(path: Path, *, mmap: bool = True) -> faiss.Index:
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    except RuntimeError as exc:
        raise IndexCorrupt(f"{path} is not a readable FAISS index ({str(exc).splitlines()[0]})") from exc


def search(
    index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` rows for one query vector (d,). Returns (scores, rows), best first, without padding.

    `allowed` (ntotal,) bool, when given, limits the answer to rows where it is True: FAISS skips
    the others while it searches, so `k` allowed rows come back however many are excluded.

    Of rows with equal scores the lower come first, and the lower are kept at the k-th place: FAISS
    keeps any of them, so a tie there is searched past to its end. A search asking for more rows
    then begins with the rows of one asking fewer (`consistent_rows`).
    """
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    selector = None
    if allowed is not None:
        selector = faiss.IDSelectorBitmap(np.packbits(allowed, bitorder="little"))
    query = np.ascontiguousarray(query[None, :], dtype=np.float32)
    asked = min(k + 1, index.ntotal)
    scores, rows = _search(index, query, asked, selector)
    while len(rows) == asked > k and asked < index.ntotal and scores[-1] == scores[k - 1]:
        asked = min(2 * asked, index.ntotal)
        scores, rows = _search(index, query, asked, selector)
    order = np.lexsort((rows, -scores))[:k]
    return scores[order], rows[order]


def _search(
    index: faiss.Index, query: np.ndarray, k: int, selector: faiss.IDSelector | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), sel=selector)
    else:
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
    with _one_thread():
        scores, rows = index.search(query, k, params=params)
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]


def consistent_rows(index: faiss.Index) -> int:
    """Up to how many rows a search begins with the rows of any search asking fewer.

    An exact search always does. HNSW's candidates are as many as its efSearch, the larger of
    `HNSW_EF_SEARCH` and the rows asked for (one more than `k`, see `search`): beyond it, asking
    more finds other candidates.
    """
    return HNSW_EF_SEARCH - 1 if isinstance(index, faiss.IndexHNSW) else index.ntotal


def stored_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector as a read-only (ntotal, d) float32 array over the index's own memory (no copy).

    Taking rows from it is plain numpy indexing, several times cheaper than `reconstruct_batch`
    for the few hundred rows a request reads. The array keeps `index` alive.
    """
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    if not isinstance(flat, faiss.IndexFlat):
        raise NotImplementedError(f"{type(flat).__name__} does not store plain vectors")
    if flat.ntotal == 0:
        return np.zeros((0, flat.d), dtype=np.float32)
    return np.asarray(_Storage(index, flat))


class _Storage:
    """The array interface of an index's stored vectors; the array made from it holds this, and so the index."""

    def __init__(self, index: faiss.Index, flat: faiss.IndexFlat) -> None:
        self.index = index
        address = faiss.rev_swig_ptr(flat.get_xb(), 1).__array_interface__["data"][0]
        self.__array_interface__ = {
            "shape": (flat.ntotal, flat.d),
            "typestr": "<f4",
            "data": (address, True),  # read-only
            "version": 3,
        }


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run FAISS on the calling thread only, for one query.

    For a single query, OpenMP's extra threads only spin beside the one doing the work: on two busy
    cores a search then took 7 times the CPU time (benchmarks/NOTES.md). The setting is per thread
    in OpenMP, so a concurrent bulk search (an index build) keeps its threads.
    """
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def neighbours(index: faiss.Index, vectors: np.ndarray, k: int = NEIGHBOURS, batch: int = 4096) -> np.ndarray:
    """Each row's `k` nearest other rows in `index`, shape (n, k) int32, -1 where there are fewer.

    `vectors` (n, d) are the indexed vectors themselves, row i being FAISS id i. The ranking uses
    these lists to judge an asset's topic by its neighbourhood as well as by itself.
    """
    n = len(vectors)
    out = np.full((n, k), -1, dtype=np.int32)
    if n < 2:
        return out
    params = (
        faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k + 1)) if isinstance(index, faiss.IndexHNSW) else None
    )
    for start in range(0, n, batch):
        block = np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32)
        _, rows = index.search(block, min(k + 1, n), params=params)
        for i, found in enumerate(rows):
            others = found[(found != start + i) & (found >= 0)][:k]
            out[start + i, : len(others)] = others
    return out


def neighbour_means(
    lists: np.ndarray, vectors_of: Callable[[np.ndarray], np.ndarray], dimension: int, batch: int = 4096
) -> np.ndarray:
    """The mean vector of each row's listed neighbours, shape (n, dimension) float32; zeros for none.

    `lists` (n, k) are neighbour rows, -1 padded; `vectors_of` returns the vectors of rows. A query's
    dot product with a mean is the mean of its cosines to the neighbours, so the ranking reads one
    row per candidate instead of one per neighbour.
    """
    out = np.zeros((len(lists), dimension), dtype=np.float32)
    for start in range(0, len(lists), batch):
        block = lists[start : start + batch]
        listed = block >= 0
        total = out[start : start + batch]
        for j in range(block.shape[1]):
            has = np.flatnonzero(listed[:, j])
            if len(has):
                total[has] += vectors_of(block[has, j])
        count = listed.sum(axis=1)
        np.divide(total, count[:, None], out=total, where=count[:, None] > 0)
    return out


def group_means(vectors: np.ndarray, groups: np.ndarray, count: int, batch: int = 65536) -> np.ndarray:
    """The mean vector of each group's rows, shape (count, d) float32, zeros for a group without any.

    `groups` (n,) are codes below `count`: languages or asset types. A query's dot product with a
    group's mean is its mean cosine to that group's assets: how much the model favours the group
    (ranking.group_lean).
    """
    sums = np.zeros((count, vectors.shape[1]), dtype=np.float64)
    counts = np.zeros(count, dtype=np.int64)
    for start in range(0, len(vectors), batch):
        block = np.asarray(vectors[start : start + batch], dtype=np.float32)
        block_groups = np.asarray(groups[start : start + batch])
        for code in np.unique(block_groups):
            mine = block_groups == code
            sums[code] += block[mine].sum(axis=0, dtype=np.float64)
            counts[code] += int(mine.sum())
    np.divide(sums, counts[:, None], out=sums, where=counts[:, None] > 0)
    return sums.astype(np.float32)
