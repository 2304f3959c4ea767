#!/bin/sh
# Run a command until it succeeds, for at most SECONDS: the compose stack's bounded waits.
#   sh deploy/retry.sh SECONDS WHAT COMMAND [ARGUMENT...]
# Exit 0 once COMMAND succeeds; exit 1 with "gave up waiting for WHAT" when SECONDS have
# passed (a server that never comes up stops the job instead of hanging it for ever).
set -eu
[ "$#" -ge 3 ] || { echo "usage: retry.sh SECONDS WHAT COMMAND [ARGUMENT...]" >&2; exit 2; }
seconds=$1
what=$2
shift 2
deadline=$(($(date +%s) + seconds))
until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "gave up waiting for $what after ${seconds}s" >&2
        exit 1
    fi
    echo "waiting for $what" >&2
    sleep "${RETRY_INTERVAL:-2}"
done
