"""Request and response bodies of the HTTP API, and its documented limits.

Request models reject unknown fields and are strict about JSON types (`"k": "10"` is an error, not
10): they are validated from the raw body with `model_validate_json`, where strict mode still reads
enum values from JSON strings. Assets keep the content library's own rules (`content_library.schema`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, field_validator
from pydantic.json_schema import SkipJsonSchema

from content_library.schema import (
    Asset,
    AssetType,
    AssetTypeName,
    LanguageCode,
    Role,
    Segment,
    SegmentName,
    Stage,
    StageName,
)
from recommender.types import (
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_STEPS,
    AssetId,
    AssetLabels,
    BuyerRequest,
    FieldLabels,
    NurtureSequence,
    RecommendationResult,
    RecommendedItem,
    StageSource,
)

MAX_BATCH = 1000
#: Contacts of one sequence batch: each asks up to MAX_STEPS rankings, so fewer than a recommendation batch.
MAX_SEQUENCE_BATCH = 100
MAX_BULK = 1000
MAX_TAG = 100
MAX_BROWSE = 200
DEFAULT_BROWSE = 50
#: Default request body limit in bytes (Flask's MAX_CONTENT_LENGTH); a larger body gets 413.
MAX_BODY_BYTES = 10 * 1024 * 1024

LIMITS = {
    "body_bytes": MAX_BODY_BYTES,
    "k": MAX_K,
    "query_chars": MAX_QUERY_CHARS,
    "batch_requests": MAX_BATCH,
    "bulk_assets": MAX_BULK,
    "tag_assets": MAX_TAG,
    "sequence_steps": MAX_STEPS,
    "sequence_batch_requests": MAX_SEQUENCE_BATCH,
    "browse_limit": MAX_BROWSE,
}

ASSET_ID_PATTERN: str = Asset.model_json_schema()["properties"]["id"]["pattern"]

#: Unpadded base64url of up to 128 bytes (a cursor is the last id of a page, encoded).
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{4}){0,42}(?:[A-Za-z0-9_-]{2,3})?$"

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)
_OUT = ConfigDict(frozen=True)


# -- requests ----------------------------------------------------------------------------------------


def _integral(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer, so the API does too; strict mode alone would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]


class RecommendationRequest(BuyerRequest):
    """Who the buyer is and what they look for; the assets to show them come back ranked."""

    model_config = _STRICT

    k: JsonInt = Field(default=10, ge=1, le=MAX_K, description="How many assets to return.")
    explain: bool = Field(default=False, description="Include each item's reasons (its score components).")


class BatchItem(RecommendationRequest):
    """One buyer of a batch, with an id of the caller's choosing (e.g. the contact id) echoed back."""

    id: AssetId | None = Field(default=None, description="Echoed in the result, e.g. a contact id.")


class BatchRequest(BaseModel):
    """Many buyers at once. Each item is validated on its own: an invalid one gets an error in its place."""

    model_config = _STRICT

    requests: list[BatchItem | JsonValue] = Field(
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} buyers, each a BatchItem; anything else gets an error in its place.",
    )


class BatchEnvelope(BaseModel):
    """What is validated of a batch body before its items, so that one bad item fails alone."""

    model_config = _STRICT

    requests: list[JsonValue] = Field(max_length=MAX_BATCH)


class SequenceRequest(BuyerRequest):
    """A nurture sequence for an email campaign: one asset per step, moving down the funnel.

    The buyer is a recommendation's: the first step's stage is given, or read from the signals or the
    asset being read, as for a recommendation.
    """

    model_config = _STRICT

    stage: StageName | None = Field(
        default=None,
        description="The stage of the first step (later steps move towards decision); wins over signals.",
    )
    steps: JsonInt = Field(ge=1, le=MAX_STEPS, description=f"How many emails (1 to {MAX_STEPS}).")
    # A step holds one asset, so `k` means nothing here; refused rather than silently ignored.
    k: SkipJsonSchema[int] = 1

    @field_validator("k", mode="before")
    @classmethod
    def _no_k(cls, value: Any) -> Any:
        raise ValueError("a sequence holds one asset per step: give steps, not k")


