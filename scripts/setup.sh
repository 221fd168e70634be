#!/bin/sh
# All set-up on a fresh machine: a virtual environment, the CPU build of torch, the project with its
# dev and spark extras, and (when this user may install Debian packages) Chromium for the browser test.
set -eu
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch first and pinned: a plain `torch` (or any range a newer release satisfies) pulls a multi-GB CUDA build.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[dev,spark]"

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Debian's chromium for the browser test..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "Could not install chromium: the browser test will be skipped." >&2
    else
        echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)." >&2
    fi
fi
