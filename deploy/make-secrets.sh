#!/bin/sh
# The compose stack's secrets: passwords and the DSN lists made from them, one file each in
# ./secrets (or the folder given).
#   sh deploy/make-secrets.sh [FOLDER]
# A password file that exists is kept; a missing one is made: random, or, for the servers of a
# stack made by the earlier compose file (README "Upgrading from the earlier compose file"),
# the password they already have, from TEMPORAL_DB_PASSWORD and SHARD_PASSWORD when set. The
# DSN files are written anew from the passwords on every run: to add a shard, add it to
# `shards` below and run again; to change a password, delete its file, run again, set it on
# its server (the role script or ALTER ROLE) and recreate the services that use it.
# The folder is 0700 (nobody else on the host gets in); its files are 0644, because a Compose
# secret is a bind mount of the file and the containers' users (postgres, the worker's 10001)
# must read it.
set -eu
folder=${1:-secrets}
shards="shard-0 shard-1 shard-2"  # in this order for the life of the deployment (routing)
mkdir -p "$folder"
chmod 700 "$folder"
umask 022

password() {  # $1: the file; $2: the password a server already has, if any
    if [ -s "$folder/$1" ]; then
        [ -z "${2:-}" ] || [ "$(cat "$folder/$1")" = "$2" ] ||
            echo "make-secrets: kept $folder/$1, which differs from the value given" >&2
    elif [ -n "${2:-}" ]; then
        printf '%s' "$2" >"$folder/$1"
    else  # 32 hex digits: URL-safe, so they go into DSNs as they are
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$folder/$1"
    fi
}

dsns() {  # $1: the file, $2: the role whose password is in ${2}_password
    secret=$(cat "$folder/${2}_password")
    list=""
    for shard in $shards; do
        list="$list${list:+,}postgresql://$2:$secret@$shard:5432/ledger?require_auth=scram-sha-256"
    done
    printf '%s\n' "$list" >"$folder/$1"
}

password temporal_db_password "${TEMPORAL_DB_PASSWORD:-}"
password shard_superuser_password "${SHARD_PASSWORD:-}"
password ledger_owner_password
password ledger_worker_password
dsns shard_dsns_owner ledger_owner
dsns shard_dsns_worker ledger_worker
echo "secrets in $folder: $(ls "$folder" | tr '\n' ' ')"
