"""Commands that measure ranking quality: evaluate, evaluate-holdout."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from content_library import SAMPLE_LIBRARY, load_library
from recommender.cli._common import config_option, encoding_option, index_dir_option, main, user_errors
from recommender.config import DEFAULT_MODEL, RankingConfig

if TYPE_CHECKING:
    from recommender.evaluation import EvalRequest

DEVSET = Path(SAMPLE_LIBRARY).parent / "devset"


def _requests_options(func):
    func = click.option(
        "--qrels",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=DEVSET / "qrels.jsonl",
        show_default="the shipped development set",
        help="Judgements, one JSON per line: qid, id, grade 0-3.",
    )(func)
    func = click.option(
        "--requests",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=DEVSET / "requests.jsonl",
        show_default="the shipped development set",
        help="Requests, one JSON per line: the recommend fields plus a qid.",
    )(func)
    func = click.option(
        "--stages",
        "stages_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=DEVSET / "judgements.jsonl",
        show_default="the shipped development set",
        help="Judged stages, one JSON per line: qid, expected_stage. Requests without a given stage are "
        "checked against them (qids not in the file are skipped).",
    )(func)
    func = click.option(
        "--compare",
        "compare_paths",
        multiple=True,
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Another ranking configuration (TOML) to score on the same requests, as a system named by its "
        "path; repeatable. The intervals then show the engine's lead over it, request by request.",
    )(func)
    return click.option("--json", "as_json", is_flag=True, help="Print every row as JSON.")(func)


def _compared(paths: tuple[Path, ...]) -> dict[str, RankingConfig]:
    return {str(path): RankingConfig.from_toml(path) for path in paths}


@main.command()
@index_dir_option
@_requests_options
@config_option
@user_errors
def evaluate(
    index_dir: Path,
    requests: Path,
    qrels: Path,
    stages_path: Path,
    compare_paths: tuple[Path, ...],
    as_json: bool,
    config_path: Path | None,
) -> None:
    """nDCG@10 and precision@10 of the engine and of BM25 and dense baselines on judged requests.

    Broken down per segment, stage source, language and query presence. When every asset's segments and
    stages in the index are curated, a third baseline, dense+labels, filters dense retrieval by them.

    Example: recommender evaluate --index-dir index --requests R.jsonl --qrels Q.jsonl --compare mine.toml
    """
    from recommender.engine import Recommender
    from recommender.evaluation import (
        confidence_intervals,
        read_expected_stages,
        read_qrels,
        read_requests,
        stage_agreement,
    )
    from recommender.evaluation import evaluate as run

    compare = _compared(compare_paths)
    recommender = Recommender.load(index_dir, config=RankingConfig.from_toml(config_path) if config_path else None)
    others = {
        name: Recommender(index_dir, recommender.embedder, recommender.tagger, config)
        for name, config in compare.items()
    }
    asked = _requests(read_requests(requests))
    report = run(recommender, asked, read_qrels(qrels), compare=others)
    stages = stage_agreement(asked, read_expected_stages(stages_path), recommender.config)
    intervals = confidence_intervals(report)
    if as_json:
        payload = {"ranking": report.table(), "intervals": intervals.as_dict(), "stage_inference": stages.as_dict()}
        click.echo(json.dumps(payload, indent=2))
        return
    _print(report.table(), False)
    click.echo("\n" + "\n".join(intervals.lines()))
    if stages.judged:
        click.echo("\n" + stages.line())


@main.command("evaluate-holdout")
@click.argument("library", nargs=-1, type=click.Path(exists=True, path_type=Path))
@_requests_options
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Embedding model.")
@config_option
@encoding_option
@user_errors
def evaluate_holdout(
    library: tuple[Path, ...],
    requests: Path,
    qrels: Path,
    stages_path: Path,
    compare_paths: tuple[Path, ...],
    as_json: bool,
    model: str,
    config_path: Path | None,
    encoding: str,
) -> None:
    """Ranking and tagging quality on vendors the models never saw (default: the sample library).

    Each site (URL host) in turn is stripped of its labels, tagged by a tagger trained on the
    other sites, indexed alone and evaluated on its judged requests; tagging F1 is measured the
    same way. This is the honest figure for a new customer's untagged library.

    Example: recommender evaluate-holdout --compare mine.toml
    """
    from recommender.embeddings import load_embedder
    from recommender.evaluation import (
        confidence_intervals,
        holdout_evaluation,
        read_expected_stages,
        read_qrels,
        read_requests,
        repeated_texts,
        stage_agreement,
        translation_agreement,
        translation_groups,
    )
    from recommender.training import cross_validate

    compare = _compared(compare_paths)
    assets = load_library(*(library or [SAMPLE_LIBRARY]), encoding=encoding).assets
    embedder = load_embedder(model)
    embeddings = embedder.encode([a.text for a in assets], progress=sys.stderr.isatty())
    config = RankingConfig.from_toml(config_path) if config_path else RankingConfig()
    asked = _requests(read_requests(requests))
    judged = read_qrels(qrels)
    with tempfile.TemporaryDirectory(prefix="holdout-") as work:
        report = holdout_evaluation(assets, embeddings, embedder, asked, judged, work, config=config, compare=compare)
    cv = cross_validate(assets, embeddings, model=embedder.name)
    stages = stage_agreement(asked, read_expected_stages(stages_path), config)
    translations = translation_agreement(assets, embeddings, config.translation_threshold, config.translation_floor)
    repeats = repeated_texts(report, "engine", judged, translation_groups(assets))
    intervals = confidence_intervals(report)
    rows = report.table()
    if as_json:
        payload = {"ranking": rows, "intervals": intervals.as_dict(), "tagging": cv.as_dict()}
        payload |= {"stage_inference": stages.as_dict()}
        payload |= {"translation_detection": translations.as_dict(), "repeated_texts": repeats.as_dict()}
        click.echo(json.dumps(payload, indent=2))
        return
    _print(rows, False)
    click.echo("\n" + "\n".join(intervals.lines()))
    click.echo(
        "\nTagging, held-out vendor, macro-F1 per field: " + ", ".join(f"{k} {v:.3f}" for k, v in cv.macro.items())
    )
    if stages.judged:
        click.echo(stages.line())
    if translations.pairs:
        click.echo(translations.line())
        click.echo(repeats.line())


def _requests(asked: list[EvalRequest]) -> list[EvalRequest]:
    """The requests read, after telling on stderr which of their fields were not a request's (a typo shows)."""
    ignored = Counter(name for request in asked for name in request.ignored)
    if ignored:
        names = ", ".join(f"{name} ({count})" for name, count in sorted(ignored.items()))
        click.echo(f"Ignored fields that are not a request's: {names}", err=True)
    return asked


def _print(rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    metrics = [key for key in rows[0] if key.startswith(("ndcg", "precision"))] if rows else []
    systems = list(dict.fromkeys(row["system"] for row in rows))
    columns = [(s, m, max(22, len(s) + 1 + len(m))) for m in metrics for s in systems]
    header = f"{'breakdown':<13}{'group':<20}{'n':>5}  " + "  ".join(f"{s + ' ' + m:>{w}}" for s, m, w in columns)
    click.echo(header)
    keyed = {(r["breakdown"], r["group"], r["system"]): r for r in rows}
    for breakdown, group in dict.fromkeys((r["breakdown"], r["group"]) for r in rows):
        first = keyed[(breakdown, group, systems[0])]
        values = "  ".join(f"{keyed[(breakdown, group, s)][m]:>{w}.3f}" for s, m, w in columns)
        click.echo(f"{breakdown:<13}{group:<20}{first['queries']:>5}  {values}")
