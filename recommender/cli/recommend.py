"""Commands that rank assets for buyers: recommend, sequence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from recommender.cli._common import config_option, index_dir_option, main, user_errors
from recommender.config import RankingConfig
from recommender.types import MAX_STEPS

if TYPE_CHECKING:
    from recommender.types import BuyerRequest, RecommendedItem, StageSource


def _buyer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that describe a buyer, shared by `recommend` and `sequence`."""
    options = [
        click.option(
            "--segment",
            required=True,
            type=click.Choice(["enterprise", "smb"], case_sensitive=False),
            help="Buyer segment.",
        ),
        click.option(
            "--role",
            help="Committee role: executive, finance, it, procurement or end_user (owner for SMB), or a job title "
            "naming one ('Head of IT').",
        ),
        click.option(
            "--stage",
            type=click.Choice(["awareness", "consideration", "decision", "retention"], case_sensitive=False),
            help="Buying stage; wins over signals.",
        ),
        click.option("--signal", "signals", multiple=True, help="A buying-signal event, oldest first; repeatable."),
        click.option("--query", help="What the buyer searched or read."),
        click.option(
            "--reading", help="Id or URL of the asset the buyer is reading: assets on its topic, never it again."
        ),
        click.option(
            "--language", help="Preferred language: ISO 639-1 (en, de, id), a tag (de-DE) or a name (German)."
        ),
        click.option("--exclude", multiple=True, help="Asset id or URL never to return; repeatable."),
        click.option("--asset-type", "asset_types", multiple=True, help="Only this asset type; repeatable."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _request(fields: dict[str, Any]) -> BuyerRequest:
    from recommender.types import BuyerRequest

    return BuyerRequest(**{k: v for k, v in fields.items() if v not in (None, ())})


def _stage_source_unset(source: StageSource) -> set[str]:
    # The stage source's fields without a value are left out, as the HTTP API leaves them.
    return {name for name, value in source if value is None}


@main.command()
@index_dir_option
@_buyer_options
@click.option("-k", type=int, default=10, show_default=True, help="How many assets (1-100).")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the reasons of every item.")
@user_errors
def recommend(index_dir: Path, config_path: Path | None, as_json: bool, **fields: Any) -> None:
    """Which assets should this buyer see next? Prints a ranked table (or JSON).

    Example: recommender recommend --segment enterprise --role finance --signal demo
    --signal technical_discussion --query "cut invoice approval time" --language de
    """
    from recommender.engine import Recommender

    request = _request(fields)
    config = RankingConfig.from_toml(config_path) if config_path else None
    result = Recommender.load(index_dir, config=config).recommend(request)
    if as_json:
        unset = _stage_source_unset(result.stage_source)
        click.echo(
            result.model_dump_json(indent=2, exclude={"items": {"__all__": {"asset": {"body"}}}, "stage_source": unset})
        )
        return
    click.echo(f"Stage: {result.stage.value} ({result.stage_source})")
    for rank, item in enumerate(result.items, 1):
        click.echo(_line(f"{rank:>3}.", item))


@main.command()
@index_dir_option
@_buyer_options
@click.option(
    "--steps",
    type=click.IntRange(1, MAX_STEPS),
    default=4,
    show_default=True,
    help=f"How many emails (1-{MAX_STEPS}).",
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the reasons of every step's asset.")
@user_errors
def sequence(index_dir: Path, config_path: Path | None, as_json: bool, steps: int, **fields: Any) -> None:
    """A nurture sequence for this buyer: one asset per email, moving down the funnel, never repeating.

    The first email's stage is --stage, else the one the signals (or --reading) point to, else the
    default; later emails move towards decision.

    Example: recommender sequence --segment smb --role owner --signal pricing_page_view --steps 5
    --query "shift swaps"
    """
    from recommender.engine import Recommender

    request = _request(fields)
    config = RankingConfig.from_toml(config_path) if config_path else None
    result = Recommender.load(index_dir, config=config).sequence(request, steps)
    if as_json:
        unset = _stage_source_unset(result.stage_source)
        click.echo(
            result.model_dump_json(
                indent=2, exclude={"steps": {"__all__": {"item": {"asset": {"body"}}}}, "stage_source": unset}
            )
        )
        return
    click.echo(f"First stage: {result.stage.value} ({result.stage_source})")
    for number, step in enumerate(result.steps, 1):
        click.echo(_line(f"{number:>3}. {step.stage.value:<13}", step.item))
    if len(result.steps) < steps:
        click.echo(f"Only {len(result.steps)} of {steps} steps: no other asset fits this buyer.")


def _line(head: str, item: RecommendedItem) -> str:
    asset = item.asset
    top = sorted(item.reasons.items(), key=lambda kv: -abs(kv[1]))[:3]
    why = ", ".join(f"{name} {value:+.2f}" for name, value in top)
    return (
        f"{head} {item.score:6.3f}  {item.id:<22} {asset.asset_type.value:<14} {asset.language}  "
        f"{asset.title[:60]}\n      {why}"
    )
