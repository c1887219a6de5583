#!/usr/bin/env bash
# `make demo`: a simulated router, the schema, the engine and a live tail, on this machine.
#
# Uses the embedded SQLite database in var/ (DATABASE_URL overrides), Redis database 1
# on 127.0.0.1:6379 (REDIS_URL overrides), and a simulator on 127.0.0.1:18728.
# Everything it starts is stopped on exit (Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var/demo
LOGS=var/demo

export DATABASE_URL="${DATABASE_URL:-sqlite:///var/demo/monitor.db}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/1}"
export MIKROTIK_PASS="${MIKROTIK_PASS:-demo-$RANDOM$RANDOM}"
export MAX_CONCURRENT_MONITORS="${MAX_CONCURRENT_MONITORS:-20}"
SIM_PORT="${SIM_PORT:-18728}"
DEMO_MONITORS="${DEMO_MONITORS:-3}"
DEMO_SECONDS="${DEMO_SECONDS:-}"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if ! $BIN/python -c "import redis,sys; redis.Redis.from_url('$REDIS_URL', socket_connect_timeout=2).ping()" 2>/dev/null; then
    echo "error: Redis is not reachable at $REDIS_URL (start redis-server, or set REDIS_URL)" >&2
    exit 1
fi

echo "== simulator (50 pppoe, 5 hotspot, 5 static customers) on 127.0.0.1:$SIM_PORT"
$BIN/python -m routeros.simulator --port "$SIM_PORT" --pppoe 50 --hotspot 5 --static 5 \
    --user admin --password-env MIKROTIK_PASS --seed 1 \
    --customers-json "$LOGS/customers.json" > "$LOGS/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -s "$LOGS/simulator.log" ] && break; sleep 0.1; done
cat "$LOGS/simulator.log"

echo "== schema and customers ($DATABASE_URL)"
$BIN/python -m models.migrate
$BIN/python -m models.seed --customers-json "$LOGS/customers.json" --mikrotik-id mikrotik-001 \
    --router-host 127.0.0.1 --router-port "$SIM_PORT" --router-user admin --router-password-env MIKROTIK_PASS

echo "== clean demo Redis database, then worker (monitors + default queues) and beat"
$BIN/python -c "import redis; redis.Redis.from_url('$REDIS_URL').flushdb()"
$BIN/celery -A tasks worker -Q monitors,default -P threads -c "$((MAX_CONCURRENT_MONITORS + 2))" \
    --disable-prefetch -E -n "demo@%h" --loglevel INFO > "$LOGS/worker.log" 2>&1 &
pids+=($!)
$BIN/celery -A tasks beat --schedule "$LOGS/celerybeat-schedule" --loglevel INFO > "$LOGS/beat.log" 2>&1 &
pids+=($!)

FLOWER_USER=admin
FLOWER_PASSWORD="${FLOWER_PASSWORD:-flower-$RANDOM$RANDOM}"
$BIN/celery -A tasks flower --address=127.0.0.1 --port=5555 --read_only=True \
    --basic-auth="$FLOWER_USER:$FLOWER_PASSWORD" > "$LOGS/flower.log" 2>&1 &
pids+=($!)
echo "Flower (read-only): http://127.0.0.1:5555  user $FLOWER_USER  password $FLOWER_PASSWORD"

echo "== starting $DEMO_MONITORS monitors"
$BIN/python - "$DEMO_MONITORS" <<'PY'
import json, sys
data = json.load(open("var/demo/customers.json"))
wanted = int(sys.argv[1])
kinds = ["pppoe", "hotspot", "static_ip"]
picked = []
for i in range(wanted):
    kind = kinds[i % len(kinds)]
    pool = [c for c in data["customers"] if c["service_type"] == kind and c["username"] not in picked]
    if pool:
        picked.append(pool[0]["username"])
open("var/demo/picked.txt", "w").write("\n".join(picked) + "\n")
PY
while read -r username; do
    $BIN/python -m tasks.cli start "mikrotik-001/$username" --by demo
done < "$LOGS/picked.txt"

echo "== live samples (Ctrl-C to stop; logs in $LOGS/)"
if [ -n "$DEMO_SECONDS" ]; then
    $BIN/python -m tasks.cli tail --seconds "$DEMO_SECONDS"
    $BIN/python -m tasks.cli status
else
    $BIN/python -m tasks.cli tail
fi
