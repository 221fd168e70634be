"""The content library: the asset schema, loaders for the formats teams keep content in, and the sample."""

from content_library.loaders import (
    SAMPLE_LIBRARY,
    Library,
    LibraryError,
    RawRecord,
    RecordInvalid,
    RecordProblem,
    csv_delimiter,
    detect_format,
    is_absent,
    iter_records,
    jsonl_record,
    load_library,
    parse_record,
    too_many_cells,
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
    "csv_delimiter",
    "detect_format",
    "is_absent",
    "iter_records",
    "jsonl_record",
    "load_library",
    "parse_record",
    "too_many_cells",
]
