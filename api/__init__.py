"""The HTTP API: JSON endpoints over `recommender.Recommender`, a playground page, and gunicorn serving."""

from api.app import create_app
from api.serving import serve_command

__all__ = ["create_app", "serve_command"]
