"""Commands that work offline over whole files: tag, recommend-batch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from content_library import RecordProblem
from recommender.cli._common import config_option, encoding_option, index_dir_option, main, user_errors
from recommender.config import DEFAULT_MODEL, RankingConfig
from recommender.types import MAX_K, MAX_STEPS

_ENGINE_HELP = "local: batched in this process; spark: on a Spark cluster (needs the `spark` extra)."


def _batch_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["jsonl", "csv", "parquet"]),
            help="Output format (default: from OUTPUT's extension).",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["jsonl", "json", "csv", "parquet", "markdown"]),
            help="Input format for --engine spark when INPUT is a folder of mixed files or has no extension.",
        ),
        encoding_option,
        click.option(
            "--batch-size",
            type=click.IntRange(1, 100_000),
            default=256,
            show_default=True,
            help="Records per batch: the unit of memory, progress and --resume.",
        ),
        click.option(
            "--skip-invalid", is_flag=True, help="Skip invalid records (each is reported) instead of stopping."
        ),
        click.option("--resume", is_flag=True, help="Continue an interrupted run on the same input (local engine)."),
        click.option(
            "--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True, help=_ENGINE_HELP
        ),
        click.option(
            "--master",
            default="local[*]",
            show_default=True,
            help="Spark master URL for --engine spark (local[N], spark://..., yarn, k8s://...).",
        ),
        click.option(
            "--partitions",
            type=click.IntRange(1),
            help="Spark tasks to split the work into (default: 4 per core, at most one per batch).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.argument("output", metavar="OUTPUT")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Embedding model the tagger was trained on.")
@click.option(
    "--tagger",
    "tagger_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Trained tagger folder (default: the shipped one in models/tagger).",
)
@_batch_options
@user_errors
def tag(
    input_path: str,
    output: str,
    model: str,
    tagger_dir: Path | None,
    fmt: str | None,
    input_format: str | None,
    encoding: str,
    batch_size: int,
    skip_invalid: bool,
    resume: bool,
    engine: str,
    master: str,
    partitions: int | None,
) -> None:
    """Label every asset of INPUT with segments, stages and roles, and write them to OUTPUT.

    INPUT is JSON Lines, CSV, Parquet or a folder (of those, or of Markdown files with front matter).
    Each output row is the asset with its curated labels kept and missing ones predicted, `scores`
    per label, `language` (detected when the input has none), `detected_language` and
    `model_version`. OUTPUT is written atomically; with --engine spark it is a folder of part files.

    Example: recommender tag content/export.csv tagged.jsonl --skip-invalid
    """
    from models import TAGGER_DIR
    from recommender.tagging import Tagger

    _check_arguments(input_path, output, fmt, engine, resume)
    tagger = Tagger.load(tagger_dir or TAGGER_DIR)
    if engine == "spark":
        from recommender import spark_engine

        summary = spark_engine.run_tag(
            input_path,
            output,
            model=model,
            tagger=tagger,
            fmt=fmt,
            input_format=input_format,
            encoding=encoding,
            batch_size=batch_size,
            skip_invalid=skip_invalid,
            partitions=partitions,
            master=master,
            on_problem=_report_problem,
        )
    else:
        from recommender.batch import run_local
        from recommender.batch_jobs import TagJob
        from recommender.embeddings import load_embedder

        job = TagJob(load_embedder(model), tagger)
        summary = run_local(job, input_path, output, **_local_options(fmt, encoding, batch_size, skip_invalid, resume))
    click.echo(summary.line())


@main.command("recommend-batch")
@click.argument("contacts", metavar="CONTACTS")
@click.argument("output", metavar="OUTPUT")
@index_dir_option
@click.option("-k", type=click.IntRange(1, MAX_K), default=10, show_default=True, help="Assets per contact.")
@click.option(
    "--steps",
    type=click.IntRange(1, MAX_STEPS),
    help=f"A nurture sequence of this many assets (1-{MAX_STEPS}) per contact, one per email, instead of a list.",
)
@config_option
@click.option(
    "--ship-index", is_flag=True, help="--engine spark: copy the index to every executor instead of a shared path."
)
@_batch_options
@user_errors
def recommend_batch(
    contacts: str,
    output: str,
    index_dir: Path,
    k: int,
    steps: int | None,
    config_path: Path | None,
    ship_index: bool,
    fmt: str | None,
    input_format: str | None,
    encoding: str,
    batch_size: int,
    skip_invalid: bool,
    resume: bool,
    engine: str,
    master: str,
    partitions: int | None,
) -> None:
    """Next-best assets for every contact of CONTACTS, written to OUTPUT.

    Each contact row has `contact_id`, `segment` and any of `role`, `stage` or `signals`, `query`,
    `language`, `exclude`, `asset_types`, `k` (lists as arrays or "a|b"); other columns are ignored.
    Each output row has the contact's resolved `stage`, its `stage_source`, the ranked `asset_ids`
    with `scores`, the `items` (id, title, type, language, url) and the `index_version`. With
    --steps N each contact gets a nurture sequence instead: N assets moving down the funnel from its
    stage, each item naming its step's `stage`. The whole run ranks freshness against the date it
    started, also when resumed.

    Example: recommender recommend-batch nurture.csv next.csv --index-dir index -k 5
    """
    _check_arguments(contacts, output, fmt, engine, resume)
    if steps is not None and click.get_current_context().get_parameter_source("k") is ParameterSource.COMMANDLINE:
        raise click.UsageError("-k is for lists; a sequence holds one asset per step: --steps alone sets its length.")
    if ship_index and engine != "spark":
        raise click.UsageError("--ship-index is for --engine spark; the local engine reads --index-dir directly.")
    config = RankingConfig.from_toml(config_path) if config_path else None
    if engine == "spark":
        from recommender import spark_engine

        summary = spark_engine.run_recommend(
            contacts,
            output,
            index_dir=index_dir,
            k=k,
            steps=steps,
            config=config,
            ship_index=ship_index,
            fmt=fmt,
            input_format=input_format,
            encoding=encoding,
            batch_size=batch_size,
            skip_invalid=skip_invalid,
            partitions=partitions,
            master=master,
            on_problem=_report_problem,
        )
    else:
        import datetime as dt

        from recommender.batch import run_local
        from recommender.batch_jobs import PinnedDate, RecommendJob
        from recommender.engine import Recommender, single_blas_thread

        single_blas_thread()  # one contact's products are small: see the function
        today = PinnedDate(dt.date.today())
        recommender = Recommender.load(index_dir, config=config, today=today)
        job = RecommendJob(recommender, k=k, steps=steps, config=recommender.config, today=today)
        summary = run_local(job, contacts, output, **_local_options(fmt, encoding, batch_size, skip_invalid, resume))
    click.echo(summary.line())


def _local_options(fmt: str | None, encoding: str, batch_size: int, skip_invalid: bool, resume: bool) -> dict[str, Any]:
    from recommender.batch import ProgressMode

    return {
        "fmt": fmt,
        "encoding": encoding,
        "batch_size": batch_size,
        "skip_invalid": skip_invalid,
        "resume": resume,
        "progress": ProgressMode.BAR if sys.stderr.isatty() else ProgressMode.LINES,
        "on_problem": _report_problem,
    }


def _check_arguments(source: str, output: str, fmt: str | None, engine: str, resume: bool) -> None:
    """Mistakes found before a model loads (seconds) or a Spark session starts."""
    from recommender.batch_io import output_format

    output_format(output, fmt)
    if engine == "spark" and resume:
        raise click.UsageError(
            "--resume is for the local engine; Spark retries failed tasks itself, so rerun a failed Spark job whole."
        )
    if engine == "local" and not Path(source).exists():
        raise click.ClickException(f"No such file or folder: '{source}'.")


def _report_problem(problem: RecordProblem) -> None:
    click.echo(f"skipped: {problem}", err=True)
