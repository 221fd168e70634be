"""The command that serves the HTTP API: serve."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from recommender.cli._common import index_dir_option, main, user_errors
from recommender.store import IndexStore


@main.command()
@index_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker processes; they share the model's pages and the memory-mapped index.",
)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Threads per worker.")
@user_errors
def serve(index_dir: Path, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn (the playground page is at /).

    The server picks up a rebuilt index (`recommender build-index` into the same directory)
    without a restart. Configure keys and CORS with RECOMMENDER_* variables (see README).

    Example: recommender serve --index-dir index --host 0.0.0.0 --port 8000 --workers 4
    """
    IndexStore(index_dir).manifest()  # fail here, with the fix, rather than in every worker
    # The web stack lives in `api`; running it as a module keeps Flask out of this package.
    argv = [sys.executable, "-m", "api.serving", str(Path(index_dir).resolve()), host, str(port), str(workers)]
    os.execv(sys.executable, [*argv, str(threads)])
