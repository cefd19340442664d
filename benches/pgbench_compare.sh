#!/usr/bin/env bash
# Compares `pgbench -S` throughput direct vs PgBouncer (session mode) vs pgvigil on this
# machine (SPEC section 8): interleaved runs, median of ROUNDS, plus 1-client latency.
#
# Usage: benches/pgbench_compare.sh        (from anywhere; it cds to the repository root)
#
# Environment (all optional):
#   DURATION=10        seconds per pgbench run
#   ROUNDS=3           interleaved rounds; the table shows medians
#   CLIENTS=8 JOBS=2   pgbench -c / -j for the throughput runs
#   SCALE=10           pgbench -i scale
#   MODES="simple extended prepared"   pgbench -M protocols to compare
#   LATENCY_MODE=simple   protocol of the 1-client latency runs
#   PGVIGIL_SKIP=1     leave pgvigil out (no build); direct and PgBouncer only
#   NO_BUILD=1         do not run `cargo build --release` first
#   PGVIGIL_BIN=target/release/pgvigil
#   CLASSIFICATION=benches/classification.yaml   (pgbench tables classified, a dozen rules)
#   PGVIGIL_PG_BIN=/usr/lib/postgresql/15/bin   server + pgbench binaries (else auto-detected)
#   PGBOUNCER=/usr/sbin/pgbouncer
#   KEEP=1             keep the work directory (logs, audit.jsonl) instead of removing it
#
# It starts its own throwaway cluster (as the `postgres` user when run as root, since
# initdb refuses root), PgBouncer and pgvigil, and stops them all and removes the work
# directory on exit, including on Ctrl-C or a failed run.

set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
MODES=${MODES:-simple extended prepared}
LATENCY_MODE=${LATENCY_MODE:-simple}
PGVIGIL_SKIP=${PGVIGIL_SKIP:-0}
NO_BUILD=${NO_BUILD:-0}
KEEP=${KEEP:-0}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PGVIGIL_BIN=${PGVIGIL_BIN:-$REPO/target/release/pgvigil}
CLASSIFICATION=${CLASSIFICATION:-$REPO/benches/classification.yaml}

