#!/usr/bin/env bash
# Throwaway PostgreSQL servers for tests, from Debian's packages, on 127.0.0.1 only.
#
# PostgreSQL refuses to run as root, so the servers run as the unprivileged user `nobody` with
# data directories under a fresh temp dir that user owns.
#
# Usage:
#   scripts/postgres.sh install            install the Debian packages if absent
#   scripts/postgres.sh start DIR [-c NAME=VALUE ...]
#                                          init + start one server in DIR (made if missing);
#                                          prints its URL (postgres://kvmux@127.0.0.1:PORT/kvmux).
#                                          Extra -c options override the defaults (fsync=off ...),
#                                          e.g. -c fsync=on -c full_page_writes=on for durability
#   scripts/postgres.sh start-ha DIR       a primary and two synchronous streaming replicas;
#                                          prints three URLs, primary first
#   scripts/postgres.sh stop DIR           stops every server started in DIR, by PID, and removes DIR
set -euo pipefail

RUN_AS=nobody

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

install_pg() {
  if pg_bindir >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and we are not root to install it" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  pg_bindir >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# as_user CMD...: runs CMD as the unprivileged user (or as ourselves when we are not root).
as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

prepare_dir() {
  local dir=$1
  mkdir -p "$dir"
  chmod 0755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$dir"
  return 0
}

# init_server DATA: an empty cluster with trust auth on loopback (a test database, no secrets).
init_server() {
  local bin=$1 data=$2
  as_user "$bin/initdb" -D "$data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null
}

# launch BIN DATA PORT NAME [extra -c options...]: starts postgres in the background, waits for it.
launch() {
  local bin=$1 data=$2 port=$3 name=$4; shift 4
  as_user "$bin/postgres" -D "$data" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$data" -c fsync=off -c full_page_writes=off \
    -c max_connections=200 -c shared_buffers=32MB -c cluster_name="$name" "$@" \
    >"$data.log" 2>&1 &
  echo $! >"$data.pid"
  local i
  for i in $(seq 1 200); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres 2>/dev/null; then
      # Record the postmaster's own PID: runuser does not pass our stop signal on.
      head -n 1 "$data/postmaster.pid" >"$data.pid"
      return 0
    fi
    if ! kill -0 "$(cat "$data.pid")" 2>/dev/null; then
      echo "postgres.sh: server $name exited; log:" >&2; tail -n 20 "$data.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "postgres.sh: server $name did not become ready" >&2
  return 1
}

create_db() {
  local bin=$1 port=$2
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE kvmux LOGIN SUPERUSER" -c "CREATE DATABASE kvmux OWNER kvmux" >/dev/null
}

start_one() {
  local dir=$1 bin port
  shift
  bin=$(pg_bindir)
  prepare_dir "$dir"
  port=$(free_port)
  init_server "$bin" "$dir/primary"
  launch "$bin" "$dir/primary" "$port" primary "$@"
  create_db "$bin" "$port"
  echo "postgres://kvmux@127.0.0.1:$port/kvmux"
}

start_ha() {
  local dir=$1 bin port r1 r2
  bin=$(pg_bindir)
  prepare_dir "$dir"
  port=$(free_port)
  init_server "$bin" "$dir/primary"
  launch "$bin" "$dir/primary" "$port" primary -c wal_level=replica -c max_wal_senders=10
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE replicator LOGIN REPLICATION" >/dev/null
  echo "host replication replicator 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "SELECT pg_reload_conf()" >/dev/null
  local urls=("postgres://kvmux@127.0.0.1:$port/kvmux") name rport
  for name in replica1 replica2; do
    rport=$(free_port)
    as_user "$bin/pg_basebackup" -h 127.0.0.1 -p "$port" -U replicator -D "$dir/$name" \
      -R -X stream --no-sync >/dev/null
    launch "$bin" "$dir/$name" "$rport" "$name" \
      -c "primary_conninfo=host=127.0.0.1 port=$port user=replicator application_name=$name"
    urls+=("postgres://kvmux@127.0.0.1:$rport/kvmux")
  done
  # Now both replicas are synchronous: a commit returns only once both have applied it. (Set
  # after they exist, or every commit before, the role above included, would wait for them.)
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "ALTER SYSTEM SET synchronous_commit = remote_apply" \
    -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 2 (replica1, replica2)'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  local i sync=0
  for i in $(seq 1 200); do
    sync=$("$bin/psql" -tA -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
    [ "$sync" = 2 ] && break
    sleep 0.1
  done
  [ "$sync" = 2 ] || { echo "postgres.sh: replicas did not become synchronous" >&2; return 1; }
  create_db "$bin" "$port"
  printf '%s\n' "${urls[@]}"
}

stop_all() {
  local dir=$1 pidfile pid i
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -INT "$pid" 2>/dev/null || true  # fast shutdown
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  install) install_pg ;;
  start) install_pg; start_one "${2:?DIR}" "${@:3}" ;;
  start-ha) install_pg; start_ha "${2:?DIR}" ;;
  stop) stop_all "${2:?DIR}" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
