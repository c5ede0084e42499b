#!/usr/bin/env bash
# PostgreSQL high availability on this machine with pg_auto_failover: a monitor, a primary and
# a synchronous standby on spare ports (never 5432), then the failover test (two gateways under
# load, the primary killed) against it, then everything stopped and removed.
#
#   deploy/ha/run.sh            # cluster up, `PAYGATE_HA=1 cargo test --test ha_failover`, down
#   deploy/ha/run.sh up         # cluster up only (prints the URLs); `down` removes it
#   deploy/ha/run.sh kill-primary   # SIGKILL the primary node (its keeper and its postgres)
#   deploy/ha/run.sh state      # pg_autoctl show state
#
# Needs: postgresql-15 and postgresql-15-auto-failover (Debian), run as root (the nodes run as
# the `postgres` user) or as that user. Settings: PAYGATE_HA_DIR (default /tmp/paygate-ha),
# PAYGATE_HA_PORT_BASE (default 6440: monitor +1, nodes +2 and +3).
set -euo pipefail

DIR=${PAYGATE_HA_DIR:-/tmp/paygate-ha}
BASE=${PAYGATE_HA_PORT_BASE:-6440}
MONITOR_PORT=$((BASE + 1))
NODE_PORTS=($((BASE + 2)) $((BASE + 3)))
PGBIN=${PAYGATE_HA_PGBIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MONITOR_URI="postgres://autoctl_node@127.0.0.1:${MONITOR_PORT}/pg_auto_failover?sslmode=disable"
# Health checks tightened from the defaults (5 s period, 20 s unhealthy timeout) so the test
# sees a failover in seconds; production keeps the defaults or sets them for its network.
HEALTH_CHECK_PERIOD_MS=${PAYGATE_HA_HEALTH_CHECK_PERIOD_MS:-1000}
UNHEALTHY_TIMEOUT_MS=${PAYGATE_HA_UNHEALTHY_TIMEOUT_MS:-5000}

# pg_autoctl keeps its configuration and state under XDG folders keyed by PGDATA: kept inside
# $DIR, so `down` leaves nothing behind and a new cluster never meets an old one's state.
PG_ENV=(PATH="$PGBIN:$PATH" XDG_CONFIG_HOME="$DIR/xdg/config" XDG_DATA_HOME="$DIR/xdg/data"
  XDG_RUNTIME_DIR="$DIR/xdg/run")
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- env "${PG_ENV[@]}" "$@"; }
else as_pg() { env "${PG_ENV[@]}" "$@"; }; fi

