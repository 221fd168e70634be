"""The command that serves the API in production: gunicorn with `api.gunicorn_conf`."""

from __future__ import annotations

import sys
from pathlib import Path

GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4


def serve_command(
    index_dir: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
) -> list[str]:
    """The argv to exec for `recommender serve`: gunicorn, preloading the app, with gthread workers.

    Other settings (API keys, CORS origins, body limit) come from RECOMMENDER_* variables in the
    environment the command runs in; see `api.app.DEFAULTS`.
    """
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--env",
        f"RECOMMENDER_INDEX_DIR={Path(index_dir).resolve()}",
        "api:create_app()",
    ]


def main(argv: list[str] | None = None) -> None:
    """`python -m api.serving INDEX_DIR HOST PORT WORKERS THREADS`: exec gunicorn.

    `recommender serve` calls this, so that the core package never imports the web stack.
    """
    import os

    index_dir, host, port, workers, threads = argv if argv is not None else sys.argv[1:]
    command = serve_command(index_dir, host, int(port), int(workers), int(threads))
    # exec, not a child: signals from a process manager reach gunicorn's master directly.
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
