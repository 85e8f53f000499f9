#!/usr/bin/env bash
# Real traffic for the demo network: a local net-snmp agent on a loopback port, three provinces' gateway routers
# and three agencies' CPEs pointed at it, and the poller every 10 s until Ctrl-C; then the agent is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/tslcd-agent.XXXXXX)
trap 'scripts/testenv.sh stop "$dir"' EXIT
scripts/testenv.sh snmpd "$dir"
. "$dir/env"
.venv/bin/tslcd demo point-at-agent "$TSLCD_TEST_SNMP_AGENT" --only
.venv/bin/tslcd poll --interval 10