die() { echo "pgbench_compare: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

find_pg_bin() {
    if [[ -n ${PGVIGIL_PG_BIN:-} ]]; then echo "$PGVIGIL_PG_BIN"; return; fi
    local v
    for v in 17 16 15 14; do
        if [[ -x /usr/lib/postgresql/$v/bin/postgres ]]; then echo "/usr/lib/postgresql/$v/bin"; return; fi
    done
    if command -v pg_config >/dev/null; then pg_config --bindir; return; fi
    die "PostgreSQL server binaries not found: apt-get install postgresql-15 or set PGVIGIL_PG_BIN"
}
PG_BIN=$(find_pg_bin)
[[ -x $PG_BIN/initdb && -x $PG_BIN/pgbench ]] || die "no initdb/pgbench in $PG_BIN"
PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
[[ -x $PGBOUNCER ]] || die "pgbouncer not found: apt-get install pgbouncer or set PGBOUNCER"

IS_ROOT=0
[[ $(id -u) == 0 ]] && IS_ROOT=1
# initdb, postgres and pgbouncer all refuse to run as root.
as_server_user() {
    if ((IS_ROOT)); then (cd "$WORK" && runuser -u postgres -- "$@"); else (cd "$WORK" && "$@"); fi
}

# A port nothing answers on. Services are started one after another, so a port picked
# here is taken by the time the next one is picked.
free_port() {
    local p
    for _ in $(seq 200); do
        p=$(( (RANDOM % 20000) + 30000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port found"
}

wait_for_port() { # port seconds what
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgvigil-bench.XXXXXX")
chmod 755 "$WORK"
((IS_ROOT)) && chown postgres:postgres "$WORK"
PG_STARTED=0
BOUNCER_PIDFILE=$WORK/pgbouncer.pid
PGVIGIL_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $PGVIGIL_PID ]]; then
        kill "$PGVIGIL_PID" 2>/dev/null || true
        wait "$PGVIGIL_PID" 2>/dev/null || true
    fi
    if [[ -s $BOUNCER_PIDFILE ]]; then
        local bpid i
        bpid=$(cat "$BOUNCER_PIDFILE")
        kill "$bpid" 2>/dev/null || true
        # It is a daemon, not our child: poll until it is gone before removing its files.
        for ((i = 0; i < 50; i++)); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
    fi
    if ((PG_STARTED)); then
        as_server_user "$PG_BIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if ((KEEP)); then
        echo "# kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------
if [[ $PGVIGIL_SKIP != 1 ]]; then
    if [[ $NO_BUILD != 1 ]]; then
        log "cargo build --release"
        cargo build --release >&2
    fi
    [[ -x $PGVIGIL_BIN ]] || die "$PGVIGIL_BIN not built"
    [[ -e $CLASSIFICATION ]] || die "classification $CLASSIFICATION not found"
fi

# --- PostgreSQL ----------------------------------------------------------------------------
PG_PORT=$(free_port)
log "initdb + postgres on 127.0.0.1:$PG_PORT in $WORK"
as_server_user "$PG_BIN/initdb" -D "$WORK/data" -U postgres --auth=trust -E UTF8 --no-locale \
    --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
# Same durability shortcuts as the test clusters: we measure the proxy, not the disk.
cat >>"$WORK/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
PG_STARTED=1
as_server_user "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/postgres.log" -w -t 60 start >/dev/null \
    || { tail -20 "$WORK/postgres.log" >&2; die "postgres did not start"; }
PGB=("$PG_BIN/pgbench" -h 127.0.0.1 -U postgres)
log "pgbench -i -s $SCALE"
"${PG_BIN}/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench
"${PGB[@]}" -p "$PG_PORT" -i -s "$SCALE" -q bench >"$WORK/pgbench-init.log" 2>&1 \
    || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }

# --- PgBouncer (session mode, trust, a server connection per client) ------------------------
BOUNCER_PORT=$(free_port)
POOL_SIZE=$((CLIENTS > 1 ? CLIENTS + 2 : 3))
cat >"$WORK/userlist.txt" <<EOF
"postgres" ""
EOF
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
default_pool_size = $POOL_SIZE
max_client_conn = $((POOL_SIZE * 4))
logfile = $WORK/pgbouncer.log
pidfile = $BOUNCER_PIDFILE
ignore_startup_parameters = extra_float_digits
EOF
chmod 644 "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
log "pgbouncer on 127.0.0.1:$BOUNCER_PORT"
as_server_user "$PGBOUNCER" -d -q "$WORK/pgbouncer.ini" \
    || { tail -20 "$WORK/pgbouncer.log" >&2 || true; die "pgbouncer did not start"; }
wait_for_port "$BOUNCER_PORT" 10 || die "pgbouncer is not listening on $BOUNCER_PORT"

# --- pgvigil ------------------------------------------------------------------------------
TARGETS=(direct pgbouncer)
declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT)
if [[ $PGVIGIL_SKIP != 1 ]]; then
    VIGIL_PORT=$(free_port)
    log "pgvigil on 127.0.0.1:$VIGIL_PORT (audit log $WORK/audit.jsonl)"
    "$PGVIGIL_BIN" serve --listen "127.0.0.1:$VIGIL_PORT" --upstream "127.0.0.1:$PG_PORT" \
        --classification "$CLASSIFICATION" --audit-log "$WORK/audit.jsonl" \
        >"$WORK/pgvigil.log" 2>&1 &
    PGVIGIL_PID=$!
    wait_for_port "$VIGIL_PORT" 30 || { tail -20 "$WORK/pgvigil.log" >&2; die "pgvigil is not listening"; }
    TARGETS+=(pgvigil)
    PORT[pgvigil]=$VIGIL_PORT
fi
for t in "${TARGETS[@]}"; do
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "${PORT[$t]}" -U postgres -d bench -c 'SELECT 1' >/dev/null \
        || die "cannot query bench through $t"
done

