"""The `recommender` command: a thin layer over the library. Every command's docstring is its help.

Each module registers its commands on the group `main`; importing them here assembles the CLI.
"""

from recommender.cli import batch, evaluation, index, recommend, serve, training  # noqa: F401  (registers the commands)
from recommender.cli._common import main

__all__ = ["main"]
