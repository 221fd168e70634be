"""Per-asset feature arrays the ranking reads, one row per index row, so no request loops over assets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from content_library.schema import Asset, AssetType, Role, Segment, Stage
from recommender.errors import IndexCorrupt
from recommender.types import AssetLabels

SEGMENTS = tuple(Segment)
STAGES = tuple(Stage)
ROLES = tuple(Role)
ASSET_TYPES = tuple(AssetType)
NO_DATE = -1
_EPOCH = dt.date(1970, 1, 1)


#: ISO 639-1 codes in the order their numbers were given out (pycountry 26.2's list, sorted). Indexes store
#: the numbers, so a code keeps its number even if a later pycountry drops it; one it adds is numbered after.
_NUMBERED = tuple(
    (
        "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de "
        "dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia "
        "id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo "
        "lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl "
        "ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti "
        "tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
    ).split()
)


@lru_cache(maxsize=1)
def _languages() -> tuple[str, ...]:
    import pycountry

    return _numbered(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def _numbered(known: Iterable[str]) -> tuple[str, ...]:
    """Every code of `_NUMBERED`, in its place, then the `known` codes it lacks, sorted."""
    return _NUMBERED + tuple(sorted(set(known) - set(_NUMBERED)))


def language_code(code: str) -> int:
    """A stable small integer for an ISO 639-1 code, the same in every index."""
    return _languages().index(code)


def language_name(index: int) -> str:
    return _languages()[index]


def language_count() -> int:
    """How many codes `language_code` gives out: 0 to this, exclusive."""
    return len(_languages())


@dataclass(frozen=True)
class FeatureTable:
    """Arrays of one length n; probabilities are float32, the rest small integers.

    segments (n, 2), stages (n, 4), roles (n, 6): label confidences in the order of the enums;
    asset_type (n,) int8: index into AssetType; language (n,) int16: `language_code`;
    published (n,) int32: days since 1970-01-01, or -1 when unknown.
    """

    segments: np.ndarray
    stages: np.ndarray
    roles: np.ndarray
    asset_type: np.ndarray
    language: np.ndarray
    published: np.ndarray

    def __len__(self) -> int:
        return len(self.asset_type)

    @classmethod
    def from_assets(cls, assets: Sequence[Asset], labels: Sequence[AssetLabels]) -> FeatureTable:
        def scores(field: str, vocabulary: tuple) -> np.ndarray:
            out = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
            for i, label in enumerate(labels):
                found = label.field(field).scores
                out[i] = [found.get(member.value, 0.0) for member in vocabulary]
            return out

        type_index = {member: i for i, member in enumerate(ASSET_TYPES)}
        return cls(
            segments=scores("segments", SEGMENTS),
            stages=scores("stages", STAGES),
            roles=scores("roles", ROLES),
            asset_type=np.array([type_index[a.asset_type] for a in assets], dtype=np.int8),
            language=np.array([language_code(a.language) for a in assets], dtype=np.int16),
            published=np.array(
                [(a.published - _EPOCH).days if a.published else NO_DATE for a in assets], dtype=np.int32
            ),
        )

    @classmethod
    def empty(cls) -> FeatureTable:
        return cls.from_assets([], [])

    def take(self, rows: np.ndarray) -> FeatureTable:
        return FeatureTable(**{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})

    def concat(self, other: FeatureTable) -> FeatureTable:
        return FeatureTable(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in dataclasses.fields(self)
            }
        )

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in dataclasses.fields(self):
            path = folder / f"{f.name}.npy"
            np.save(path, getattr(self, f.name), allow_pickle=False)
            paths.append(path)
        return paths

    @classmethod
    def load(cls, folder: Path, n: int) -> FeatureTable:
        """Memory-map the arrays of a saved table and check they all hold `n` rows."""
        arrays = {}
        for f in dataclasses.fields(cls):
            path = folder / f"{f.name}.npy"
            try:
                # A plain ndarray over the map: indexing a np.memmap costs a subclass wrap per call.
                arrays[f.name] = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
            except (OSError, ValueError, EOFError) as exc:
                raise IndexCorrupt(f"{path} cannot be read: {exc}") from exc
            if len(arrays[f.name]) != n:
                raise IndexCorrupt(f"{path} holds {len(arrays[f.name])} rows, the manifest says {n}")
        return cls(**arrays)
