#!/bin/sh
# Compose service `temporal-schema`, before the server starts: create Temporal's two databases
# on PostgreSQL and bring their schemas up to this admin-tools release. Safe to run on every
# `docker compose up`: setup-schema skips a database already past 0.0 and update-schema applies
# only the missing versions. The password is read from the file SQL_PASSWORD_FILE (a Compose
# secret); waits are bounded by WAIT_SECONDS (default 300).
set -eu
: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD_FILE:?}"
SQL_PASSWORD=$(cat "$SQL_PASSWORD_FILE")
export SQL_PASSWORD  # temporal-sql-tool reads it from the environment
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
retry="sh $(dirname "$0")/../retry.sh ${WAIT_SECONDS:-300}"

sql() {
    database=$1
    shift
    temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" \
        --db "$database" "$@"
}

# TCP, as the server will connect: PostgreSQL's first-start server listens on no TCP port
$retry "PostgreSQL at $SQL_HOST:$SQL_PORT" nc -z -w 2 "$SQL_HOST" "$SQL_PORT"
for pair in temporal:temporal temporal_visibility:visibility; do
    database=${pair%%:*}
    # `create` fails when the database exists already; any real problem fails the next step.
    sql "$database" create || echo "database $database exists"
    sql "$database" setup-schema -v 0.0
    sql "$database" update-schema -d "$SCHEMA_DIR/${pair#*:}/versioned"
done
