#!/usr/bin/env bash
# Throwaway PostgreSQL, NATS (JetStream) and snmpd for the test suite.
#   scripts/testenv.sh start DIR   start them, all state in DIR, writes DIR/env
#   scripts/testenv.sh snmpd DIR   only the SNMP agent (the demo's local agent: make demo-poll)
#   scripts/testenv.sh stop DIR    kill the PIDs recorded in DIR/*.pid, remove DIR
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

usage() { echo "usage: $0 start|snmpd|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")
export MIBS=  # Debian ships no MIBs; use numeric OIDs, skip loading
export SNMP_PERSISTENT_DIR=$dir/snmp

die() { echo "testenv: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME PIDFILE LOG CMD...: retry CMD for up to 30 s, fail with the log tail.
wait_for() {
    local name=$1 pidfile=$2 log=$3 i
    shift 3
    for ((i = 0; i < 150; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || break
        sleep 0.2
    done
    echo "testenv: $name did not come up; last lines of $log:" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

install_missing() {  # install_missing [snmp-only]
    local pkgs=() snmpd_was_running=no
    if [[ ${1:-} != snmp-only ]]; then
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || pkgs+=(postgresql)
        command -v nats-server >/dev/null || pkgs+=(nats-server)
    fi
    command -v snmpd >/dev/null || pkgs+=(snmpd)
    command -v snmpget >/dev/null || pkgs+=(snmp)
    [[ ${#pkgs[@]} -eq 0 ]] && return
    pgrep -x snmpd >/dev/null && snmpd_was_running=yes
    echo "testenv: installing ${pkgs[*]}" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"
    # The package may auto-start a system snmpd on port 161; we don't want it.
    if [[ $snmpd_was_running == no ]] && pgrep -x snmpd >/dev/null; then
        systemctl stop snmpd 2>/dev/null || service snmpd stop 2>/dev/null || pkill -x snmpd || true
    fi
}

start_postgres() {
    local bin port
    bin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1)
    port=$(free_port)
    id -u postgres >/dev/null 2>&1 || useradd --system postgres
    mkdir -p "$dir/pg"
    chown postgres: "$dir/pg"
    # initdb/postgres refuse to run as root; cd / so they don't complain about our cwd.
    as_pg() { (cd / && runuser -u postgres -- "$@"); }
    as_pg "$bin/initdb" -D "$dir/pg/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/pg/initdb.log" 2>&1 ||
        { tail -n 30 "$dir/pg/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/pg/data/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/pg'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    # On failure wait_for below reports it; record the PID even then so stop can kill it.
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 30 start >/dev/null || true
    head -n 1 "$dir/pg/data/postmaster.pid" >"$dir/postgres.pid" 2>/dev/null || true
    wait_for postgres "$dir/postgres.pid" "$dir/pg/log" \
        "$bin/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc 'select 1'
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres tslcd_test
    echo "export TSLCD_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/tslcd_test" >>"$dir/env"
}

nats_ready() {
    # A live server greets every client with an INFO line; check JetStream is on too.
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 line <&3 && [[ $line == INFO*'"jetstream":true'* ]])
}

start_nats() {
    local port
    port=$(free_port)
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/nats" </dev/null >"$dir/nats.log" 2>&1 &
    echo $! >"$dir/nats.pid"
    wait_for nats "$dir/nats.pid" "$dir/nats.log" nats_ready "$port"
    echo "export TSLCD_TEST_NATS_URL=nats://127.0.0.1:$port" >>"$dir/env"
}

start_snmpd() {
    local port v3=(-v3 -l authPriv -u tslcdv3 -a SHA -A tslcd-auth-pass -x AES -X tslcd-priv-pass)
    port=$(free_port)
    mkdir -p "$dir/snmp"
    cat >"$dir/snmpd.conf" <<EOF
rocommunity public 127.0.0.1
createUser tslcdv3 SHA "tslcd-auth-pass" AES "tslcd-priv-pass"
rouser tslcdv3 priv
maxGetbulkResponses 250
EOF
    # -C: ignore /etc/snmp; -I -smux: no SMUX listener on TCP 199.
    snmpd -f -Lo -C -c "$dir/snmpd.conf" -I -smux "udp:127.0.0.1:$port" </dev/null >"$dir/snmpd.log" 2>&1 &
    echo $! >"$dir/snmpd.pid"
    wait_for snmpd "$dir/snmpd.pid" "$dir/snmpd.log" \
        snmpget -v2c -c public -t 1 -r 0 "127.0.0.1:$port" 1.3.6.1.2.1.1.3.0
    wait_for "snmpd (v3)" "$dir/snmpd.pid" "$dir/snmpd.log" \
        snmpget "${v3[@]}" -t 1 -r 0 "127.0.0.1:$port" 1.3.6.1.2.1.1.3.0
    cat >>"$dir/env" <<EOF
export TSLCD_TEST_SNMP_AGENT=127.0.0.1:$port
export TSLCD_TEST_SNMP_COMMUNITY=public
export TSLCD_TEST_SNMP_V3_USER=tslcdv3
export TSLCD_TEST_SNMP_V3_AUTH=tslcd-auth-pass
export TSLCD_TEST_SNMP_V3_PRIV=tslcd-priv-pass
EOF
}

stop_all() {
    local f pids=() i
    # The marker guards against rm -rf of a directory we did not create.
    [[ -f $dir/.tslcd-testenv ]] || return 0
    for f in "$dir"/*.pid; do
        [[ -s $f ]] && pids+=("$(cat "$f")")
    done
    alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
    if [[ ${#pids[@]} -gt 0 ]]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive || break
            sleep 0.2
        done
        if alive; then
            echo "testenv: still running after 10 s, sending KILL" >&2
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

prepare() {
    mkdir -p "$dir"
    touch "$dir/.tslcd-testenv"
    chmod 711 "$dir"  # the postgres user must be able to reach $dir/pg
    : >"$dir/env"
}

case $cmd in
start)
    prepare
    install_missing
    start_postgres
    start_nats
    start_snmpd
    ;;
snmpd)
    prepare
    install_missing snmp-only
    start_snmpd
    ;;
stop) stop_all ;;
*) usage ;;
esac
