"""Commands that train and measure the tagger: train-tagger."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from content_library import SAMPLE_LIBRARY, load_library
from recommender.cli._common import encoding_option, main, user_errors
from recommender.config import DEFAULT_MODEL


@main.command("train-tagger")
@click.argument("library", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Embedding model the tagger reads.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for tagger.npz, tagger.json and MODEL_CARD.md (default: the shipped models/tagger).",
)
@click.option("--no-cv", is_flag=True, help="Skip the leave-one-vendor-out cross-validation.")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print the model card data as JSON.")
@user_errors
def train_tagger(
    library: tuple[Path, ...], model: str, output: Path | None, no_cv: bool, encoding: str, as_json: bool
) -> None:
    """Train the segment/stage/role tagger on a library's curated labels (default: the sample).

    Cross-validation holds out one site (URL host) at a time and reports per-label F1 on the
    held-out vendor; the figures go into MODEL_CARD.md beside the artifacts.

    Example: recommender train-tagger my_library.jsonl --output my_tagger
    """
    from models import TAGGER_DIR
    from recommender.build import library_checksum
    from recommender.embeddings import load_embedder
    from recommender.training import cross_validate, model_card, render_model_card, train

    assets = load_library(*(library or [SAMPLE_LIBRARY]), encoding=encoding).assets
    embedder = load_embedder(model)
    embeddings = embedder.encode([a.text for a in assets], progress=sys.stderr.isatty())
    cv = None if no_cv else cross_validate(assets, embeddings, model=embedder.name)
    tagger = train(assets, embeddings, model=embedder.name)
    card = model_card(tagger, assets, cv, library_checksum(assets))
    folder = output or TAGGER_DIR
    tagger.save(folder, card=card)
    (folder / "MODEL_CARD.md").write_text(render_model_card(card), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    click.echo(f"Trained tagger {tagger.version} on {len(assets)} assets; saved to {folder}.")
    if cv:
        for field, value in cv.macro.items():
            click.echo(f"  held-out-vendor macro-F1 {field}: {value:.3f}")
