"""Content recommendations for B2B buyer stages: the engine's public API."""

from recommender.config import RankingConfig, RankingWeights
from recommender.embeddings import Embedder, load_embedder
from recommender.engine import Recommender, single_blas_thread
from recommender.errors import (
    AssetNotFound,
    ConfigError,
    IndexCorrupt,
    IndexNotFound,
    ModelError,
    RecommenderError,
    UnknownReading,
    UnknownSignal,
)
from recommender.tagging import Tagger
from recommender.types import (
    AssetLabels,
    BuyerRequest,
    NurtureSequence,
    NurtureStep,
    RecommendationResult,
    RecommendedItem,
    StageSource,
)

__all__ = [
    "AssetLabels",
    "AssetNotFound",
    "BuyerRequest",
    "ConfigError",
    "Embedder",
    "IndexCorrupt",
    "IndexNotFound",
    "ModelError",
    "NurtureSequence",
    "NurtureStep",
    "RankingConfig",
    "RankingWeights",
    "RecommendationResult",
    "RecommendedItem",
    "Recommender",
    "RecommenderError",
    "StageSource",
    "Tagger",
    "UnknownReading",
    "UnknownSignal",
    "load_embedder",
    "single_blas_thread",
]
