"""gunicorn settings for the API: `gunicorn --config <path of this file> 'api:create_app()'`.

Give the file's path, not `python:api.gunicorn_conf`: importing it as a module would import the
`api` package, and with it prometheus_client, before PROMETHEUS_MULTIPROC_DIR is set below.

The app is preloaded in the master: the model is loaded once and its pages are shared by the forked
workers, and each worker memory-maps the same index files. gthread workers answer several requests
at once per process. Every setting can be overridden on the command line; the environment gives
the defaults: RECOMMENDER_BIND (host:port), RECOMMENDER_WORKERS, RECOMMENDER_THREADS.
Logs are JSON lines on stderr (see api.request_log); gunicorn's own access log is off because the
app writes one line per request itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Before anything imports prometheus_client: with several workers, metrics go through this folder.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recommender-metrics-")
    _own_metrics_dir = True
else:
    _own_metrics_dir = False
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

bind = os.environ.get("RECOMMENDER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECOMMENDER_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("RECOMMENDER_THREADS", "4"))
preload_app = True
# gthread workers heartbeat from their main loop, so a long bulk upsert does not trip this.
timeout = 120
graceful_timeout = 30
keepalive = 5
# Request line and header limits (gunicorn's defaults, stated): longer ones get 400 before the app.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# A control socket at a fixed path would clash between two servers on one machine; nothing uses it.
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = "info"
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "api.request_log.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        # At INFO, sentence-transformers draws a progress bar on stderr for every query it encodes.
        "sentence_transformers": {"level": "WARNING"},
    },
}


def on_starting(server: Any) -> None:
    # Values left by a previous run would be added to this run's.
    for path in _metrics_dir.glob("*.db"):
        path.unlink()


def post_worker_init(worker: Any) -> None:
    from api.engine import warm

    warm(worker.wsgi)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
