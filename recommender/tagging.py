"""Predicting segments, stages and roles of untagged assets (multi-label, with probabilities).

One logistic regression per label reads three views of an asset: its embedding (meaning, across
languages), its asset type (a pricing page is late-stage whatever it says) and hashed character
n-grams of its text (the words that signal a reader: "SSO", "per month", "Vorstand"). The hashing
vectoriser has no vocabulary to store, so the whole model is plain arrays: saved with
`np.savez`, loaded with `allow_pickle=False`, and verified against a SHA-256 in its metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, sparse, special
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from content_library.schema import LABEL_FIELDS, Asset, AssetType
from recommender.errors import ModelError
from recommender.types import AssetLabels, FieldLabels, LabelSource

ARRAYS = "tagger.npz"
METADATA = "tagger.json"
_TYPES = tuple(AssetType)


@dataclass(frozen=True)
class TaggerInput:
    """What the tagger reads of n assets: embeddings (n, d) float32, types and texts."""

    embeddings: np.ndarray
    asset_types: Sequence[AssetType]
    texts: Sequence[str]

    @classmethod
    def of(cls, assets: Sequence[Asset], embeddings: np.ndarray) -> TaggerInput:
        return cls(embeddings, [a.asset_type for a in assets], [a.text for a in assets])

    def subset(self, rows: np.ndarray) -> TaggerInput:
        return TaggerInput(self.embeddings[rows], [self.asset_types[i] for i in rows], [self.texts[i] for i in rows])


class Tagger:
    """Multi-label classifier for the label fields of `LABEL_FIELDS`, scikit-learn style.

    Parameters:
        C: inverse regularisation strength of every logistic regression (default 4.0).
        text_weight: scale of the text view against the embedding (default 1.0).
        type_weight: scale of the asset-type one-hot (default 0.25).
        text_features: hashed n-gram buckets (default 2**16).
        threshold: probability above which a label is predicted (default 0.5); the most likely
            label of each field is predicted when none passes.
    """

    def __init__(
        self,
        C: float = 4.0,
        text_weight: float = 1.0,
        type_weight: float = 0.25,
        text_features: int = 2**16,
        threshold: float = 0.5,
    ) -> None:
        self.C = C
        self.text_weight = text_weight
        self.type_weight = type_weight
        self.text_features = text_features
        self.threshold = threshold

    # -- learning ------------------------------------------------------------------------------------

    def fit(
        self,
        data: TaggerInput,
        labels: dict[str, Sequence[Sequence[str]]],
        *,
        model: str,
        groups: Sequence[str] | None = None,
    ) -> Tagger:
        """Learn from curated labels: `labels[field][i]` lists asset i's labels of that field.

        `model` names the embedding model `data.embeddings` came from; prediction checks it. With
        `groups` (asset i's site) naming two or more, each field's probabilities are calibrated on
        predictions for held-out sites (`_calibrate`); `temperatures_` records how.
        """
        self._fit_logistic(data, labels, model=model)
        self.temperatures_ = {field: 1.0 for field in self.labels_}
        if groups is not None and len(set(groups)) >= 2:
            self._calibrate(data, labels, np.asarray(groups), model=model)
        return self

    def _fit_logistic(self, data: TaggerInput, labels: dict[str, Sequence[Sequence[str]]], *, model: str) -> None:
        text = self._hashed_text(data.texts)
        document_frequency = np.bincount(text.indices, minlength=self.text_features)
        self.idf_ = (np.log((1 + len(data.texts)) / (1 + document_frequency)) + 1).astype(np.float32)
        x = self._design(data, text)
        self.model_ = model
        self.labels_: dict[str, tuple[str, ...]] = {}
        self.coef_: dict[str, np.ndarray] = {}
        self.intercept_: dict[str, np.ndarray] = {}
        for field, vocabulary in LABEL_FIELDS.items():
            names = tuple(member.value for member in vocabulary)
            y = label_matrix(labels[field], names)
            coef = np.zeros((len(names), x.shape[1]), dtype=np.float32)
            intercept = np.zeros(len(names), dtype=np.float32)
            for j in range(len(names)):
                positives = y[:, j].mean() if len(y) else 0.0
                if positives in (0.0, 1.0):
                    # Nothing to separate: predict the training rate (clipped away from certainty).
                    intercept[j] = np.log(max(positives, 0.01) / max(1 - positives, 0.01))
                    continue
                clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
                clf.fit(x, y[:, j])
                coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
            self.labels_[field] = names
            self.coef_[field] = coef
            self.intercept_[field] = intercept

    def _calibrate(
        self, data: TaggerInput, labels: dict[str, Sequence[Sequence[str]]], groups: np.ndarray, *, model: str
    ) -> None:
        """Temperature scaling: divide each field's logits by the temperature that minimises the log-loss
        of predictions for sites left out of training, folded into the coefficients.

        Regularised, class-balanced regressions are under-confident (on the sample library the held-out
        log-loss falls from 0.23 to 0.16 for segments at a temperature near 0.5), and the index and the
        batch output store these probabilities as confidences. Dividing logits by one positive number
        keeps their signs, so the labels predicted stay the same.
        """
        logits = {field: np.zeros((len(data.texts), len(names))) for field, names in self.labels_.items()}
        for group in np.unique(groups):
            held_out, rest = np.flatnonzero(groups == group), np.flatnonzero(groups != group)
            fold = Tagger(**self.get_params())
            fold._fit_logistic(data.subset(rest), subset_labels(labels, rest), model=model)
            for field, values in fold._logits(data.subset(held_out)).items():
                logits[field][held_out] = values
        for field, names in self.labels_.items():
            truth = label_matrix(labels[field], names).astype(np.float64)
            temperature = float(
                optimize.minimize_scalar(
                    lambda t, z=logits[field], y=truth: _log_loss(z / t, y), bounds=(0.05, 20.0), method="bounded"
                ).x
            )
            self.temperatures_[field] = round(temperature, 4)
            self.coef_[field] = (self.coef_[field] / self.temperatures_[field]).astype(np.float32)
            self.intercept_[field] = (self.intercept_[field] / self.temperatures_[field]).astype(np.float32)

    # -- predicting ----------------------------------------------------------------------------------

    def predict_proba(self, data: TaggerInput) -> dict[str, np.ndarray]:
        """Probabilities per field: an (n, len(vocabulary)) float32 array in the vocabulary's order."""
        self._check_fitted()
        return {field: special.expit(logits).astype(np.float32) for field, logits in self._logits(data).items()}

    def _logits(self, data: TaggerInput) -> dict[str, np.ndarray]:
        x = self._design(data, self._hashed_text(data.texts))
        return {field: np.asarray(x @ self.coef_[field].T + self.intercept_[field]) for field in self.labels_}

    def predict(self, data: TaggerInput) -> list[AssetLabels]:
        """Predicted labels with their probabilities, one `AssetLabels` per asset."""
        proba = self.predict_proba(data)
        version = self.version  # a hash of every array: once, not per asset
        out = []
        for i in range(len(data.texts)):
            fields = {}
            for field, names in self.labels_.items():
                p = proba[field][i]
                chosen = [names[j] for j in np.flatnonzero(p >= self.threshold)] or [names[int(np.argmax(p))]]
                fields[field] = FieldLabels(
                    labels=tuple(chosen),
                    scores={name: round(float(v), 4) for name, v in zip(names, p, strict=True)},
                    source=LabelSource.PREDICTED,
                )
            out.append(AssetLabels(**fields, model_version=version))
        return out

    # -- persistence ---------------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """A short content hash: two taggers with the same version predict the same."""
        self._check_fitted()
        return self._digest()[:12]

    def save(self, folder: str | Path, card: dict[str, Any] | None = None) -> Path:
        """Write `tagger.npz` (arrays) and `tagger.json` (parameters, vocabularies, checksum)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / ARRAYS, **self._arrays())
        metadata = {
            "version": self.version,
            "model": self.model_,
            "params": self.get_params(),
            "labels": {field: list(names) for field, names in self.labels_.items()},
            "sha256": _sha256(folder / ARRAYS),
            "card": card or {},
        }
        (folder / METADATA).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Tagger:
        """Load a saved tagger, refusing files that do not match their recorded checksum."""
        folder = Path(folder)
        try:
            metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"no trained tagger in {folder}: run `recommender train-tagger`") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{folder / METADATA} is not valid JSON ({exc}); retrain the tagger") from exc
        arrays_path = folder / ARRAYS
        if not arrays_path.is_file() or _sha256(arrays_path) != metadata.get("sha256"):
            raise ModelError(
                f"{arrays_path} is missing or does not match the checksum in {folder / METADATA}; "
                "retrain the tagger (`recommender train-tagger`) or restore the file"
            )
        tagger = cls(**metadata["params"])
        try:
            with np.load(arrays_path, allow_pickle=False) as arrays:
                tagger.idf_ = arrays["idf"]
                tagger.labels_ = {field: tuple(names) for field, names in metadata["labels"].items()}
                tagger.coef_ = {field: arrays[f"coef_{field}"] for field in tagger.labels_}
                tagger.intercept_ = {field: arrays[f"intercept_{field}"] for field in tagger.labels_}
        except (ValueError, KeyError, OSError) as exc:
            # ValueError is numpy refusing a pickled (object) array: never unpickle a model file.
            raise ModelError(f"{arrays_path} is not a tagger's plain arrays ({exc}); retrain the tagger") from exc
        tagger.model_ = metadata["model"]
        # Already folded into the coefficients: kept as the record of how they were calibrated.
        recorded = (metadata.get("card") or {}).get("calibration") or {}
        tagger.temperatures_ = recorded.get("temperatures") or {field: 1.0 for field in tagger.labels_}
        if tagger.version != metadata["version"]:
            raise ModelError(f"{folder} holds version {metadata['version']} but its arrays hash to {tagger.version}")
        return tagger

    def get_params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "text_weight": self.text_weight,
            "type_weight": self.type_weight,
            "text_features": self.text_features,
            "threshold": self.threshold,
        }

    # -- internals -----------------------------------------------------------------------------------

    def _hashed_text(self, texts: Sequence[str]) -> sparse.csr_matrix:
        vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(3, 5),
            n_features=self.text_features,
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )
        counts = vectorizer.transform(texts).tocsr()
        counts.data = np.log1p(counts.data)  # sublinear term frequency
        return counts

    def _design(self, data: TaggerInput, text: sparse.csr_matrix) -> sparse.csr_matrix:
        n = len(data.texts)
        if len(data.embeddings) != n or len(data.asset_types) != n:
            raise ValueError("embeddings, asset_types and texts must have one row per asset")
        if hasattr(self, "idf_"):
            text = text @ sparse.diags(self.idf_)
        norms = np.sqrt(np.asarray(text.multiply(text).sum(axis=1))).ravel()
        text = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ text
        types = np.zeros((n, len(_TYPES)), dtype=np.float32)
        index = {t: i for i, t in enumerate(_TYPES)}
        types[np.arange(n), [index[AssetType(t)] for t in data.asset_types]] = 1.0
        return sparse.hstack(
            [
                sparse.csr_matrix(np.asarray(data.embeddings, dtype=np.float32)),
                sparse.csr_matrix(types * self.type_weight),
                text * self.text_weight,
            ],
            format="csr",
            dtype=np.float32,
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"idf": self.idf_}
        for field in self.labels_:
            arrays[f"coef_{field}"] = self.coef_[field]
            arrays[f"intercept_{field}"] = self.intercept_[field]
        return arrays

    def _digest(self) -> str:
        digest = hashlib.sha256(json.dumps([self.get_params(), self.model_], sort_keys=True).encode())
        for name, array in sorted(self._arrays().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ModelError("the tagger is not trained: call fit() or Tagger.load()")


def label_matrix(rows: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """(len(rows), len(names)) booleans: whether asset i carries label `names[j]`."""
    return np.array([[name in row for name in names] for row in rows], dtype=bool)


def subset_labels(labels: dict[str, Sequence[Sequence[str]]], rows: np.ndarray) -> dict[str, list[Sequence[str]]]:
    """`labels` (field -> each asset's labels) of the assets at `rows` only."""
    return {field: [values[i] for i in rows] for field, values in labels.items()}


def _log_loss(logits: np.ndarray, truth: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits) against 0/1 `truth`, computed stably."""
    return float(np.mean(np.logaddexp(0.0, logits) - truth * logits))


def merge_labels(asset: Asset, predicted: AssetLabels | None) -> AssetLabels:
    """Curated labels win field by field; predicted ones fill the fields the curator left empty."""
    fields = {}
    for field, vocabulary in LABEL_FIELDS.items():
        curated = tuple(label.value for label in getattr(asset, field))
        if curated:
            scores = {member.value: float(member.value in curated) for member in vocabulary}
            fields[field] = FieldLabels(labels=curated, scores=scores, source=LabelSource.CURATED)
        elif predicted is not None:
            fields[field] = predicted.field(field)
        else:
            raise ModelError(f"asset '{asset.id}' has no curated {field} and no tagger was given to predict them")
    return AssetLabels(**fields, model_version=predicted.model_version if predicted else None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def label_assets(assets: Sequence[Asset], embeddings: np.ndarray, tagger: Tagger | None) -> list[AssetLabels]:
    """The labels to store for each asset: the one prediction path of the index build, the API and batch.

    Only assets missing a curated field are sent to the tagger; `embeddings` (n, d) are theirs.
    """
    needs = [i for i, a in enumerate(assets) if not (a.segments and a.stages and a.roles)]
    predicted: dict[int, AssetLabels] = {}
    if needs and tagger is not None:
        rows = np.asarray(needs)
        data = TaggerInput.of([assets[i] for i in needs], np.asarray(embeddings)[rows])
        predicted = dict(zip(needs, tagger.predict(data), strict=True))
    return [merge_labels(asset, predicted.get(i)) for i, asset in enumerate(assets)]
