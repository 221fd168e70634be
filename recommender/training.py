"""Training the tagger on curated labels, and measuring how it generalises to an unseen vendor.

Cross-validation holds out one group at a time; by default a group is an asset's URL host, which
in practice is one vendor's site. A tagger that scores well only when the same vendor is in the
training set has learned product names, not buyers: holding out whole vendors measures what a
new customer's untagged library will see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
from sklearn.metrics import f1_score

from content_library.schema import LABEL_FIELDS, Asset
from recommender.errors import RecommenderError
from recommender.tagging import Tagger, TaggerInput, label_matrix, subset_labels

Labels = dict[str, list[list[str]]]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold per-label F1 and its macro average per field, with the groups held out."""

    groups: list[str]
    per_label: dict[str, dict[str, float]]
    macro: dict[str, float]
    per_group_macro: dict[str, dict[str, float]]
    per_language_macro: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, object]:
        return {
            "method": "leave-one-group-out (group = URL host, one vendor's site)",
            "groups": self.groups,
            "macro_f1": self.macro,
            "per_label_f1": self.per_label,
            "per_group_macro_f1": self.per_group_macro,
            "per_language_macro_f1": self.per_language_macro,
        }


def curated_labels(assets: Sequence[Asset]) -> Labels:
    """The training targets; every asset must carry all three curated fields."""
    missing = [a.id for a in assets if not (a.segments and a.stages and a.roles)]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise RecommenderError(f"training needs curated segments, stages and roles on every asset; missing on {shown}")
    return {field: [[label.value for label in getattr(a, field)] for a in assets] for field in LABEL_FIELDS}


def vendor_of(asset: Asset) -> str:
    host = urlparse(asset.url).hostname or ""
    return host.removeprefix("www.")


def cross_validate(
    assets: Sequence[Asset], embeddings: np.ndarray, *, model: str, params: dict | None = None
) -> CrossValidation:
    """Leave one vendor out: train on the others, predict the held-out one, pool the predictions."""
    labels = curated_labels(assets)
    groups = np.array([vendor_of(a) for a in assets])
    names = sorted(set(groups))
    if len(names) < 2:
        raise RecommenderError("cross-validation needs assets from at least two sites (URL hosts)")
    data = TaggerInput.of(assets, embeddings)
    predicted: dict[str, list[list[str] | None]] = {f: [None] * len(assets) for f in LABEL_FIELDS}
    per_group: dict[str, dict[str, float]] = {}
    for group in names:
        test = np.flatnonzero(groups == group)
        train = np.flatnonzero(groups != group)
        tagger = Tagger(**(params or {})).fit(data.subset(train), subset_labels(labels, train), model=model)
        results = tagger.predict(data.subset(test))
        for i, result in zip(test, results, strict=True):
            for f in LABEL_FIELDS:
                predicted[f][i] = list(result.field(f).labels)
        per_group[group] = {
            f: _macro_f1([labels[f][i] for i in test], [predicted[f][i] for i in test], f) for f in LABEL_FIELDS
        }
    per_label = {f: _per_label_f1(labels[f], predicted[f], f) for f in LABEL_FIELDS}
    macro = {f: round(float(np.mean(list(per_label[f].values()))), 4) for f in LABEL_FIELDS}
    languages = np.array([a.language for a in assets])
    per_language = {
        language: {
            f: _macro_f1(
                [labels[f][i] for i in np.flatnonzero(languages == language)],
                [predicted[f][i] for i in np.flatnonzero(languages == language)],
                f,
            )
            for f in LABEL_FIELDS
        }
        for language in sorted(set(languages))
    }
    return CrossValidation(
        groups=names, per_label=per_label, macro=macro, per_group_macro=per_group, per_language_macro=per_language
    )


def train(assets: Sequence[Asset], embeddings: np.ndarray, *, model: str, params: dict | None = None) -> Tagger:
    """A tagger trained on the assets' curated labels, calibrated across their sites when there are several."""
    return Tagger(**(params or {})).fit(
        TaggerInput.of(assets, embeddings),
        curated_labels(assets),
        model=model,
        groups=[vendor_of(a) for a in assets],
    )


