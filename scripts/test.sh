#!/usr/bin/env bash
# Run the test suite against throwaway servers; extra args go to pytest.
# TSLCD_TEST_WORKERS=N runs pytest-xdist with N workers (default: no xdist).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d /tmp/tslcd-test.XXXXXX)
trap 'scripts/testenv.sh stop "$dir"' EXIT
# Turn signals into a normal exit so the EXIT trap still stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/testenv.sh start "$dir"
# shellcheck source=/dev/null
source "$dir/env"

xdist=()
if [[ -n ${TSLCD_TEST_WORKERS:-} ]]; then
    xdist=(-n "$TSLCD_TEST_WORKERS")
fi

rc=0
.venv/bin/python -m pytest -p no:cacheprovider "${xdist[@]}" "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "test.sh: pytest collected no tests; treating that as a failure" >&2
fi
exit "$rc"
