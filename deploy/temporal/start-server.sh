#!/bin/sh
# Compose service `temporal`: the server image's own start, with the database password read
# from the file POSTGRES_PWD_FILE (a Compose secret) rather than set in the container's
# environment, where `docker inspect` shows it. Images before 1.30 start through
# /etc/temporal/entrypoint.sh (a sh script that renders the config template); later ones have
# no such script, and their ENTRYPOINT is `temporal-server start` (in their WORKDIR,
# /etc/temporal, which this entrypoint keeps), reading the same variables. Either way sh is
# there (busybox on alpine).
set -eu
: "${POSTGRES_PWD_FILE:?}"
POSTGRES_PWD=$(cat "$POSTGRES_PWD_FILE")
export POSTGRES_PWD
if [ -x /etc/temporal/entrypoint.sh ]; then
    exec /etc/temporal/entrypoint.sh
fi
exec temporal-server start
