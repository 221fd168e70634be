"""The content library: the asset schema, loaders for the formats teams keep content in, and the sample."""

from content_library.loaders import (
    SAMPLE_LIBRARY,
    Library,
    LibraryError,
    RawRecord,
    RecordInvalid,
    RecordProblem,
    detect_format,
    iter_records,
    load_library,
    parse_record,
)
from content_library.schema import LABEL_FIELDS, Asset, AssetType, Role, Segment, Stage

__all__ = [
    "LABEL_FIELDS",
    "SAMPLE_LIBRARY",
    "Asset",
    "AssetType",
    "Library",
    "LibraryError",
    "RawRecord",
    "RecordInvalid",
    "RecordProblem",
    "Role",
    "Segment",
    "Stage",
    "detect_format",
    "iter_records",
    "load_library",
    "parse_record",
]