log() { printf '%s ha: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

for port in "$MONITOR_PORT" "${NODE_PORTS[@]}"; do
  if [ "$port" = 5432 ]; then echo "port 5432 is the shared test server: pick another base" >&2; exit 2; fi
done

# Runs `pg_autoctl "$@" --run` for the node $1 (a folder name) in a process group of its own,
# so the node (keeper and postgres) can be killed as one by its group id ($DIR/$1.pgid).
start_node() {
  local name=$1; shift
  if [ "$(id -u)" = 0 ]; then
    setsid runuser -u postgres -- env "${PG_ENV[@]}" pg_autoctl "$@" --run \
      >>"$DIR/$name.log" 2>&1 < /dev/null &
  else
    setsid env "${PG_ENV[@]}" pg_autoctl "$@" --run >>"$DIR/$name.log" 2>&1 < /dev/null &
  fi
  echo $! > "$DIR/$name.pgid"
}

state() { as_pg pg_autoctl show state --monitor "$MONITOR_URI" 2>/dev/null; }

# Waits until the monitor shows `$1` nodes in the given states (a grep -c count).
wait_for() {
  local pattern=$1 count=$2 limit_s=$3 waited=0
  until [ "$(state | grep -cE "$pattern" || true)" -ge "$count" ]; do
    sleep 1; waited=$((waited + 1))
    if [ "$waited" -ge "$limit_s" ]; then state >&2 || true; log "timed out waiting for $count × $pattern"; return 1; fi
  done
}

up() {
  if [ -e "$DIR" ]; then log "$DIR exists: run '$0 down' first"; exit 2; fi
  mkdir -p "$DIR/xdg/config" "$DIR/xdg/data" "$DIR/xdg/run"; chmod 700 "$DIR/xdg/run"
  chown -R postgres: "$DIR" 2>/dev/null || true
  log "monitor on $MONITOR_PORT"
  start_node monitor create monitor --pgdata "$DIR/monitor" --pgport "$MONITOR_PORT" \
    --hostname 127.0.0.1 --auth trust --no-ssl --pgctl "$PGBIN/pg_ctl"
  until as_pg psql -qAt -h 127.0.0.1 -p "$MONITOR_PORT" -d pg_auto_failover -c 'select 1' >/dev/null 2>&1; do sleep 0.5; done
  as_pg psql -qAt -h 127.0.0.1 -p "$MONITOR_PORT" -d pg_auto_failover \
    -c "alter system set pgautofailover.health_check_period = $HEALTH_CHECK_PERIOD_MS" \
    -c "alter system set pgautofailover.node_considered_unhealthy_timeout = $UNHEALTHY_TIMEOUT_MS" \
    -c "select pg_reload_conf()" >/dev/null
  local i=1
  for port in "${NODE_PORTS[@]}"; do
    log "node$i on $port"
    start_node "node$i" create postgres --pgdata "$DIR/node$i" --pgport "$port" \
      --listen 127.0.0.1 --hostname 127.0.0.1 --name "node$i" --dbname paygate \
      --monitor "$MONITOR_URI" --auth trust --no-ssl --pgctl "$PGBIN/pg_ctl"
    if [ "$i" = 1 ]; then wait_for '\| +single +\| +single' 1 120; fi
    i=$((i + 1))
  done
  wait_for '\| +(primary|secondary) +\| +(primary|secondary)' 2 300
  state
  log "sync: $(as_pg psql -qAt -h 127.0.0.1 -p "${NODE_PORTS[0]}" -d paygate -c 'show synchronous_standby_names') \
synchronous_commit=$(as_pg psql -qAt -h 127.0.0.1 -p "${NODE_PORTS[0]}" -d paygate -c 'show synchronous_commit')"
  echo "multi-host URL: $(as_pg pg_autoctl show uri --formation default --monitor "$MONITOR_URI" 2>/dev/null)"
}

# The node the monitor names primary: SIGKILL to its whole process group (keeper and postgres).
kill_primary() {
  local node
  node=$(state | awk -F'|' '$0 ~ /\| +primary +\| +primary/ {gsub(/ /, "", $1); print $1; exit}')
  if [ -z "$node" ]; then log "no primary now"; state >&2; return 1; fi
  local pgid; pgid=$(cat "$DIR/$node.pgid")
  log "SIGKILL to $node (process group $pgid)"
  kill -KILL -- "-$pgid"
  echo "$node"
}

down() {
  for f in "$DIR"/node*.pgid "$DIR"/monitor.pgid; do
    [ -e "$f" ] || continue
    kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  sleep 3
  for f in "$DIR"/node*.pgid "$DIR"/monitor.pgid; do
    [ -e "$f" ] || continue
    kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$DIR"
  log "cluster removed"
}

case "${1:-all}" in
  up) up ;;
  down) down ;;
  state) state ;;
  kill-primary) kill_primary ;;
  all)
    trap down EXIT
    up
    cd "$ROOT"
    PAYGATE_HA=1 \
    PAYGATE_HA_HOSTS="127.0.0.1:${NODE_PORTS[0]},127.0.0.1:${NODE_PORTS[1]}" \
    PAYGATE_HA_KILL_PRIMARY="$HERE/run.sh kill-primary" \
      cargo test --locked --test ha_failover -- --nocapture
    ;;
  *) echo "usage: $0 [all|up|down|state|kill-primary]" >&2; exit 2 ;;
esac
