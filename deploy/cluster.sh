#!/usr/bin/env bash
# The local production rehearsal: PostgreSQL, Redis, three `indigo serve`
# processes and HAProxy in front of them, all on loopback, all under
# .cluster/ (data, logs and pid files). `deploy/cluster.sh start` starts
# them and prints where; `deploy/cluster.sh stop` stops exactly what start
# started (the pids it wrote), and nothing else.
#
# Ports: HAProxy 18080, hosts 18081-18083, PostgreSQL 55432, Redis 56379.
# Needs Debian's postgresql, redis-server and haproxy, and bin/indigo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$ROOT/.cluster
BIN=$ROOT/bin/indigo
PG_PORT=55432 REDIS_PORT=56379 LB_PORT=18080
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
export INDIGO_LB_PORT=$LB_PORT INDIGO_HOST1_PORT=18081 INDIGO_HOST2_PORT=18082 INDIGO_HOST3_PORT=18083

# PostgreSQL refuses to run as root: then the postgres user runs it, on a
# data folder in /tmp it can reach (the checkout may be under /root).
PGDATA=$DIR/pg
PGLOG=$DIR/logs/postgres.log
if [ "$(id -u)" = 0 ]; then
  PGDATA=/tmp/indigo-cluster-$(echo "$ROOT" | md5sum | cut -c1-8)/pg
  PGLOG=$(dirname "$PGDATA")/postgres.log
fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

stop() {
  for f in "$DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -f "$PGDATA/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null || true
  fi
  echo "cluster stopped"
}

pg_start() {
  as_pg "$PGBIN/pg_ctl -D '$PGDATA' -l '$PGLOG' -o '-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp' -w start" >/dev/null
}

pg_stop() {
  as_pg "$PGBIN/pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
}

# Redis keeps nothing on disk here: a restart starts it empty, as the
# failure tests want.
redis_start() {
  redis-server --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no --protected-mode no \
    --daemonize no >>"$DIR/logs/redis.log" 2>&1 &
  echo $! >"$DIR/pids/redis.pid"
  wait_for redis "redis-cli -p $REDIS_PORT ping"
}

redis_stop() {
  local pid
  pid=$(cat "$DIR/pids/redis.pid")
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$DIR/pids/redis.pid"
}

wait_for() { # name, command
  for _ in $(seq 1 100); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not come up; see $DIR/logs" >&2
  exit 1
}

start() {
  [ -x "$BIN" ] || { echo "build bin/indigo first (make build)" >&2; exit 1; }
  mkdir -p "$DIR/pids" "$DIR/logs" "$DIR/data"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$(dirname "$PGDATA")"
    chown postgres "$(dirname "$PGDATA")"
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb -D '$PGDATA' -U indigo --auth=trust -E UTF8 >/dev/null"
  fi
  pg_start
  as_pg "$PGBIN/psql -h 127.0.0.1 -p $PG_PORT -U indigo -d postgres -tc \"SELECT 1 FROM pg_database WHERE datname = 'indigo'\"" | grep -q 1 ||
    as_pg "$PGBIN/createdb -h 127.0.0.1 -p $PG_PORT -U indigo indigo"

  redis_start

  # Migrations once, before the hosts (which start with --no-migrate).
  "$BIN" db migrate up --config deploy/cluster.toml >"$DIR/logs/migrate.log"
  for i in 1 2 3; do
    port=$((18080 + i))
    INDIGO_SERVER_ADDR=127.0.0.1:$port INDIGO_SERVER_DATA_DIR=$DIR/data/host$i \
      "$BIN" serve --config deploy/cluster.toml --no-migrate >"$DIR/logs/host$i.log" 2>&1 &
    echo $! >"$DIR/pids/host$i.pid"
  done
  for i in 1 2 3; do wait_for "host$i" "curl -sf http://127.0.0.1:$((18080 + i))/readyz"; done

  haproxy -f deploy/haproxy.cfg -db >"$DIR/logs/haproxy.log" 2>&1 &
  echo $! >"$DIR/pids/haproxy.pid"
  wait_for haproxy "curl -sf http://127.0.0.1:$LB_PORT/readyz"
  cat <<TXT
cluster up:
  load balancer  http://127.0.0.1:$LB_PORT   (HAProxy, health checks on /readyz)
  hosts          http://127.0.0.1:18081 .. 18083
  PostgreSQL     postgres://indigo@127.0.0.1:$PG_PORT/indigo
  Redis          redis://127.0.0.1:$REDIS_PORT
  logs           $DIR/logs
A key:  $BIN orgs create Acme --config deploy/cluster.toml
stop:   make cluster-stop
TXT
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  # For the failure rehearsals (deploy/clustertest): one part down and up
  # again while the rest runs.
  redis-stop) redis_stop ;;
  redis-start) redis_start ;;
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  *) echo "usage: deploy/cluster.sh start|stop|redis-stop|redis-start|pg-stop|pg-start" >&2; exit 2 ;;
esac
