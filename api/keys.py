"""Make an API key and the hashed entry to configure it with.

    python -m api.keys                   a new random key with the write scope
    python -m api.keys --scopes read     a new key with other scopes
    echo -n "$KEY" | python -m api.keys -   the entry of an existing key, read from stdin

Give the key to the client and put the entry (never the key) into RECOMMENDER_API_KEYS.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from api.auth import SCOPES, hash_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("key", nargs="?", help="'-' to read an existing key from stdin; omit to make a new one")
    parser.add_argument("--scopes", default="write", help=f"comma-separated, among {', '.join(SCOPES)}")
    args = parser.parse_args(argv)
    scopes = [s for s in args.scopes.split(",") if s]
    if not scopes or any(s not in SCOPES for s in scopes):
        parser.error(f"--scopes takes {', '.join(SCOPES)} joined by commas")
    if args.key not in (None, "-"):
        parser.error("pass '-' and the key on stdin (a key on the command line lands in the shell history)")
    key = sys.stdin.read().strip() if args.key == "-" else secrets.token_urlsafe(32)
    if not key:
        parser.error("no key on stdin")
    entry = f"{hash_key(key)}:{','.join(scopes)}"
    if args.key is None:
        print(f"key:   {key}")
        print(f"entry: {entry}")
    else:
        print(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
