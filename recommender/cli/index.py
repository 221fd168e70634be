"""Commands that check a library and build and inspect an index: check-library, build-index, info, search, compact."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from content_library import SAMPLE_LIBRARY
from recommender.cli._common import encoding_option, index_dir_option, main, user_errors
from recommender.config import DEFAULT_MODEL


@main.command("build-index")
@click.argument("library", nargs=-1, type=click.Path(exists=True, path_type=Path))
@index_dir_option
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Embedding model name or local folder.")
@click.option(
    "--tagger",
    "tagger_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Trained tagger folder (default: the shipped one in models/tagger).",
)
@click.option("--no-tagger", is_flag=True, help="Do not predict labels: every asset must carry curated labels.")
@click.option(
    "--index-kind",
    type=click.Choice(["auto", "flat", "hnsw"]),
    default="auto",
    show_default=True,
    help="FAISS index: exact (flat), approximate (hnsw), or chosen by size (auto: hnsw from 100,000 assets).",
)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True, help="Encoding batch.")
@click.option(
    "--re-embed",
    is_flag=True,
    help="Embed every asset; by default an asset whose text the served version embedded keeps its vector.",
)
@click.option("--skip-invalid", is_flag=True, help="Load the valid assets and report the invalid ones.")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@user_errors
def build_index_command(
    library: tuple[Path, ...],
    index_dir: Path,
    model: str,
    tagger_dir: Path | None,
    no_tagger: bool,
    index_kind: str,
    batch_size: int,
    re_embed: bool,
    skip_invalid: bool,
    encoding: str,
    as_json: bool,
) -> None:
    """Build an index from content libraries (files or folders; default: the shipped sample).

    Formats: JSON Lines, CSV, Parquet, or a folder of Markdown files with YAML front matter.
    Assets without curated segments, stages or roles are labelled by the tagger. An asset whose
    title and body the served version embedded with the same model keeps its vector (--re-embed
    embeds all). The new version replaces the served one atomically; a failed build leaves the old
    one in place.

    Example: recommender build-index content/ extra.csv --index-dir index
    """
    from content_library import load_library
    from recommender.build import build_index
    from recommender.embeddings import load_embedder

    # The library first: a bad record is reported in a second, not after loading the model.
    assets = load_library(*(library or [SAMPLE_LIBRARY]), skip_invalid=skip_invalid, encoding=encoding)
    embedder = load_embedder(model)
    tagger = None if no_tagger else _load_tagger(tagger_dir)
    summary = build_index(
        assets,
        index_dir,
        embedder,
        tagger,
        index_kind=index_kind,
        batch_size=batch_size,
        progress=sys.stderr.isatty(),
        skip_invalid=skip_invalid,
        reuse_vectors=not re_embed,
    )
    report = {
        "index_dir": str(index_dir),
        "version": summary.manifest.version,
        "asset_count": summary.manifest.asset_count,
        "index_kind": summary.manifest.index_kind,
        "model": summary.manifest.model,
        "seconds": round(summary.seconds, 2),
        "embedded": summary.embedded,
        "reused": summary.reused,
        "asset_types": summary.asset_types,
        "languages": summary.languages,
        "label_sources": summary.label_sources,
        "skipped": summary.skipped,
        "ignored_fields": summary.ignored_fields,
        "detected_languages": summary.detected_languages,
        "types_by_word": _types_by_word(summary.types_by_word),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"Built index version {report['version']} in {index_dir}: {report['asset_count']} assets, "
        f"{report['index_kind']} index, model {report['model']}, {report['seconds']} s."
    )
    if summary.reused:
        click.echo(
            f"Embedded {summary.embedded} assets; {summary.reused} kept the vector the version served before "
            "gave their unchanged text (--re-embed embeds every asset)."
        )
    _print_counts(report, ("asset_types", "languages", "label_sources"))


@main.command("check-library")
@click.argument("library", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Count the valid assets and list the invalid ones.")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@user_errors
def check_library(library: tuple[Path, ...], skip_invalid: bool, encoding: str, as_json: bool) -> None:
    """Read content libraries as build-index reads them, without the model: a check of an export in seconds.

    Prints the counts per type and language, how many assets carry each curated label (the tagger
    predicts the others at build time), the languages read from the text of records that gave none and
    the fields that are not an asset's. Every invalid record fails the check (exit status 1) with its
    file, line and field, unless --skip-invalid lists them instead.

    Example: recommender check-library export.csv
    """
    from content_library import LABEL_FIELDS, load_library

    loaded = load_library(*(library or [SAMPLE_LIBRARY]), skip_invalid=skip_invalid, encoding=encoding)
    report: dict[str, Any] = {
        "asset_count": len(loaded.assets),
        "files": loaded.sources,
        "asset_types": loaded.count_by("asset_type"),
        "languages": loaded.count_by("language"),
        "curated_labels": {name: sum(bool(getattr(a, name)) for a in loaded.assets) for name in LABEL_FIELDS},
        "detected_languages": loaded.count_detected_languages(),
        "types_by_word": _types_by_word(loaded.types_by_word),
        "ignored_fields": loaded.ignored_fields,
        "skipped": [str(problem) for problem in loaded.skipped],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"Read {report['asset_count']} assets from {len(loaded.sources)} files.")
    _print_counts(report, ("asset_types", "languages", "curated_labels"))


_COUNT_TITLES = {
    "asset_types": "Asset types",
    "languages": "Languages",
    "label_sources": "Label sources",
    "curated_labels": "Assets with curated labels",
}


def _types_by_word(found: dict[str, tuple[str, int]]) -> dict[str, dict[str, Any]]:
    return {name: {"asset_type": kind, "assets": count} for name, (kind, count) in sorted(found.items())}


def _print_counts(report: dict[str, Any], counted: tuple[str, ...]) -> None:
    """The lines build-index and check-library print about a library, from their JSON report."""
    for name in counted:
        click.echo(f"{_COUNT_TITLES[name]}: " + ", ".join(f"{k} {v}" for k, v in report[name].items()))
    if report["detected_languages"]:
        detected = ", ".join(f"{k} {v}" for k, v in report["detected_languages"].items())
        click.echo(f"Languages read from the text of records that gave none: {detected}")
    if report["types_by_word"]:
        read = ", ".join(f"'{k}' as {v['asset_type']} ({v['assets']})" for k, v in report["types_by_word"].items())
        click.echo(
            f"Asset types read by a word of their name: {read}; to read a name otherwise, list it in your "
            "own names file (RECOMMENDER_ASSET_TYPES)"
        )
    if report["ignored_fields"]:
        click.echo("Ignored unknown fields: " + ", ".join(f"{k} ({v})" for k, v in report["ignored_fields"].items()))
    if report["skipped"]:
        click.echo(f"Skipped {len(report['skipped'])} invalid records:")
        for line in report["skipped"]:
            click.echo(f"  {line}")


@main.command()
@index_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def info(index_dir: Path, as_json: bool) -> None:
    """Describe an index: version, model, counts per language, type and label source.

    Example: recommender info --index-dir index --json
    """
    from recommender.engine import Recommender

    details = Recommender.load(index_dir).info()
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key == "missing_files":
            value = ", ".join(value) + " (run `recommender compact` to add them)" if value else "none"
        click.echo(f"{key}: {value}")


@main.command()
@click.argument("text")
@index_dir_option
@click.option("-k", type=click.IntRange(1, 100), default=10, show_default=True, help="How many results.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def search(text: str, index_dir: Path, k: int, as_json: bool) -> None:
    """Quick look: the assets closest in meaning to TEXT, without buyer fit.

    Example: recommender search --index-dir index "cut invoice approval time"
    """
    from recommender.engine import Recommender

    hits = Recommender.load(index_dir).search(text, k)
    if as_json:
        click.echo(json.dumps([{"id": i, "similarity": round(s, 4), "title": a.title} for i, s, a in hits], indent=2))
        return
    for asset_id, similarity, asset in hits:
        click.echo(f"{similarity:6.3f}  {asset_id:<24} {asset.asset_type.value:<14} {asset.language}  {asset.title}")


def _load_tagger(tagger_dir: Path | None) -> Any:
    from models import TAGGER_DIR
    from recommender.tagging import Tagger

    return Tagger.load(tagger_dir or TAGGER_DIR)


@main.command()
@index_dir_option
@click.option(
    "--index-kind",
    type=click.Choice(["auto", "flat", "hnsw"]),
    default="auto",
    show_default=True,
    help="FAISS index of the compacted version.",
)
@user_errors
def compact(index_dir: Path, index_kind: str) -> None:
    """Fold single-asset writes made since the last build into a new index version.

    Writes through the API stay in memory beside the memory-mapped base until then; compact
    after many of them. No model is loaded: the stored vectors are reused.

    Example: recommender compact --index-dir index
    """
    from recommender.build import compact as run

    manifest = run(index_dir, index_kind=index_kind)
    click.echo(f"Compacted into version {manifest.version}: {manifest.asset_count} assets, {manifest.index_kind}.")
