"""Named exceptions of the engine; the CLI and the API turn them into user-facing errors."""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class: every error the engine raises on purpose."""


class ConfigError(RecommenderError):
    """A configuration file or setting is invalid."""


class IndexNotFound(RecommenderError):
    """No index has been built in the directory."""


class IndexCorrupt(RecommenderError):
    """An index file is missing, truncated, altered or from another model."""


class VersionChanged(RecommenderError):
    """A write was meant for an index version that is no longer the current one."""


class ModelError(RecommenderError):
    """The embedding model or the tagger cannot be loaded or does not match the index."""


class UnknownSignal(RecommenderError):
    """A buying signal outside the configured vocabulary."""


class AssetNotFound(RecommenderError):
    """No asset with that id is in the index."""


class UnknownReading(RecommenderError):
    """A request's `reading` names an asset that is not in the index."""
