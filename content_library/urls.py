"""One page's address however a browser or a campaign link writes it: the key that finds an asset by URL.

A website knows the address a visitor is on and the ones they read, not the library's ids. The address
it sees differs from the one the library holds in ways that do not change the page: http or https, a
`www.` prefix, the host's case, a default port, a trailing slash, percent-escapes, the fragment, and
the tracking parameters campaign tools append (`utm_source`, `gclid`...). Other query parameters can
name the page (`?p=123`) and are kept, in sorted order.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

#: Query parameters added by campaign and analytics tools: they say how a visitor came, not which page.
_TRACKING = re.compile(
    r"^(utm_\w+|gclid|gbraid|wbraid|dclid|fbclid|msclkid|twclid|li_fat_id|yclid|mc_cid|mc_eid|_hsenc|_hsmi"
    r"|hsa_\w+|__hssc|__hstc|__hsfp|hsctatracking|mkt_tok|_ga|_gl|ref|referrer)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_url(text: str) -> bool:
    """Whether a reference to an asset is its address rather than its id (ids hold no `/`)."""
    return text[:8].lower().startswith(("http://", "https://"))


def url_key(url: str) -> str:
    """`url` reduced to what names the page: `https://www.Example.com/a/?utm_source=x#top` is `example.com/a`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # `https://]`, a port that is no number: valid to the schema, a key all the same
        return url.strip().lower()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    path = unquote(parts.path).rstrip("/")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    return f"{host}{f':{port}' if port else ''}{path}{'?' + urlencode(query) if query else ''}"
