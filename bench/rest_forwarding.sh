#!/usr/bin/env bash
# REST forwarding throughput: naftiko vs a bare forwarder, both against bench/upstream.py.
#   bash bench/rest_forwarding.sh [DURATION_SECONDS] [CONNECTIONS]
# Needs wrk (Debian package). Prints requests/s and latency for each, alternating runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=${2:-32}
UP=19999; NAF=18080; MCP=19090; FWD=18081
python bench/upstream.py $UP & UP_PID=$!
METRONOME_API_KEY=bench naftiko-run capabilities/metronome-customers.yaml \
  --base-uri metronome-customers=http://127.0.0.1:$UP \
  --port metronome-customers-rest=$NAF --port metronome-customers-mcp=$MCP --log-level warning >/dev/null 2>&1 & NAF_PID=$!
UPSTREAM=http://127.0.0.1:$UP uvicorn --app-dir bench forwarder:app --port $FWD --http httptools --loop uvloop \
  --no-access-log --log-level warning & FWD_PID=$!
trap 'kill $UP_PID $NAF_PID $FWD_PID 2>/dev/null' EXIT
sleep 2
curl -sf http://127.0.0.1:$NAF/v1/v1/customers/c-1 >/dev/null
curl -sf http://127.0.0.1:$FWD/v1/v1/customers/c-1 >/dev/null
for round in 1 2; do
  for target in naftiko:$NAF forwarder:$FWD; do
    name=${target%%:*}; port=${target##*:}
    wrk -t1 -c1 -d2s http://127.0.0.1:$port/v1/v1/customers/c-1 >/dev/null  # warm-up
    out=$(wrk -t2 -c$CONNS -d${DUR}s --latency http://127.0.0.1:$port/v1/v1/customers/c-1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "round $round  $name  c=$CONNS  req/s=$rps  p50=$p50  p99=$p99"
  done
done
