#!/usr/bin/env bash
# `make run`: the whole system on loopback with the built-in registry, the demo seed and demo
# traffic. Starts nats-server (JetStream, store in .run/nats) and `bashu --target all`, submits
# demo stories, then shows what arrives in some counties' feeds until Ctrl-C, and stops all it
# started. Ports: NATS_PORT (4222), BASHU_HTTP__LISTEN (127.0.0.1:8080),
# BASHU_GRPC__LISTEN (127.0.0.1:50051).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
nats_port=${NATS_PORT:-4222}
export BASHU_NATS__URL=${BASHU_NATS__URL:-nats://127.0.0.1:$nats_port}
export BASHU_HTTP__LISTEN=${BASHU_HTTP__LISTEN:-127.0.0.1:8080}
export BASHU_GRPC__LISTEN=${BASHU_GRPC__LISTEN:-127.0.0.1:50051}
export BASHU_REGISTRY__SEED_DEMO=true
# Dev only: the bootstrap operator's token for the admin API and bashuctl.
export BASHU_ADMIN__OPERATOR_TOKEN=${BASHU_ADMIN__OPERATOR_TOKEN:-dev-operator-token}
export BASHU_REGISTRY__DEMO_CREDENTIALS_FILE=${BASHU_REGISTRY__DEMO_CREDENTIALS_FILE:-.run/demo-credentials.json}
nats_server=$([ -x .tools/nats/bin/nats-server ] && echo .tools/nats/bin/nats-server || command -v nats-server)
bashu=${RUN_BASHU_BIN:-target/debug/bashu}
[ -n "${CARGO_TARGET_DIR:-}" ] && bashu=${RUN_BASHU_BIN:-$CARGO_TARGET_DIR/debug/bashu}

mkdir -p .run
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped nats-server and bashu (logs in .run/)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# NATS identities, as in production (docs/security.md): each service connects with its own nkey
# (generated once into .run/nats-keys), and nats-server's authorization is generated from them
# and from the counties' and desks' identities, rewritten and reloaded by `bashu nats-auth watch`.
# BASHU_INSECURE_NATS=1 runs nats-server without authorization instead. It is this script's own
# switch: bashu reads every BASHU_ variable as configuration and would refuse it as unknown.
insecure_nats=${BASHU_INSECURE_NATS:-}
unset BASHU_INSECURE_NATS
if [ -z "$insecure_nats" ]; then
  export BASHU_NATS__NKEY_DIR="$root/.run/nats-keys"
  "$bashu" nats-auth init --dir "$BASHU_NATS__NKEY_DIR" > /dev/null
  [ -f .run/nats-auth.conf ] || "$bashu" nats-auth render --keys "$BASHU_NATS__NKEY_DIR" --out .run/nats-auth.conf
  printf 'pid_file: "%s"\ninclude "nats-auth.conf"\n' "$root/.run/nats-server.pid" > .run/nats-server.conf
else
  : > .run/nats-server.conf
fi
# An accepted alert carries its CAP document twice; real agency alerts come close to 1 MiB.
echo 'max_payload: 4MB' >> .run/nats-server.conf
nats_config=(--config .run/nats-server.conf)
"$nats_server" --jetstream --addr 127.0.0.1 --port "$nats_port" --store_dir .run/nats "${nats_config[@]}" > .run/nats-server.log 2>&1 &
pids+=($!)
if [ -z "$insecure_nats" ]; then
  for _ in $(seq 1 100); do grep -q "Server is ready" .run/nats-server.log && break; sleep 0.1; done
  "$bashu" nats-auth watch --keys "$BASHU_NATS__NKEY_DIR" --out .run/nats-auth.conf --pid-file .run/nats-server.pid > .run/nats-auth.log 2>&1 &
  pids+=($!)
fi
"$bashu" --target all > .run/bashu.log 2>&1 &
pids+=($!)

echo "waiting for bashu on http://$BASHU_HTTP__LISTEN ..."
for _ in $(seq 1 300); do
  if python3 - "$BASHU_HTTP__LISTEN" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}/readyz", timeout=1)
PY
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "bashu exited; see .run/bashu.log:"; tail -20 .run/bashu.log; exit 1; fi
  sleep 0.2
done

cat <<INFO

Bashu is running on loopback:
  NATS         $BASHU_NATS__URL          (JetStream store in .run/nats)
  HTTP ingest  POST http://$BASHU_HTTP__LISTEN/v1/stories   (canonical JSON of bashu.story.v1.Story;
               authorization: Bearer <countyTokens[code] in .run/demo-credentials.json>)
  HTTP alerts  POST http://$BASHU_HTTP__LISTEN/v1/alerts       (signed CAP 1.2 XML; docs/alerts.md)
  gRPC         $BASHU_GRPC__LISTEN   (IngestService, AlertService, ReviewService, the admin API, health, reflection)
  demo keys    $BASHU_REGISTRY__DEMO_CREDENTIALS_FILE   (demo desks' secret keys, county tokens and county NATS seeds, new on every start)
  NATS auth    ${BASHU_NATS__NKEY_DIR:-off (BASHU_INSECURE_NATS)}   (services' nkeys; authorization in .run/nats-auth.conf, docs/security.md)
  operators    BASHUCTL_TOKEN=$BASHU_ADMIN__OPERATOR_TOKEN target/debug/bashuctl bus health   (docs/operations.md; dev token only)
  duty board   http://$BASHU_HTTP__LISTEN/board/   (sign in with the operator token above, or a viewer's:
               BASHUCTL_TOKEN=$BASHU_ADMIN__OPERATOR_TOKEN target/debug/bashuctl token issue-staff --name 值班 --role viewer; docs/duty-board.md)
  logs         .run/bashu.log, .run/nats-server.log
  county feeds docs/county-integration.md (stream FEEDS, consumer feed-<code>)

Demo traffic: 隆昌市 511083 → partner 荣昌区 500153; 涪城区 510703 → the example Fujiang alliance;
an Exercise flood warning from the 绵阳 desk to prefecture 5107, acknowledged by 江油市;
the joint coverage plan 渝昆高铁川渝段开通 (永川区 with 江津区, 泸县, 叙州区; one phase late),
closed and settled (docs/coverage.md).

INFO
"$bashu" demo --http "http://$BASHU_HTTP__LISTEN" ${DEMO_SECONDS:+--for-seconds "$DEMO_SECONDS"}
