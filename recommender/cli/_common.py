"""Shared pieces of the `recommender` commands: the group, common options, error handling."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from content_library import UTF8, LibraryError, text_encoding
from content_library.schema import not_a_role
from recommender.errors import RecommenderError

INDEX_DIR_HELP = "Index directory (default: $RECOMMENDER_INDEX_DIR or ./index)."


def index_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--index-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("RECOMMENDER_INDEX_DIR", "index"),
        show_default="./index",
        help=INDEX_DIR_HELP,
    )(func)


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="TOML file overriding ranking weights and parameters (see README, Configuration).",
    )(func)


def encoding_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--encoding",
        default=UTF8,
        show_default=True,
        callback=_checked_encoding,
        help="Encoding of text input (CSV, JSON Lines, JSON, Markdown): utf-8, or one byte per character, "
        "such as cp1252 (Excel's CSV on Western Windows) or latin-1.",
    )(func)


def _checked_encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return text_encoding(value)
    except LibraryError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's named errors into a one-line message and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (RecommenderError, LibraryError) as exc:
            raise click.ClickException(str(exc)) from exc
        except ValidationError as exc:
            raise click.ClickException(validation_message(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.version_option(package_name="buyer-stage-recommender")
def main(verbose: bool) -> None:
    """Content recommendations for B2B buyers by segment, committee role and buying stage.

    Example: build the shipped sample library, then ask for assets.

        recommender build-index --index-dir index

        recommender recommend --index-dir index --segment smb --stage decision --query "pricing"
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


def validation_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "input"
        message = not_a_role(error.get("input")) if field == "role" and error["type"] == "enum" else error["msg"]
        problems.append(f"{field}: {message}")
    return "invalid request: " + "; ".join(problems)
