#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests, or stop one.
#
#   eval "$(scripts/start-postgres.sh)"        # start; exports TRUTHSET_TEST_POSTGRES_URL and PGTEST_DIR
#   scripts/start-postgres.sh stop "$PGTEST_DIR" # stop it and delete its files
#
# The cluster lives in a temporary directory, listens on 127.0.0.1 on a random free port (and on a
# Unix socket inside that directory), trusts local connections, and runs with fsync off: it is for
# tests only and holds nothing worth keeping. Running as root (CI), initdb and the server run as the
# `postgres` user (or `nobody`), since PostgreSQL refuses to run as root.
#
# Only `export ...` lines go to stdout (for eval); progress and errors go to stderr.
set -euo pipefail

log() { echo "start-postgres: $*" >&2; }

find_bindir() {
    local candidate
    if [[ -n "${PG_BINDIR:-}" && -x "$PG_BINDIR/pg_ctl" ]]; then
        echo "$PG_BINDIR"
        return 0
    fi
    # Debian keeps the real binaries in /usr/lib/postgresql/<major>/bin (newest first); a PATH
    # pg_ctl may be a symlink into it.
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -nr) /usr/local/pgsql/bin; do
        if [[ -x "$candidate/pg_ctl" && -x "$candidate/initdb" && -x "$candidate/postgres" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null && command -v initdb >/dev/null && command -v postgres >/dev/null; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

# Run a command as the cluster's owner (a non-root user when we are root).
RUN_AS=""
as_owner() {
    if [[ -n "$RUN_AS" ]]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_cluster() {
    local dir="$1" bindir
    [[ -d "$dir" ]] || return 0
    bindir="$(find_bindir)" || { log "no PostgreSQL binaries found"; return 1; }
    if [[ "$(id -u)" == 0 ]]; then
        RUN_AS="$(stat -c %U "$dir")"
        [[ "$RUN_AS" == root ]] && RUN_AS=""
    fi
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

start_cluster() {
    local bindir dir port dbname="${PGTEST_DATABASE:-truthset_test}" user=postgres attempt
    bindir="$(find_bindir)" || {
        log "no PostgreSQL binaries found (apt-get install -y postgresql, or set PG_BINDIR)"
        return 1
    }
    if [[ "$(id -u)" == 0 ]]; then
        if getent passwd postgres >/dev/null; then RUN_AS=postgres; else RUN_AS=nobody; fi
    fi
    dir="$(mktemp -d "${TMPDIR:-/tmp}/truthset-pg.XXXXXX")"
    chmod 0755 "$dir"
    [[ -n "$RUN_AS" ]] && chown "$RUN_AS" "$dir"
    log "initdb in $dir with $bindir${RUN_AS:+ as $RUN_AS}"
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U "$user" -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300" >/dev/null 2>&1; then
            break
        fi
        log "start on port $port failed (attempt $attempt)"
        port=""
    done
    if [[ -z "$port" ]]; then
        cat "$dir/server.log" >&2 || true
        rm -rf "$dir"
        return 1
    fi
    "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U "$user" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $dbname" >&2
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, database $dbname"
    echo "export PGTEST_DIR=$dir"
    echo "export TRUTHSET_TEST_POSTGRES_URL=postgresql+psycopg://$user@127.0.0.1:$port/$dbname"
}

case "${1:-start}" in
    start) start_cluster ;;
    stop) stop_cluster "${2:?usage: $0 stop DIR}" ;;
    *)
        echo "usage: $0 [start] | stop DIR" >&2
        exit 2
        ;;
esac