class SequenceBatchItem(SequenceRequest):
    """One contact of a sequence batch, with an id of the caller's choosing (e.g. the contact id) echoed back."""

    id: AssetId | None = Field(default=None, description="Echoed in the result, e.g. a contact id.")


class SequenceBatchRequest(BaseModel):
    """Many contacts' sequences at once. Each item is validated on its own: an invalid one gets an error in its
    place."""

    model_config = _STRICT

    requests: list[SequenceBatchItem | JsonValue] = Field(
        max_length=MAX_SEQUENCE_BATCH,
        description=f"Up to {MAX_SEQUENCE_BATCH} contacts, each a SequenceBatchItem; anything else gets an error "
        "in its place.",
    )


class SequenceBatchEnvelope(BaseModel):
    """What is validated of a sequence batch body before its items, so that one bad item fails alone."""

    model_config = _STRICT

    requests: list[JsonValue] = Field(max_length=MAX_SEQUENCE_BATCH)


class AssetIn(Asset):
    """An asset as the API accepts it: the content library's rules, with `published` as YYYY-MM-DD or null.

    Library files may carry timestamps or empty dates (CMS exports do); an API client can send a date.
    """

    @field_validator("published", mode="before")
    @classmethod
    def _plain_date(cls, value: Any) -> Any:
        if value is not None and not (isinstance(value, str) and _DATE.fullmatch(value)):
            raise ValueError("must be a date written YYYY-MM-DD, such as 2025-01-31, or null")
        return value


class AssetPut(AssetIn):
    """The body of PUT /v1/assets/{asset_id}: an asset whose id may be left out, as the path gives it."""

    id: str | None = Field(  # type: ignore[assignment]
        default=None, pattern=ASSET_ID_PATTERN, description="Left out, or equal to the id in the path."
    )


class BulkUpsertRequest(BaseModel):
    model_config = _STRICT

    assets: list[AssetIn] = Field(min_length=1, max_length=MAX_BULK, description=f"1 to {MAX_BULK} assets.")


class TagRequest(BaseModel):
    model_config = _STRICT

    assets: list[AssetIn] = Field(min_length=1, max_length=MAX_TAG, description=f"1 to {MAX_TAG} assets.")