def model_card(tagger: Tagger, assets: Sequence[Asset], cv: CrossValidation | None, checksum: str) -> dict:
    """The facts MODEL_CARD.md is written from (also stored in tagger.json)."""
    return {
        "version": tagger.version,
        "trained_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "embedding_model": tagger.model_,
        "params": tagger.get_params(),
        "training_data": {
            "assets": len(assets),
            "library_checksum": checksum,
            "sites": sorted({vendor_of(a) for a in assets}),
            "languages": _counts(a.language for a in assets),
            "label_counts": {f: _counts(label.value for a in assets for label in getattr(a, f)) for f in LABEL_FIELDS},
        },
        "cross_validation": cv.as_dict() if cv else None,
        "calibration": {
            "method": "temperature scaling on leave-one-site-out predictions (1.0 = none, fewer than two sites)",
            "temperatures": dict(tagger.temperatures_),
        },
    }


def render_model_card(card: dict) -> str:
    cv = card["cross_validation"]
    data = card["training_data"]
    lines = [
        "# Tagger model card",
        "",
        f"- **Version**: `{card['version']}` (content hash of the arrays and parameters)",
        f"- **Trained**: {card['trained_at']}",
        f"- **Embedding model**: `{card['embedding_model']}`",
        f"- **Parameters**: {card['params']}",
        "- **What it predicts**: `segments`, `stages`, `roles` of an asset (multi-label, a probability per "
        "label) from its embedding, asset type and hashed character n-grams of its title and body.",
        "- **Files**: `tagger.npz` (plain arrays, loaded with `allow_pickle=False`), `tagger.json` "
        "(parameters, vocabularies, SHA-256 of the arrays, this card's data).",
        "",
        "## Training data",
        "",
        f"{data['assets']} assets with curated labels (library checksum `{data['library_checksum'][:16]}...`) "
        f"from {len(data['sites'])} sites: {', '.join(data['sites'])}.",
        f"Languages: {data['languages']}.",
        "",
        "| field | label counts |",
        "|---|---|",
        *[f"| {f} | {counts} |" for f, counts in data["label_counts"].items()],
        "",
    ]
    if cv:
        lines += [
            "## Cross-validated quality",
            "",
            f"{cv['method']}: each site is predicted by a tagger trained on the others, so the figures say "
            "how the tagger does on a vendor it has never seen. F1 per label, pooled over all held-out sites.",
            "",
            "| field | macro-F1 | per label |",
            "|---|---|---|",
            *[
                f"| {f} | {cv['macro_f1'][f]:.3f} | "
                + ", ".join(f"{k} {v:.3f}" for k, v in cv["per_label_f1"][f].items())
                + " |"
                for f in cv["macro_f1"]
            ],
            "",
            "| held-out site | " + " | ".join(cv["macro_f1"]) + " |",
            "|---|" + "---|" * len(cv["macro_f1"]),
            *[
                f"| {g} | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |"
                for g, scores in cv["per_group_macro_f1"].items()
            ],
            "",
            "| language (held-out predictions) | " + " | ".join(cv["macro_f1"]) + " |",
            "|---|" + "---|" * len(cv["macro_f1"]),
            *[
                f"| {language} | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |"
                for language, scores in cv["per_language_macro_f1"].items()
            ],
            "",
        ]
    calibration = card["calibration"]
    lines += [
        "## Calibration",
        "",
        "The probabilities are the confidences the index and the batch output store. Each field's logits are "
        f"divided by a temperature fitted by {calibration['method']}: "
        + ", ".join(f"{f} {t:.3f}" for f, t in calibration["temperatures"].items())
        + ". Below 1 sharpens: the regularised regressions alone are under-confident. The labels predicted "
        "do not change.",
        "",
        "## Limits",
        "",
        f"Trained on the {len(data['sites'])} sites above; the shipped tagger's are the sample library's fictional "
        "vendors, written for this project. Retrain on your own curated labels with `recommender train-tagger "
        "YOUR_LIBRARY` when your library is labelled; curated labels always win over predictions at index time.",
        "",
    ]
    return "\n".join(lines)


def _per_label_f1(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str] | None], field: str) -> dict:
    """F1 of every label that occurs in the truth or the predictions.

    A label neither carried nor predicted has no F1 to speak of (0/0); counting it as 0 would make a
    perfect tagger score 0.5 on a library that uses half the roles.
    """
    names = [m.value for m in LABEL_FIELDS[field]]
    y, p = label_matrix(truth, names), label_matrix([row or [] for row in predicted], names)
    return {
        name: round(float(f1_score(y[:, j], p[:, j], zero_division=0)), 4)
        for j, name in enumerate(names)
        if y[:, j].any() or p[:, j].any()
    }


def _macro_f1(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str] | None], field: str) -> float:
    return round(float(np.mean(list(_per_label_f1(truth, predicted, field).values()))), 4)


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))
