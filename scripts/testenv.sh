#!/usr/bin/env bash
# Throwaway PostgreSQL, NATS (JetStream) and snmpd for the test suite.
#   scripts/testenv.sh start DIR   start them, all state in DIR, writes DIR/env
#   scripts/testenv.sh snmpd DIR   only the SNMP agent (the demo's local agent: make demo-poll)
#   scripts/testenv.sh stop DIR    stop the processes recorded in DIR/*.pid (only ours), remove DIR
# Missing packages are installed with apt-get, which waits for a concurrent apt/dpkg (TSLCD_APT_LOCK_TIMEOUT s);
# their system services are not left running. Nothing is stopped by name: only the PIDs this script started.
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

# apt_get ARGS...: apt-get that waits up to TSLCD_APT_LOCK_TIMEOUT s (600) for another apt or dpkg to finish.
# apt 2.6 (Debian 12) waits for the dpkg frontend lock itself (DPkg::Lock::Timeout), but fails at once when the lists
# lock (apt-get update) or the archives lock (downloads) is held: those failures are retried until the deadline.
apt_get() {
    local err rc waited=no deadline=$((SECONDS + ${TSLCD_APT_LOCK_TIMEOUT:-600}))
    err=$(mktemp)
    while :; do
        rc=0
        LC_ALL=C DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 1)) "$@" 2>"$err" || rc=$?
        if [[ $rc -ne 0 ]] && grep -q '^E: Could not get lock' "$err" && ((SECONDS < deadline)); then
            [[ $waited == yes ]] ||
                echo "testenv: waiting for another apt/dpkg: $(grep -m 1 '^E: Could not get lock' "$err")" >&2
            waited=yes
            sleep 2
            continue
        fi
        # apt repeats "Waiting for cache lock" while it waits: show it once
        awk '/^Waiting for cache lock/ { if (seen++) next } 1' "$err" >&2
        rm -f "$err"
        return "$rc"
    done
}

# The system service of each package we may install. The tests run their own servers on loopback high ports, so an
# install must not leave the system's one running on the standard port.
declare -A SERVICE_OF=([snmpd]=snmpd [postgresql]=postgresql [nats-server]=nats-server)
POLICY=${TSLCD_POLICY_RC_D:-/usr/sbin/policy-rc.d}  # overridable only to test this script
our_policy=

# service_pids NAME: the main PIDs of a system service started without systemd, read from its own PID files and
# checked against its executable. (Debian's init scripts stop by executable as well, i.e. every snmpd on the
# machine, ours and other users' included: they are never used to stop anything.)
service_pids() {
    local name=$1 f pid exe
    case $name in
    snmpd) set -- /usr/sbin/snmpd /run/snmpd.pid ;;
    postgresql) set -- '/usr/lib/postgresql/*/bin/postgres' /var/lib/postgresql/*/*/postmaster.pid ;;
    *) return 0 ;;
    esac
    exe=$1
    shift
    for f; do
        [[ -r $f ]] || continue
        pid=$(head -n 1 "$f" | tr -dc '0-9')
        [[ -n $pid ]] || continue
        # shellcheck disable=SC2053  # $exe is a glob on purpose
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == $exe ]] || continue
        # and it is the process that file belongs to: snmpd names its PID file, postgres runs in its data directory
        case $name in
        snmpd) tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF " $f" || continue ;;
        postgresql) [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "${f%/*}" ]] || continue ;;
        esac
        echo "$pid"
    done
    return 0
}

service_active() {
    if [[ -d /run/systemd/system ]]; then
        systemctl is-active --quiet "$1" 2>/dev/null
    else
        [[ -n $(service_pids "$1") ]]
    fi
}

service_stop() {  # exactly that service: its systemd unit, or the PIDs in its own PID files
    local pids i
    if [[ -d /run/systemd/system ]]; then
        systemctl stop "$1"
        return
    fi
    mapfile -t pids < <(service_pids "$1")
    [[ ${#pids[@]} -gt 0 ]] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.2
    done
    return 1
}

# While we install, a policy-rc.d (invoke-rc.d(8); deb-systemd-invoke asks it too) refuses to start exactly the
# services of the packages being installed. Only when the machine has no policy of its own: an existing one
# decides, and afterwards we stop what it let start.
deny_service_starts() {
    local tmp pattern='' svc
    [[ -e $POLICY ]] && return 0
    for svc; do pattern+="$svc|$svc.service|"; done
    tmp=$(mktemp "$POLICY.tslcd.XXXXXX")
    cat >"$tmp" <<POLICY_EOF
#!/bin/sh
# Written by tslcd's scripts/testenv.sh while it installs test servers, removed when it is done: the tests run their
# own servers, so these packages' system services are not started. Everything else is allowed, as without this file.
case "\$1" in
${pattern%|}) exit 101 ;;
esac
exit 0
POLICY_EOF
    chmod 755 "$tmp"
    # ln refuses if a policy appeared meanwhile: then that one decides.
    if ln "$tmp" "$POLICY" 2>/dev/null; then
        our_policy=$tmp
        trap allow_service_starts EXIT
    else
        rm -f "$tmp"
    fi
}

allow_service_starts() {
    [[ -n $our_policy ]] || return 0
    [[ $POLICY -ef $our_policy ]] && rm -f "$POLICY"
    rm -f "$our_policy"
    our_policy=
}

install_missing() {  # install_missing [snmp-only]
    local pkgs=() pkg svc services=() was_active=()
    if [[ ${1:-} != snmp-only ]]; then
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || pkgs+=(postgresql)
        command -v nats-server >/dev/null || pkgs+=(nats-server)
    fi
    command -v snmpd >/dev/null || pkgs+=(snmpd)
    command -v snmpget >/dev/null || pkgs+=(snmp)
    [[ ${#pkgs[@]} -eq 0 ]] && return
    for pkg in "${pkgs[@]}"; do
        svc=${SERVICE_OF[$pkg]:-}
        [[ -n $svc ]] || continue
        services+=("$svc")
        if service_active "$svc"; then was_active+=("$svc"); fi
    done
    echo "testenv: installing ${pkgs[*]}" >&2
    if [[ ${#services[@]} -gt 0 ]]; then deny_service_starts "${services[@]}"; fi
    apt_get update -q
    apt_get install -y -q --no-install-recommends "${pkgs[@]}"  # recommends would bring cron, exim4, sysstat
    allow_service_starts
    trap - EXIT
    # If the machine's own policy let a service start, stop exactly that one, and only if it was not running before.
    for svc in "${services[@]}"; do
        [[ " ${was_active[*]} " == *" $svc "* ]] || stop_if_started "$svc"
    done
}

stop_if_started() {
    service_active "$1" || return 0
    echo "testenv: the install started the system $1; stopping it (the tests run their own)" >&2
    service_stop "$1" || echo "testenv: could not stop the system $1" >&2
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
    local f pid pids=() i sig
    # The marker guards against rm -rf of a directory we did not create.
    [[ -f $dir/.tslcd-testenv ]] || return 0
    for f in "$dir"/*.pid; do
        [[ -s $f ]] || continue
        pid=$(tr -dc '0-9' <"$f")
        # Only a process we started: its command line names our directory (a PID can be reused after it exits).
        if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"; then
            pids+=("$pid")
            # PostgreSQL: SIGINT is its fast shutdown (SIGTERM would wait for every client to disconnect)
            sig=TERM
            [[ ${f##*/} == postgres.pid ]] && sig=INT
            kill -"$sig" "$pid" 2>/dev/null || true
        fi
    done
    alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
    if [[ ${#pids[@]} -gt 0 ]]; then
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
