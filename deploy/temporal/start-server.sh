#!/bin/sh
# Compose service `temporal`: the server image's own start script, with the database password
# read from the file POSTGRES_PWD_FILE (a Compose secret) rather than set in the container's
# environment, where `docker inspect` shows it. The image's start script is a sh script, so
# sh is in every image that has it.
set -eu
: "${POSTGRES_PWD_FILE:?}"
POSTGRES_PWD=$(cat "$POSTGRES_PWD_FILE")
export POSTGRES_PWD
exec /etc/temporal/entrypoint.sh
