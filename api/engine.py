"""The `Recommender` of this process: loaded once in `init_app`, reopened once in each forked worker.

gunicorn preloads the app in its master so that workers share the model's pages; the index must
still be opened again in each worker, because an SQLite connection must not be used across fork().
The model, the tagger and the ranking configuration are reused; the index files are memory-mapped,
so the workers share their pages too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Flask, current_app

from recommender import RankingConfig, Recommender, single_blas_thread

_KEY = "recommender"


class Engine:
    """Hands out this process's `Recommender`, opening it again after a fork."""

    def __init__(self, recommender: Recommender) -> None:
        self._recommender = recommender
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # The parent's instance is kept, never closed here: closing its SQLite connections in a child
        # process could disturb the parent's locks on the same files.
        self._inherited: list[Recommender] = []

    def get(self) -> Recommender:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    fresh = self._recommender.reopened()
                    self._inherited.append(self._recommender)
                    self._recommender, self._pid = fresh, os.getpid()
        return self._recommender


def init_app(app: Flask) -> None:
    """Load the index (and its model) once, before the first request; fail at start-up if it is unusable."""
    ready = app.config.get("RECOMMENDER")
    if ready is None:
        ranking = app.config.get("RANKING_CONFIG")
        config = RankingConfig.from_toml(ranking) if ranking else None
        ready = Recommender.load(Path(str(app.config["INDEX_DIR"])), config=config)
    app.extensions[_KEY] = Engine(ready)
    # Requests run side by side on a few cores: BLAS's threads would only spin beside them.
    single_blas_thread()


def current() -> Recommender:
    engine: Engine = current_app.extensions[_KEY]
    return engine.get()


def warm(app: Flask) -> None:
    """Open the index in this (freshly forked) process and run the model once, before the first request."""
    recommender = app.extensions[_KEY].get()
    # The first encode of a process initialises the runtime (about a second); a visitor should not wait.
    recommender.embedder.encode_query("warm up")