# --- measuring ----------------------------------------------------------------------------
# Runs pgbench -S against a target; prints "tps latency_ms". Fails loudly with pgbench's
# output, since a silent gap in the table would hide a broken proxy.
run_pgbench() { # target mode clients jobs
    local out tps lat
    out=$("${PGB[@]}" -p "${PORT[$1]}" -S -M "$2" -c "$3" -j "$4" -T "$DURATION" -n bench 2>&1) \
        || { echo "$out" >&2; die "pgbench failed against $1 (-M $2 -c $3)"; }
    # PG 15: "tps = N (without initial connection time)"; PG 14: "(excluding connections ...)".
    tps=$(awk '/^tps = / && /without initial|excluding/ { print $3; exit }' <<<"$out")
    lat=$(awk '/^latency average = / { print $4; exit }' <<<"$out")
    if grep -q '^number of failed transactions: [1-9]' <<<"$out"; then
        echo "$out" >&2; die "pgbench reported failed transactions against $1"
    fi
    [[ -n $tps && -n $lat ]] || { echo "$out" >&2; die "cannot parse pgbench output ($1)"; }
    echo "$tps $lat"
}

median() { # numbers...
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "NA"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "NA" }'; }

declare -A TPS LAT
NT=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in $MODES; do
        # Rotate the order each round so no target always runs first (warm caches, turbo).
        for ((k = 0; k < NT; k++)); do
            t=${TARGETS[$(((k + round) % NT))]}
            # An assignment, not `< <(...)`, so a failed run stops the script under set -e.
            res=$(run_pgbench "$t" "$mode" "$CLIENTS" "$JOBS")
            read -r tps _ <<<"$res"
            TPS[$mode,$t]="${TPS[$mode,$t]:-} $tps"
            log "round $round/$ROUNDS -M $mode -c $CLIENTS $t: $tps tps"
        done
    done
    for ((k = 0; k < NT; k++)); do
        t=${TARGETS[$(((k + round) % NT))]}
        res=$(run_pgbench "$t" "$LATENCY_MODE" 1 1)
        read -r _ lat <<<"$res"
        LAT[$t]="${LAT[$t]:-} $lat"
        log "round $round/$ROUNDS -M $LATENCY_MODE -c 1 $t: $lat ms average latency"
    done
done

# --- report -------------------------------------------------------------------------------
echo
echo "pgbench -S, scale $SCALE, -c $CLIENTS -j $JOBS, ${DURATION}s runs, median of $ROUNDS" \
     "interleaved rounds, $(nproc) CPUs, $("$PG_BIN/pgbench" --version | head -1)"
echo
echo "| mode | direct median TPS | pgbouncer | pgvigil | pgvigil/pgbouncer | pgvigil/direct |"
echo "|---|---:|---:|---:|---:|---:|"
for mode in $MODES; do
    # shellcheck disable=SC2086 # word splitting of the collected values is intended
    d=$(median ${TPS[$mode,direct]})
    # shellcheck disable=SC2086
    b=$(median ${TPS[$mode,pgbouncer]})
    if [[ $PGVIGIL_SKIP != 1 ]]; then
        # shellcheck disable=SC2086
        v=$(median ${TPS[$mode,pgvigil]})
        printf '| %s | %.0f | %.0f | %.0f | %s | %s |\n' "$mode" "$d" "$b" "$v" \
            "$(ratio "$v" "$b")" "$(ratio "$v" "$d")"
    else
        printf '| %s | %.0f | %.0f | skipped | - | - |\n' "$mode" "$d" "$b"
    fi
done
echo
# shellcheck disable=SC2086
ld=$(median ${LAT[direct]})
# shellcheck disable=SC2086
lb=$(median ${LAT[pgbouncer]})
line="1-client average latency (-M $LATENCY_MODE): direct ${ld} ms, pgbouncer ${lb} ms"
if [[ $PGVIGIL_SKIP != 1 ]]; then
    # shellcheck disable=SC2086
    lv=$(median ${LAT[pgvigil]})
    added=$(awk -v v="$lv" -v d="$ld" 'BEGIN { printf "%.1f", (v - d) * 1000 }')
    line+=", pgvigil ${lv} ms (added ${added} µs over direct)"
fi
echo "$line"
