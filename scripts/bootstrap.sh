#!/usr/bin/env bash
# Sourced by ./lineup and ./test: puts uv on PATH (installing it into .tools/
# when the machine has none) and brings .venv in line with uv.lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x .tools/bin/uv ]; then
    echo "bootstrap: installing uv into .tools/ (one time)" >&2
    python3 -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check uv
  fi
  export PATH="$root/.tools/bin:$PATH"
fi
uv sync --frozen --quiet
