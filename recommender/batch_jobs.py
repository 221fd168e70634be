"""What the batch commands do to a batch of records, independent of the engine that runs them.

A job says how to read one record and how to turn one batch of records into output rows. The
local engine (batch.py) and the Spark engine (spark_engine.py) run the very same job objects, so
both give the same rows for the same input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from content_library import LABEL_FIELDS, Asset, RawRecord, RecordInvalid, RecordProblem, is_absent, parse_record
from content_library.languages import detect_language
from content_library.schema import Segment, Stage, not_a_role, spelling
from recommender.batch_io import BatchError, Column, Kind, Table
from recommender.config import RankingConfig, StageSignalMap
from recommender.embeddings import Embedder
from recommender.engine import Recommender
from recommender.errors import ModelError, RecommenderError, UnknownSignal
from recommender.signals import check_signals
from recommender.tagging import Tagger, label_assets
from recommender.types import BuyerRequest, NurtureSequence, RecommendationResult


class Job(Protocol):
    """One batch command: how to read a record, and how to turn a batch of them into output rows."""

    command: str
    unit: str
    table: Table

    def settings(self) -> dict[str, Any]:
        """What the output depends on besides the input; a run resumes only with equal settings."""

    def adopt(self, saved: dict[str, Any]) -> None:
        """Take over what a resumed run must keep from the interrupted one (e.g. its date)."""

    def check(self, record: RawRecord) -> None:
        """Raise RecordInvalid if the record cannot be processed; cheaper than `parse`."""

    def parse(self, record: RawRecord) -> Any:
        """The record as the item `process` takes; raise RecordInvalid naming every problem."""

    def process(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """One output row per item, in order."""

    def dump(self, item: Any) -> str:
        """The parsed item as JSON text (Spark moves items between stages as text)."""

    def load(self, text: str) -> Any: ...


def _score_columns() -> list[Column]:
    return [
        Column(f"score_{name}_{label.value}", Kind.NUMBER, ("scores", name, label.value))
        for name, vocabulary in LABEL_FIELDS.items()
        for label in vocabulary
    ]


_ASSET_COLUMNS = [
    ("id", Kind.TEXT),
    ("title", Kind.TEXT),
    ("body", Kind.TEXT),
    ("asset_type", Kind.TEXT),
    ("language", Kind.TEXT),
    ("url", Kind.TEXT),
    ("published", Kind.DATE),
    ("segments", Kind.TEXT_LIST),
    ("stages", Kind.TEXT_LIST),
    ("roles", Kind.TEXT_LIST),
    ("topic", Kind.TEXT),
    ("tags", Kind.TEXT_LIST),
]
#: `tag` output in CSV and Parquet: the asset's fields, one score column per label, then the rest.
TAG_TABLE = Table(
    (
        *(Column(name, kind, (name,)) for name, kind in _ASSET_COLUMNS),
        *_score_columns(),
        Column("detected_language", Kind.TEXT, ("detected_language",)),
        Column("model_version", Kind.TEXT, ("model_version",)),
    )
)


@dataclass(frozen=True)
class TagItem:
    """An asset to tag, with the input record's fields outside the asset schema (a CMS export's own ids,
    paths...): JSON Lines output carries them through unchanged, so rows can be joined back."""

    asset: Asset
    extra: dict[str, Any]
    detected_language: str


class TagJob:
    """Label assets: curated labels kept, missing ones predicted by the tagger, language detected.

    An asset without a `language` gets the detected one; `detected_language` is reported for every
    asset, so a CMS export whose language field is wrong shows up.
    """

    command = "tag"
    unit = "asset"
    table = TAG_TABLE

    def __init__(self, embedder: Embedder | None, tagger: Tagger | None, *, encode_batch_size: int = 64) -> None:
        if embedder is not None and tagger is not None and tagger.model_ != embedder.name:
            raise ModelError(
                f"the tagger was trained on embeddings of '{tagger.model_}' but the model is '{embedder.name}': "
                f"pass --model {tagger.model_}, or a tagger trained on {embedder.name} with --tagger"
            )
        self.embedder = embedder
        self.tagger = tagger
        self.encode_batch_size = encode_batch_size

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.embedder.name if self.embedder else None,
            "tagger": self.tagger.version if self.tagger else None,
        }

    def adopt(self, saved: dict[str, Any]) -> None:
        pass

    def check(self, record: RawRecord) -> None:
        parse_record(record, detect_language=True)

    def parse(self, record: RawRecord) -> TagItem:
        asset = parse_record(record, detect_language=True)
        return TagItem(asset, _extra_fields(record), detect_language(asset.text))

    def process(self, items: Sequence[TagItem]) -> list[dict[str, Any]]:
        if self.embedder is None or self.tagger is None:
            raise ModelError("tagging needs an embedding model and a tagger")
        assets = [item.asset for item in items]
        # Only assets missing a curated field are predicted, so only they need an embedding.
        needs = [i for i, a in enumerate(assets) if not (a.segments and a.stages and a.roles)]
        embeddings = np.zeros((len(assets), self.embedder.dimension), dtype=np.float32)
        if needs:
            texts = [assets[i].text for i in needs]
            embeddings[needs] = self.embedder.encode(texts, batch_size=self.encode_batch_size)
        labels = label_assets(assets, embeddings, self.tagger)
        rows = []
        for item, label in zip(items, labels, strict=True):
            asset = item.asset
            row = {**item.extra, **asset.model_dump(mode="json")}
            for name in LABEL_FIELDS:
                row[name] = list(label.field(name).labels)
            row["scores"] = {name: label.field(name).scores for name in LABEL_FIELDS}
            row["detected_language"] = item.detected_language
            row["model_version"] = label.model_version
            rows.append(row)
        return rows

    def dump(self, item: TagItem) -> str:
        asset = item.asset.model_dump(mode="json")
        return json.dumps({"asset": asset, "extra": item.extra, "detected": item.detected_language}, ensure_ascii=False)

    def load(self, text: str) -> TagItem:
        data = json.loads(text)
        return TagItem(Asset.model_validate(data["asset"]), data["extra"], data["detected"])


_ASSET_FIELDS = frozenset(Asset.model_fields)


def _extra_fields(record: RawRecord) -> dict[str, Any]:
    # `Asset Type` is the asset's field under an export's name, not a field of the input's own.
    extra = {str(key).strip(): value for key, value in record.data.items() if spelling(str(key)) not in _ASSET_FIELDS}
    # Parquet hands over dates, decimals and bytes: written back as JSON text would show them.
    return json.loads(json.dumps(extra, default=str, ensure_ascii=False))


@dataclass(frozen=True)
class Contact:
    id: str
    request: BuyerRequest


_LIST_FIELDS = frozenset({"signals", "exclude", "asset_types"})
_MAX_CONTACT_ID = 256

#: `recommend-batch` output in CSV and Parquet: the ranked ids and scores, and the items as JSON text.
RECOMMEND_TABLE = Table(
    (
        Column("contact_id", Kind.TEXT, ("contact_id",)),
        Column("stage", Kind.TEXT, ("stage",)),
        Column("stage_source", Kind.TEXT, ("stage_source",)),
        Column("asset_ids", Kind.TEXT_LIST, ("asset_ids",)),
        Column("scores", Kind.NUMBER_LIST, ("scores",)),
        Column("items", Kind.JSON, ("items",)),
        Column("index_version", Kind.TEXT, ("index_version",)),
    )
)


class PinnedDate:
    """The date a run ranks freshness against: fixed for the whole run, kept when it resumes."""

    def __init__(self, day: dt.date) -> None:
        self.day = day

    def __call__(self) -> dt.date:
        return self.day


class RecommendJob:
    """Top-k assets for each contact row (`contact_id` plus the fields of a recommend request), or with
    `steps` a nurture sequence of that many assets."""

    command = "recommend-batch"
    unit = "contact"
    table = RECOMMEND_TABLE

    def __init__(
        self,
        recommender: Recommender | None,
        *,
        k: int = 10,
        steps: int | None = None,
        config: RankingConfig | None = None,
        today: PinnedDate | None = None,
    ) -> None:
        self.recommender = recommender
        self.k = k
        self.steps = steps
        self.config = config or (recommender.config if recommender else RankingConfig())
        self.today = today or PinnedDate(dt.date.today())

    def settings(self) -> dict[str, Any]:
        return {
            "index_version": self.recommender.version if self.recommender else None,
            "k": self.k,
            "steps": self.steps,
            "config": hashlib.sha256(repr(self.config).encode()).hexdigest()[:16],
            "today": self.today.day.isoformat(),
        }

    def adopt(self, saved: dict[str, Any]) -> None:
        if isinstance(saved.get("today"), str):
            self.today.day = dt.date.fromisoformat(saved["today"])

    def check(self, record: RawRecord) -> None:
        self.parse(record)

    def parse(self, record: RawRecord) -> Contact:
        contact = parse_contact(record, self.k, self.config.stage_signals)
        if self.steps is not None and any(spelling(str(k)) == "k" and not is_absent(v) for k, v in record.data.items()):
            message = "a nurture sequence holds one asset per step (--steps sets how many): leave k out"
            raise RecordInvalid([RecordProblem(record.source, record.location, "k", message)])
        reading = contact.request.reading
        # Found here, an unknown asset is this row's problem, listed with the others', not the run's failure.
        if reading is not None and self.recommender is not None and self.recommender.snapshot.row_of(reading) is None:
            problem = RecordProblem(record.source, record.location, "reading", f"no asset '{reading}' in the index")
            raise RecordInvalid([problem])
        return contact

    def process(self, items: Sequence[Contact]) -> list[dict[str, Any]]:
        if self.recommender is None:
            raise ModelError("recommending needs an index")
        requests = [contact.request for contact in items]
        if self.steps is None:
            results: list[Any] = self.recommender.recommend_many(requests)
        else:
            results = self.recommender.sequence_many(requests, self.steps)
        rows = []
        for contact, result in zip(items, results, strict=True):
            if isinstance(result, RecommenderError):
                raise BatchError(f"contact '{contact.id}': {result}")
            rows.append(recommendation_row(contact.id, result))
        return rows

    def dump(self, item: Contact) -> str:
        return json.dumps({"contact_id": item.id, "request": item.request.model_dump(mode="json")})

    def load(self, text: str) -> Contact:
        raw = json.loads(text)
        return Contact(raw["contact_id"], BuyerRequest.model_validate(raw["request"]))


def recommendation_row(contact_id: str, result: RecommendationResult | NurtureSequence) -> dict[str, Any]:
    """A contact's output row: a ranked list, or a sequence whose items also name their step's stage."""
    if isinstance(result, NurtureSequence):
        chosen = [(step.item, {"stage": step.stage.value}) for step in result.steps]
    else:
        chosen = [(item, {}) for item in result.items]
    items = [
        {
            "rank": rank,
            **extra,
            "id": item.id,
            "score": item.score,
            "title": item.asset.title,
            "asset_type": item.asset.asset_type.value,
            "language": item.asset.language,
            "url": item.asset.url,
        }
        for rank, (item, extra) in enumerate(chosen, 1)
    ]
    return {
        "contact_id": contact_id,
        "stage": result.stage.value,
        "stage_source": str(result.stage_source),
        "asset_ids": [item["id"] for item in items],
        "scores": [item["score"] for item in items],
        "items": items,
        "index_version": result.index_version,
    }


def parse_contact(record: RawRecord, k: int, signal_map: StageSignalMap) -> Contact:
    """Validate one contact row; unknown columns (a CRM's name, email) are ignored, empty cells are absent,
    and column names are read as the request's fields are written (`Contact ID` is contact_id).

    Lists (`signals`, `exclude`, `asset_types`) may be arrays or text split at '|', ';' or ','.
    """

    def invalid(found: Iterable[tuple[str | None, str]]) -> RecordInvalid:
        return RecordInvalid([RecordProblem(record.source, record.location, name, message) for name, message in found])

    if record.error is not None:
        raise invalid([(None, record.error)])
    data: dict[str, Any] = {"k": k}
    contact_id: Any = None
    for key, value in record.data.items():
        name = spelling(str(key))  # `Contact ID`, `Segment`, as a CRM's export writes them
        if is_absent(value):
            continue
        if name == "contact_id":
            contact_id = value
        elif name in BuyerRequest.model_fields:
            data[name] = _split(value) if name in _LIST_FIELDS and isinstance(value, str) else value
    problems: list[tuple[str | None, str]] = []
    if isinstance(contact_id, int) and not isinstance(contact_id, bool):
        contact_id = str(contact_id)
    if contact_id is None:
        problems.append(("contact_id", "required but missing or empty"))
    elif not isinstance(contact_id, str) or len(contact_id.strip()) > _MAX_CONTACT_ID:
        problems.append(("contact_id", f"expected text of at most {_MAX_CONTACT_ID} characters, got {contact_id!r}"))
    try:
        request = BuyerRequest.model_validate(data)
    except ValidationError as exc:
        problems += [(_field(error), _contact_message(error)) for error in exc.errors()]
    else:
        try:
            check_signals(request.signals, signal_map)
        except UnknownSignal as exc:
            problems.append(("signals", str(exc)))
    if problems:
        raise invalid(problems)
    return Contact(str(contact_id).strip(), request)


def _split(value: str) -> list[Any]:
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            return items if isinstance(items, list) else [items]
    return [item.strip() for item in text.replace(";", "|").replace(",", "|").split("|") if item.strip()]


def _field(error: Any) -> str | None:
    return str(error["loc"][0]) if error["loc"] else None


_CHOICES = {"segment": Segment, "stage": Stage}


def _contact_message(error: Any) -> str:
    name = _field(error)
    if error["type"] == "enum" and name == "role":
        return not_a_role(error.get("input"))
    if error["type"] == "enum" and name in _CHOICES:
        return f"{error.get('input')!r} is not one of {', '.join(m.value for m in _CHOICES[name])}"
    if error["type"] == "missing":
        return "required but missing or empty"
    return str(error["msg"])