class BrowseQuery(BaseModel):
    """Query parameters of GET /v1/assets (validated from strings, so not strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_type: AssetTypeName | None = None
    language: LanguageCode | None = None
    segment: SegmentName | None = None
    stage: StageName | None = None
    limit: int = Field(default=DEFAULT_BROWSE, ge=1, le=MAX_BROWSE)
    cursor: str | None = Field(default=None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page.")


# -- responses ---------------------------------------------------------------------------------------


class RecommendedAsset(BaseModel):
    model_config = _OUT

    id: str
    title: str
    url: str
    asset_type: AssetType
    language: str
    score: float
    reasons: dict[str, float] | None = Field(
        default=None, description="Each ranking component's contribution; they sum to score. Only with explain."
    )

    @classmethod
    def of(cls, item: RecommendedItem, *, explain: bool) -> RecommendedAsset:
        asset = item.asset
        return cls(
            id=item.id,
            title=asset.title,
            url=asset.url,
            asset_type=asset.asset_type,
            language=asset.language,
            score=item.score,
            reasons=item.reasons if explain else None,
        )


class RecommendationResponse(BaseModel):
    model_config = _OUT

    stage: Stage = Field(description="The stage recommended for: given, inferred from signals, or the default.")
    stage_source: StageSource
    items: list[RecommendedAsset] = Field(description="Best first.")
    index_version: str

    @classmethod
    def of(cls, result: RecommendationResult, *, explain: bool) -> RecommendationResponse:
        return cls(
            stage=result.stage,
            stage_source=result.stage_source,
            items=[RecommendedAsset.of(item, explain=explain) for item in result.items],
            index_version=result.index_version,
        )


class BatchSuccess(BaseModel):
    model_config = _OUT

    id: str | None = None
    result: RecommendationResponse


class ErrorField(BaseModel):
    model_config = _OUT

    field: str = Field(description="Where the problem is: a field name, with [i] for list positions.")
    problem: str
    allowed: list[str] | None = Field(default=None, description="The accepted values, where there is a list.")


class ErrorDetail(BaseModel):
    model_config = _OUT

    status: int = Field(description="The HTTP status this error has (or would have alone, inside a batch).")
    message: str
    fields: list[ErrorField] | None = Field(
        default=None, description="The fields at fault: the first 10, the message counts any others."
    )


class BatchFailure(BaseModel):
    model_config = _OUT

    id: str | None = None
    error: ErrorDetail


class BatchResponse(BaseModel):
    model_config = _OUT

    results: list[BatchSuccess | BatchFailure] = Field(description="One per request, in the order sent.")
    index_version: str


class SequenceStep(BaseModel):
    model_config = _OUT

    step: int = Field(ge=1)
    stage: Stage
    item: RecommendedAsset


class SequenceResponse(BaseModel):
    model_config = _OUT

    stage: Stage = Field(
        description="The first step's stage: given, inferred from signals or the asset being read, or the default."
    )
    stage_source: StageSource
    steps: list[SequenceStep] = Field(description="Fewer than asked when the library runs out of fitting assets.")
    index_version: str

    @classmethod
    def of(cls, sequence: NurtureSequence) -> SequenceResponse:
        return cls(
            stage=sequence.stage,
            stage_source=sequence.stage_source,
            steps=[
                SequenceStep(step=n, stage=step.stage, item=RecommendedAsset.of(step.item, explain=True))
                for n, step in enumerate(sequence.steps, 1)
            ],
            index_version=sequence.index_version,
        )


class SequenceBatchSuccess(BaseModel):
    model_config = _OUT

    id: str | None = None
    result: SequenceResponse


class SequenceBatchResponse(BaseModel):
    model_config = _OUT

    results: list[SequenceBatchSuccess | BatchFailure] = Field(description="One per contact, in the order sent.")
    index_version: str


class AssetRecord(BaseModel):
    """A stored asset with the labels used for ranking (its curated ones, or the tagger's)."""

    model_config = _OUT

    asset: Asset
    labels: AssetLabels


class AssetSummary(BaseModel):
    """An asset without its body, with the labels used for ranking."""

    model_config = _OUT

    id: str
    title: str
    url: str
    asset_type: AssetType
    language: str
    published: dt.date | None = None
    segments: list[Segment] = Field(description="The labels used for ranking: curated, or predicted.")
    stages: list[Stage]
    roles: list[Role]

    @classmethod
    def of(cls, asset: Asset, labels: AssetLabels) -> AssetSummary:
        return cls(
            id=asset.id,
            title=asset.title,
            url=asset.url,
            asset_type=asset.asset_type,
            language=asset.language,
            published=asset.published,
            segments=[Segment(s) for s in labels.segments.labels],
            stages=[Stage(s) for s in labels.stages.labels],
            roles=[Role(r) for r in labels.roles.labels],
        )


class BrowseResponse(BaseModel):
    model_config = _OUT

    items: list[AssetSummary] = Field(description="In id order.")
    next_cursor: str | None = Field(default=None, description="Pass as cursor for the next page; absent on the last.")


class WriteResponse(BaseModel):
    model_config = _OUT

    ids: list[str] = Field(description="The ids written, in the order sent.")
    index_version: str


class TaggedAsset(BaseModel):
    model_config = _OUT

    id: str
    segments: FieldLabels
    stages: FieldLabels
    roles: FieldLabels
    model_version: str | None = None


class TagResponse(BaseModel):
    model_config = _OUT

    labels: list[TaggedAsset] = Field(description="One per asset sent, in order.")


class Health(BaseModel):
    model_config = _OUT

    status: str


class Readiness(BaseModel):
    model_config = _OUT

    status: str
    index_version: str
    asset_count: int


class ErrorBody(BaseModel):
    model_config = _OUT

    error: ErrorDetail
    request_id: str


def to_json(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a response model: a field without a value is left out, never null."""
    return model.model_dump(mode="json", exclude_none=True)
