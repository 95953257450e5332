#!/usr/bin/env bash
# Matches per second and time to match with the realistic exchange, for one
# in-memory node, one Redis node and three Redis nodes, measured with
# stranger-load in the same run; plus Redis commands per match from INFO
# commandstats. Everything on 127.0.0.1; every run is bounded by --duration.
# Usage: scripts/bench-backends.sh [clients] [seconds] [runs]
# BIN_DIR=dir uses the stranger and stranger-load binaries in dir instead of
# building them (to compare an older build with this one in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-200}
SECS=${2:-15}
RUNS=${3:-3}
B=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$B"' EXIT
if [ -n "${BIN_DIR:-}" ]; then
  cp "$BIN_DIR/stranger" "$BIN_DIR/stranger-load" "$B/"
else
  go build -o "$B/stranger" ./cmd/stranger
  go build -o "$B/stranger-load" ./cmd/stranger-load
fi
RPORT=16399
# POW=N asks every new session for proof of work of difficulty N (default 0: off,
# so the figures compare with the earlier ones); the load generator solves it.
FLAGS=(--admin-addr "" --max-conns-per-ip 0 --msg-rate 100000 --msg-burst 100000 --log-level warn --stun "")
# Builds with moderation keep reports and bans in --data-dir (a temporary
# one here), and several nodes on one Redis must share a PostgreSQL: a
# throwaway server for the run (older builds have neither flag).
DB_FLAGS=()
if "$B/stranger" --help 2>&1 | grep -q -- '-database'; then
  FLAGS+=(--data-dir "$B/data")
  go build -o "$B/pgrun" ./internal/pgtest/pgrun
  coproc PG { "$B/pgrun"; }
  read -r DATABASE <&"${PG[0]}"
  DB_FLAGS=(--database "$DATABASE")
fi
if "$B/stranger" --help 2>&1 | grep -q -- '-pow-difficulty'; then
  FLAGS+=(--pow-difficulty "${POW:-0}")
fi
# Builds with per-identity quotas: off, every client is 127.0.0.1.
if "$B/stranger" --help 2>&1 | grep -q -- '-conn-rate'; then
  FLAGS+=(--conn-rate 0 --max-waiting-per-ip 0 --next-rate 0)
fi

waitready() { for _ in $(seq 100); do curl -sf "http://$1/readyz" >/dev/null && return 0; sleep 0.1; done; echo "node $1 not ready" >&2; return 1; }

run() { # name, nodes, redis?
  local name=$1 n=$2 redis=$3 urls="" pids="" i
  if [ "$redis" = 1 ]; then
    redis-server --port $RPORT --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
    RP=$!
    for _ in $(seq 50); do redis-cli -p $RPORT ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p $RPORT config resetstat >/dev/null
  fi
  for i in $(seq "$n"); do
    local port=$((18180 + i))
    if [ "$redis" = 1 ]; then
      "$B/stranger" --addr 127.0.0.1:$port --redis redis://127.0.0.1:$RPORT/0 "${FLAGS[@]}" "${DB_FLAGS[@]}" 2>"$B/$name-$i.log" &
    else
      "$B/stranger" --addr 127.0.0.1:$port "${FLAGS[@]}" 2>"$B/$name-$i.log" &
    fi
    pids="$pids${pids:+,}$!"
    urls="$urls${urls:+,}ws://127.0.0.1:$port/ws"
    waitready 127.0.0.1:$port
  done
  "$B/stranger-load" --url "$urls" --pid "$pids" --clients "$CLIENTS" --chat-duration 0 \
    --duration "${SECS}s" --json 2>/dev/null > "$B/$name.json"
  if [ "$redis" = 1 ]; then
    redis-cli -p $RPORT info commandstats > "$B/$name.stats"
  fi
  kill ${pids//,/ } 2>/dev/null; wait ${pids//,/ } 2>/dev/null || true
  if [ "$redis" = 1 ]; then kill $RP; wait $RP 2>/dev/null || true; fi
  python3 - "$name" "$B/$name.json" "$B/$name.stats" "$n" <<'PY'
import json, sys, re, os
name, jf, sf, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = json.load(open(jf))
def g(*ks):
    v = r
    for k in ks:
        if not isinstance(v, dict) or k not in v: return None
        v = v[k]
    return v
m = r.get("matches_per_sec") or r.get("matches_per_second") or g("matches","per_sec")
out = {"backend": name, "nodes": n, "report": r}
if os.path.exists(sf):
    calls = 0; cmds = {}
    for line in open(sf):
        mm = re.match(r"cmdstat_(\w+):calls=(\d+)", line)
        if mm: cmds[mm.group(1)] = int(mm.group(2)); calls += int(mm.group(2))
    out["redis_calls"] = calls; out["redis_cmds"] = cmds
print(json.dumps(out))
PY
}

for r in $(seq "$RUNS"); do
  run memory 1 0
  run redis1 1 1
  run redis3 3 1
done
