"""Plain data that crosses module boundaries: requests, results and the labels stored per asset."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from content_library.schema import (
    Asset,
    AssetType,
    AssetTypeName,
    EventName,
    Role,
    RoleName,
    Segment,
    SegmentName,
    Stage,
    StageName,
    VisitorLanguage,
)

MAX_K = 100
#: The longest nurture sequence the API, the CLI and batch runs take: an email campaign, not a reading list.
MAX_STEPS = 12
MAX_QUERY_CHARS = 1000
MAX_LIST_ITEMS = 200

AssetId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: An asset named by its id or by its address (http or https, however a browser or a campaign link writes it).
AssetRef = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class LabelSource(StrEnum):
    CURATED = "curated"
    PREDICTED = "predicted"


class FieldLabels(BaseModel):
    """The labels of one field (segments, stages or roles) of one asset, with where they came from.

    `scores` holds a confidence for every label of the vocabulary: 1.0 or 0.0 for curated labels,
    the tagger's probability for predicted ones.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: tuple[str, ...]
    scores: dict[str, float]
    source: LabelSource


class AssetLabels(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segments: FieldLabels
    stages: FieldLabels
    roles: FieldLabels
    model_version: str | None = None

    def field(self, name: str) -> FieldLabels:
        return getattr(self, name)


class BuyerRequest(BaseModel):
    """Who the buyer is and what they look for: the input of `Recommender.recommend`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: SegmentName = Field(description="enterprise (a buying-committee member) or smb (a self-researcher)")
    role: RoleName | None = Field(
        default=None,
        description="The committee role, or owner for SMB; a job title or persona naming one counts ('CFO', "
        "'Head of IT Security', 'Leiter Einkauf').",
    )
    stage: StageName | None = Field(default=None, description="The buying stage; wins over signals.")
    signals: tuple[EventName, ...] = Field(
        default=(), max_length=MAX_LIST_ITEMS, description="Buying-signal events, oldest first."
    )
    query: Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS, strip_whitespace=True)] | None = Field(
        default=None, description="What the buyer searched or read, in any language."
    )
    language: VisitorLanguage | None = Field(
        default=None,
        description="Preferred content language, others being a fallback: an ISO 639-1 code, a tag (de-DE counts "
        "as de), a name (German, Deutsch) or a browser's Accept-Language header (its preferred language).",
    )
    exclude: tuple[AssetRef, ...] = Field(
        default=(), max_length=10_000, description="Assets never to return (e.g. already seen), by id or URL."
    )
    reading: AssetRef | None = Field(
        default=None,
        description="The asset the buyer is reading (or read last), by id or URL: its meaning stands in for a "
        "query, or joins the query; it and its translations are left out; its language is preferred when "
        "`language` is not given.",
    )
    asset_types: tuple[AssetTypeName, ...] = Field(
        default=(),
        max_length=len(AssetType),
        description="Only these asset types (all when empty); another name for a type, such as 'Case Studies', counts.",
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="How many assets to return.")

    @field_validator("role")
    @classmethod
    def _smb_executive_is_the_owner(cls, role: Role | None, info: ValidationInfo) -> Role | None:
        # An SMB has one decision maker, its owner (domain.md): its CEO or managing director is that person.
        return Role.OWNER if role is Role.EXECUTIVE and info.data.get("segment") is Segment.SMB else role


class StageSource(BaseModel):
    """Where the resolved stage came from."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["given", "signal", "reading", "default"]
    signal: str | None = None
    #: With kind "reading": the id of the asset being read, whose stage it is.
    asset: str | None = None

    def __str__(self) -> str:
        if self.kind == "signal":
            return f"signal:{self.signal}"
        return f"reading:{self.asset}" if self.kind == "reading" else self.kind


class RecommendedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    score: float
    reasons: dict[str, float] = Field(description="Each ranking component's contribution; they sum to score.")
    asset: Asset


class RecommendationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    stage_source: StageSource
    items: tuple[RecommendedItem, ...]
    index_version: str


class NurtureStep(BaseModel):
    """One email of a nurture sequence: the stage it serves and the asset it carries."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    item: RecommendedItem


class NurtureSequence(BaseModel):
    """The result of `Recommender.sequence`: the first step's stage, where it came from, and the steps."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    stage_source: StageSource
    steps: tuple[NurtureStep, ...]
    index_version: str
