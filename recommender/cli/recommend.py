"""Commands that rank assets for buyers: recommend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from recommender.cli._common import config_option, index_dir_option, main, user_errors
from recommender.config import RankingConfig


@main.command()
@index_dir_option
@click.option(
    "--segment", required=True, type=click.Choice(["enterprise", "smb"], case_sensitive=False), help="Buyer segment."
)
@click.option(
    "--role",
    help="Committee role: executive, finance, it, procurement or end_user (owner for SMB), or a job title naming "
    "one ('Head of IT').",
)
@click.option(
    "--stage",
    type=click.Choice(["awareness", "consideration", "decision", "retention"], case_sensitive=False),
    help="Buying stage.",
)
@click.option("--signal", "signals", multiple=True, help="A buying-signal event, oldest first; repeatable.")
@click.option("--query", help="What the buyer searched or read.")
@click.option("--reading", help="Id or URL of the asset the buyer is reading: assets on its topic, never it again.")
@click.option("--language", help="Preferred language: ISO 639-1 (en, de, id), a tag (de-DE) or a name (German).")
@click.option("--exclude", multiple=True, help="Asset id or URL never to return; repeatable.")
@click.option("--asset-type", "asset_types", multiple=True, help="Only this asset type; repeatable.")
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
    from recommender.types import BuyerRequest

    request = BuyerRequest(**{k: v for k, v in fields.items() if v not in (None, ())})
    config = RankingConfig.from_toml(config_path) if config_path else None
    result = Recommender.load(index_dir, config=config).recommend(request)
    if as_json:
        # The stage source's fields without a value are left out, as the HTTP API leaves them.
        unset = {name for name, value in result.stage_source if value is None}
        click.echo(
            result.model_dump_json(indent=2, exclude={"items": {"__all__": {"asset": {"body"}}}, "stage_source": unset})
        )
        return
    click.echo(f"Stage: {result.stage.value} ({result.stage_source})")
    for rank, item in enumerate(result.items, 1):
        asset = item.asset
        top = sorted(item.reasons.items(), key=lambda kv: -abs(kv[1]))[:3]
        why = ", ".join(f"{name} {value:+.2f}" for name, value in top)
        click.echo(
            f"{rank:>3}. {item.score:6.3f}  {item.id:<22} {asset.asset_type.value:<14} {asset.language}  "
            f"{asset.title[:60]}\n      {why}"
        )
