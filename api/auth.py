"""API keys for the write routes: configured as SHA-256 hashes, compared in constant time.

A key entry is `sha256:<64 hex digits>:<scopes>` with scopes among `read` and `write` joined by
commas, e.g. `sha256:9f86d0…:write,read`. RECOMMENDER_API_KEYS holds entries separated by
whitespace, or a JSON list of them. `python -m api.keys` makes a new key and its entry. Keys are
long random strings, so one round of SHA-256 is enough to store them; the keys themselves are
never stored, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request

from api.errors import ApiError
from recommender.errors import ConfigError

SCOPES = ("read", "write")
_ENTRY = re.compile(r"^sha256:([0-9a-f]{64}):([a-z,]+)$")
_KEY = "api_keys"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ApiKey:
    digest: bytes
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_keys(value: str | list[str] | tuple[str, ...] | None) -> tuple[ApiKey, ...]:
    """Key entries from configuration; raises ConfigError naming the entry's position and problem."""
    if not value:
        return ()
    entries = value.split() if isinstance(value, str) else list(value)
    keys = []
    for position, entry in enumerate(entries, 1):
        match = _ENTRY.match(entry.strip().lower()) if isinstance(entry, str) else None
        if match is None:
            raise ConfigError(
                f"API key entry {position} is not 'sha256:<64 hex digits>:<scopes>'; make one with `python -m api.keys`"
            )
        scopes = frozenset(s for s in match.group(2).split(",") if s)
        unknown = sorted(scopes - set(SCOPES))
        if unknown or not scopes:
            raise ConfigError(f"API key entry {position} has unknown scopes {unknown}; scopes are {', '.join(SCOPES)}")
        keys.append(ApiKey(bytes.fromhex(match.group(1)), scopes))
    return tuple(keys)


def init_app(app: Any) -> None:
    app.extensions[_KEY] = parse_keys(app.config.get("API_KEYS"))
    if not app.extensions[_KEY]:
        app.logger.warning("no API keys configured: every write route answers 401")


def require(scope: str) -> Callable[[F], F]:
    """Decorate a view so that it runs only for a request carrying a valid key with `scope`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = _presented_key()
            if scope not in key.scopes:
                raise ApiError(403, f"this API key may not {scope}: it lacks the '{scope}' scope")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _presented_key() -> ApiKey:
    challenge = {"WWW-Authenticate": 'Bearer realm="recommender"'}
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "this route needs an API key: send the header Authorization: Bearer <key>", headers=challenge
        )
    digest = hashlib.sha256(token.strip().encode()).digest()
    found = None
    # Every configured key is compared, in constant time, whatever matched before.
    for key in current_app.extensions[_KEY]:
        if hmac.compare_digest(digest, key.digest):
            found = key
    if found is None:
        raise ApiError(401, "the API key is not valid", headers=challenge)
    return found
