#!/usr/bin/env bash
# Re-resolve requirements.lock to the newest releases that pyproject.toml allows (Python 3.11, the
# version CI runs), then run CI on the result. Usage: scripts/upgrade-lock.sh [--package NAME ...]
#   no arguments      upgrade every dependency
#   --package NAME    upgrade only NAME (repeatable); every other pin stays
# uv is installed into a throw-away venv if it is not on PATH. Commit requirements.lock only
# when .ci/run passes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=$(command -v uv || true)
if [ -z "$uv" ]; then
  tools=$(mktemp -d)
  python3 -m venv "$tools" && "$tools/bin/pip" install -q uv && uv="$tools/bin/uv"
fi
upgrade=(--upgrade)
if [ "${1:-}" = "--package" ]; then
  upgrade=()
  while [ $# -gt 0 ]; do
    [ "$1" = "--package" ] && [ $# -ge 2 ] || { echo "usage: $0 [--package NAME ...]" >&2; exit 2; }
    upgrade+=(--upgrade-package "$2"); shift 2
  done
fi
"$uv" pip compile pyproject.toml --extra test -o requirements.lock --python-version 3.11 \
  --no-header --annotation-style line -q "${upgrade[@]}"
git --no-pager diff --stat -- requirements.lock
echo "requirements.lock re-resolved; now run: bash .ci/run" >&2
