"""Synthetic libraries of any size, written as real index versions and cached under benchmarks/.work/.

Assets are the shipped sample library's assets repeated under new ids (so bodies, titles and stored
JSON have realistic sizes), with predicted-style label confidences. Their vectors are SYNTHETIC:
clustered unit vectors in the default model's dimension, not embeddings of the texts. Clusters
(topics) make approximate search behave as on real embeddings, where uniform noise would make every
neighbour equally far and recall meaningless. They serve the search and serving benchmarks only;
the index build benchmark embeds real texts with the real model.

The index itself is written by the product (`IndexStore.write_version`, the FAISS kind chosen by
size exactly as `build-index` chooses it), so the files served are the files a user would have.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from content_library import SAMPLE_LIBRARY, Asset, load_library
from content_library.schema import LABEL_FIELDS
from recommender.config import DEFAULT_MODEL
from recommender.store import IndexStore
from recommender.types import AssetLabels, FieldLabels, LabelSource

WORK = Path(__file__).resolve().parent / ".work"
#: The default model's dimension (MiniLM 384 + USE 512): the synthetic vectors live in its space.
DIMENSION = 896
#: Bump when the generator changes, so cached indexes of the old recipe are not reused.
RECIPE = 1
#: Noise around a topic centre: within a topic cosines come out near 0.5, across topics near 0,
#: about what the real model gives for same-topic and unrelated marketing texts.
_NOISE = 1.0


@dataclass(frozen=True)
class SyntheticLibrary:
    size: int
    index_dir: Path
    seconds: float  # to write the index (0.0 when it came from the cache)


def topics(size: int) -> int:
    """Topics grow with the library (a bigger network covers more subjects), about 500 assets each."""
    return max(8, size // 500)


def vectors(size: int, seed: int = 0, *, start: int = 0, count: int | None = None) -> np.ndarray:
    """Rows `start`..`start+count` of the library's clustered unit vectors, shape (count, DIMENSION) float32.

    Row i's topic and noise depend only on (seed, i), so any slice is reproducible on its own.
    """
    count = size - start if count is None else count
    centres = _centres(size, seed)
    out = np.empty((count, DIMENSION), dtype=np.float32)
    for block in range(start, start + count, 65_536):
        end = min(block + 65_536, start + count)
        rng = np.random.default_rng([seed, block])
        topic = rng.integers(0, len(centres), end - block)
        noisy = centres[topic] + rng.standard_normal((end - block, DIMENSION), dtype=np.float32) * _NOISE
        out[block - start : end - start] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def queries(size: int, n: int, seed: int = 1) -> np.ndarray:
    """n query vectors drawn like the library's (a topic centre plus noise), none of them in it."""
    centres = _centres(size, 0)
    rng = np.random.default_rng([seed, size])
    noise = rng.standard_normal((n, DIMENSION), dtype=np.float32) * _NOISE
    noisy = centres[rng.integers(0, len(centres), n)] + noise
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def assets(size: int) -> Iterator[tuple[Asset, AssetLabels]]:
    """`size` assets cycled from the sample library under new ids, with predicted-style labels."""
    sample = load_library(SAMPLE_LIBRARY).assets
    dumps = [a.model_dump() for a in sample]
    draws = np.random.default_rng(7).random((9973, sum(len(v) for v in LABEL_FIELDS.values())))
    for i, (base, dump) in zip(range(size), itertools.cycle(zip(sample, dumps, strict=True))):
        data = dict(dump)
        data.update(
            id=f"syn-{i:07d}",
            title=f"{base.title} ({i // len(sample) + 1})",
            url=f"https://content.example.com/{i:07d}",
            published=dt.date(2020, 1, 1) + dt.timedelta(days=int(i * 7919 % 2200)),
        )
        asset = Asset.model_construct(**data)  # fields come from a validated asset: no need to re-check
        yield asset, _labels(base, draws[i % len(draws)])


def ensure(size: int, *, work: Path | None = None, log: bool = True) -> SyntheticLibrary:
    """The index of a synthetic library of `size` assets, built once and reused from `work` (default WORK)."""
    folder = (work or WORK) / f"library-{size}-r{RECIPE}"
    store = IndexStore(folder)
    if store.current() is not None:
        return SyntheticLibrary(size, folder, 0.0)
    shutil.rmtree(folder, ignore_errors=True)
    if log:
        print(f"  building a synthetic library of {size:,} assets in {folder} (cached for later runs)", flush=True)
    started = time.perf_counter()
    pairs = list(assets(size))
    data = vectors(size)
    store.write_version(
        [a for a, _ in pairs],
        [lab for _, lab in pairs],
        data,
        model=DEFAULT_MODEL,
        index_kind="auto",
        library_checksum=f"synthetic-{size}-r{RECIPE}",
        tagger_version=None,
        start=store.begin_build(),
    )
    return SyntheticLibrary(size, folder, time.perf_counter() - started)


@functools.lru_cache(maxsize=8)
def _centres(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 99])
    centres = rng.standard_normal((topics(size), DIMENSION), dtype=np.float32)
    # Scaled so a centre weighs as much as the noise around it: same-topic cosines near 0.5.
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True) * np.sqrt(DIMENSION) * _NOISE
    centres.flags.writeable = False
    return centres


_VOCABULARIES = {name: [member.value for member in vocabulary] for name, vocabulary in LABEL_FIELDS.items()}


def _labels(asset: Asset, draws: np.ndarray) -> AssetLabels:
    """Confidences 0.6-0.98 for the sample asset's curated labels, 0-0.3 for the others."""
    fields = {}
    draws = iter(draws.tolist())
    for name, vocabulary in _VOCABULARIES.items():
        curated = set(getattr(asset, name))
        scores = {}
        for label in vocabulary:
            draw = next(draws)
            scores[label] = round(0.6 + 0.38 * draw if label in curated else 0.3 * draw, 4)
        fields[name] = FieldLabels.model_construct(
            labels=tuple(label for label, score in scores.items() if score >= 0.5),
            scores=scores,
            source=LabelSource.PREDICTED,
        )
    return AssetLabels.model_construct(**fields, model_version="synthetic")


class StandInEmbedder:
    """The default model's name and dimension without the model: queries map to synthetic query vectors.

    For the parts of a benchmark that measure search and ranking, not the model (the model's own cost
    is measured separately, in the same run, with the real one).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._count = 0

    @property
    def name(self) -> str:
        return DEFAULT_MODEL

    @property
    def dimension(self) -> int:
        return DIMENSION

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return np.vstack([self.encode_query(text) for text in texts]) if texts else np.zeros((0, DIMENSION))

    def encode_query(self, text: str) -> np.ndarray:
        seed = int.from_bytes(text.encode()[-8:].rjust(8, b"\0"), "little") % (2**32)
        return queries(self._size, 1, seed=seed)[0]
