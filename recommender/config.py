"""Every tunable of the engine in one place: ranking weights, the stage-signal map, type priors.

Defaults live here and in the two data files beside this module (`data/stage_signals.toml`,
`data/type_priors.toml`). A deployment overrides them with a TOML file of its own
(`RankingConfig.from_toml`) or, for the data files, with the environment variables
RECOMMENDER_STAGE_SIGNALS and RECOMMENDER_TYPE_PRIORS.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content_library.schema import AssetType, Segment, Stage, allowed, spelling
from recommender.errors import ConfigError

DATA_DIR = Path(__file__).parent / "data"

#: The default embedding model: multilingual USE and English MiniLM, combined; cosine is 0.25 MiniLM's
#: plus 0.75 USE's (measured on the development set: see README, "Embeddings").
DEFAULT_MODEL = "all-MiniLM-L6-v2@0.25+use-multilingual-v3@0.75"


@dataclass(frozen=True)
class StageSignalMap:
    """Which stage each buying signal is evidence of, per segment (see data/stage_signals.toml)."""

    stages: dict[Segment, dict[str, Stage]]
    purchase_events: frozenset[str]
    becomes_retention: frozenset[str]

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(self.stages[Segment.ENTERPRISE])

    @classmethod
    def from_toml(cls, path: Path) -> StageSignalMap:
        raw = _read_toml(path)
        stages = {}
        for segment in Segment:
            table = _table(raw, segment.value, path)
            try:
                stages[segment] = {spelling(event): Stage(stage) for event, stage in table.items()}
            except ValueError as exc:
                raise ConfigError(f"{path} [{segment.value}]: {exc}; stages are {allowed(Stage)}") from exc
        after = _table(raw, "after_purchase", path, required=False)
        purchase = frozenset(spelling(name) for name in _names(after, "purchase_events", path))
        retention = frozenset(spelling(name) for name in _names(after, "becomes_retention", path))
        events = [set(table) for table in stages.values()]
        if events[0] != events[1]:
            diff = sorted(events[0] ^ events[1])
            raise ConfigError(f"{path}: events {diff} are listed for one segment only; list each for both")
        unknown = sorted((purchase | retention) - events[0])
        if unknown:
            raise ConfigError(f"{path}: [after_purchase] names unknown events {unknown}")
        return cls(stages=stages, purchase_events=purchase, becomes_retention=retention)


@dataclass(frozen=True)
class TypePriors:
    """How well each asset type suits a segment and a stage (see data/type_priors.toml)."""

    segment: dict[Segment, dict[AssetType, float]]
    stage: dict[Stage, dict[AssetType, float]]

    def prior(self, segment: Segment, stage: Stage, asset_type: AssetType) -> float:
        return 0.5 * (self.segment[segment][asset_type] + self.stage[stage][asset_type])

    @classmethod
    def from_toml(cls, path: Path) -> TypePriors:
        raw = _read_toml(path)

        def table(section: str, keys: type[Segment] | type[Stage]) -> dict[Any, dict[AssetType, float]]:
            out = {}
            tables = _table(raw, section, path)
            for key in keys:
                where = f"{section}.{key.value}"
                values = _table(tables, key.value, path, name=where)
                unknown = sorted(set(values) - {t.value for t in AssetType})
                if unknown:
                    raise ConfigError(f"{path} [{where}]: unknown types {unknown}; types are {allowed(AssetType)}")
                missing = [t.value for t in AssetType if t.value not in values]
                if missing:
                    raise ConfigError(f"{path} [{where}]: no prior for {', '.join(missing)}")
                wrong = sorted(k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int | float))
                if wrong:
                    raise ConfigError(f"{path} [{where}]: the priors of {', '.join(wrong)} are not numbers")
                parsed = {AssetType(name): float(value) for name, value in values.items()}
                if any(not 0.0 <= v <= 1.0 for v in parsed.values()):
                    raise ConfigError(f"{path} [{where}]: priors must lie between 0 and 1")
                out[key] = parsed
            return out

        return cls(segment=table("segment", Segment), stage=table("stage", Stage))


@dataclass(frozen=True)
class RankingWeights:
    """The weight of each ranking component; an item's score is the weighted sum of its components.

    Each component lies in [0, 1] before weighting, so a weight is the most that component can add.
    Defaults were chosen on the development set (`recommender evaluate`, see README).
    """

    relevance: float = 12.0  # cosine similarity of query and asset (only with a query); cosines run ~0-0.6
    segment: float = 1.0  # probability the asset serves the requested segment
    role: float = 0.6  # probability it answers the requested role's questions (only with a role)
    stage: float = 1.0  # closeness of the asset's stage to the buyer's stage
    type_prior: float = 0.3  # how well the asset type suits segment and stage
    language: float = 0.4  # the asset is in the requested language (only with a language)
    freshness: float = 0.1  # newer assets first, halving every `freshness_half_life_days`


@dataclass(frozen=True)
class RankingConfig:
    """Weights and parameters of the ranking; see `RankingWeights` for the components."""

    weights: RankingWeights = field(default_factory=RankingWeights)
    #: Stage closeness by distance in the funnel: same stage, adjacent, two apart, three apart.
    stage_closeness: tuple[float, float, float, float] = (1.0, 0.35, 0.1, 0.0)
    freshness_half_life_days: float = 730.0
    #: Maximal-marginal-relevance penalty for an item as similar as `diversity_threshold` or more to one
    #: already chosen; it grows linearly to `diversity` at identical vectors.
    diversity: float = 3.0
    diversity_threshold: float = 0.75
    #: Two assets in different languages at least this similar are taken for translations of one
    #: another: the one in the visitor's language inherits the other's relevance, and the pair counts
    #: as near-duplicates. 1.0 = off; a model that is blind across languages never reaches it. With the
    #: default model, over the ten vendors of the sample library, 0.62 alone finds 148 of 169
    #: translation pairs (they sit at 0.47-0.83, median 0.68) and takes 13 of 30,822 other
    #: cross-language pairs of a site for translations: the best F1 of any threshold (0.897; 0.55 found
    #: 165 but merged 108 unrelated pairs). With `translation_floor`, 165 and 40 (`evaluate-holdout`).
    translation_threshold: float = 0.62
    #: A pair less similar than `translation_threshold` but at least this similar is still taken for
    #: translations when each is the other's most similar candidate across the two languages (a mutual
    #: best match): a translation whose wording drifted usually is, two merely related assets rarely.
    #: With it, the visitor's version of a translated sample asset asked for by its original's title
    #: comes first 153 times in 162 (136 with the threshold alone).
    translation_floor: float = 0.55
    #: Relevance blends an asset's own similarity to the query with its nearest neighbours' (weight of
    #: the neighbours' mean, 0 = off): assets on one topic sit together, so an asset whose own wording
    #: misses the query but whose neighbours match it is still likely on topic.
    neighbour_weight: float = 0.5
    #: Share of each language's lean taken out of the relevance (`ranking.group_lean`, 0 = off): the
    #: default model rates same-language pairs higher whatever their topic. Development set: German
    #: visitors 0.561 -> 0.577, Indonesian 0.625 -> 0.682 nDCG@10, English unchanged.
    language_centring: float = 1.0
    #: Share of each asset type's lean taken out of the relevance (`ranking.group_lean`, 0 = off): the
    #: model rates a query closer to the assets of some types whatever their topic, which the type prior,
    #: not the relevance, should decide. Development set: 0.691 -> 0.700 nDCG@10 (README, Ranking).
    type_centring: float = 1.0
    #: At most this many items of one asset type in a result (0 = no cap).
    max_per_type: int = 4
    #: FAISS candidates re-ranked per request: max(candidates_min, candidates_per_k * k), and as many
    #: of the best buyer fits. On the development set 30 gave the same nDCG@10 within 0.001; each
    #: candidate costs time at every step of a request (benchmarks/NOTES.md).
    candidates_min: int = 100
    candidates_per_k: int = 10
    #: Stage used when a request gives neither a stage nor signals.
    default_stage: Stage = Stage.AWARENESS
    #: A request with neither a stage nor signals that names the asset being read (`reading`) takes that
    #: asset's most confident stage instead of `default_stage`, the furthest on a tie; false = the default.
    stage_from_reading: bool = True
    stage_signals: StageSignalMap = field(
        default_factory=lambda: StageSignalMap.from_toml(
            Path(os.environ.get("RECOMMENDER_STAGE_SIGNALS", DATA_DIR / "stage_signals.toml"))
        )
    )
    type_priors: TypePriors = field(
        default_factory=lambda: TypePriors.from_toml(
            Path(os.environ.get("RECOMMENDER_TYPE_PRIORS", DATA_DIR / "type_priors.toml"))
        )
    )

    @classmethod
    def from_toml(cls, path: str | Path) -> RankingConfig:
        """Read overrides: a [weights] table and top-level parameters, e.g. `max_per_type = 3`."""
        raw = _read_toml(Path(path))
        weights = raw.pop("weights", {})
        if not isinstance(weights, dict):
            raise ConfigError(f"{path}: weights must be a table, e.g. [weights] relevance = 10.0")
        known = {f.name for f in dataclasses.fields(RankingWeights)}
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ConfigError(f"{path} [weights]: unknown {unknown}; known are {sorted(known)}")
        params = set(_SETTINGS)
        unknown = sorted(set(raw) - params)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {unknown}; known are {sorted(params)}")
        try:
            weights = {name: _non_negative(name, value) for name, value in weights.items()}
            settings = {name: _SETTINGS[name](value) for name, value in raw.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls(weights=RankingWeights(**weights), **settings)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of 0 or more, not {value!r}")
    return float(value)


def _positive(name: str, value: Any) -> float:
    if _non_negative(name, value) == 0:
        raise ValueError(f"{name} must be more than 0")
    return float(value)


def _count(name: str) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number of 0 or more, not {value!r}")
        return value

    return check


def _flag(name: str) -> Any:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value

    return check


def _closeness(value: Any) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"stage_closeness must list 4 numbers (same stage, adjacent, two, three apart), not {value!r}")
    return tuple(_non_negative("stage_closeness", v) for v in value)  # type: ignore[return-value]


def _stage(value: Any) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        raise ValueError(f"default_stage must be one of {allowed(Stage)}, not {value!r}") from None


_SETTINGS: dict[str, Any] = {
    "stage_closeness": _closeness,
    "freshness_half_life_days": lambda v: _positive("freshness_half_life_days", v),
    "diversity": lambda v: _non_negative("diversity", v),
    "diversity_threshold": lambda v: _non_negative("diversity_threshold", v),
    "translation_threshold": lambda v: _non_negative("translation_threshold", v),
    "translation_floor": lambda v: _non_negative("translation_floor", v),
    "neighbour_weight": lambda v: _non_negative("neighbour_weight", v),
    "language_centring": lambda v: _non_negative("language_centring", v),
    "type_centring": lambda v: _non_negative("type_centring", v),
    "max_per_type": _count("max_per_type"),
    "candidates_min": _count("candidates_min"),
    "candidates_per_k": _count("candidates_per_k"),
    "default_stage": _stage,
    "stage_from_reading": _flag("stage_from_reading"),
}


def _table(raw: dict[str, Any], key: str, path: Path, *, required: bool = True, name: str = "") -> dict[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if value is None:
        raise ConfigError(f"{path}: missing table [{name or key}]")
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name or key} must be a table ([{name or key}]), not {value!r}")
    return value


def _names(table: dict[str, Any], key: str, path: Path) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{path}: {key} must be a list of event names, e.g. ["purchase_order"], not {value!r}')
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
