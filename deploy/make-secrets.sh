#!/bin/sh
# The compose stack's secrets, once: random passwords and the DSN lists made from them, one file
# each in ./secrets (or the folder given). Files that exist are kept: run it again after adding
# a shard, or remove a file to make a new one (and set that password on its server too).
#   sh deploy/make-secrets.sh [FOLDER]
# The folder is 0700 (nobody else on the host gets in); its files are 0644, because a Compose
# secret is a bind mount of the file and the containers' users (postgres, the worker's 10001)
# must read it.
set -eu
folder=${1:-secrets}
shards="shard-0 shard-1 shard-2"  # in this order for the life of the deployment (routing)
mkdir -p "$folder"
chmod 700 "$folder"
umask 022

password() {  # 32 hex digits: URL-safe, so they go into DSNs as they are
    [ -s "$folder/$1" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$folder/$1"
}

dsns() {  # $1: the file, $2: the role whose password is in ${2}_password
    [ -s "$folder/$1" ] && return
    secret=$(cat "$folder/${2}_password")
    list=""
    for shard in $shards; do
        list="$list${list:+,}postgresql://$2:$secret@$shard:5432/ledger"
    done
    printf '%s\n' "$list" >"$folder/$1"
}

for name in temporal_db shard_superuser ledger_owner ledger_worker; do
    password "${name}_password"
done
dsns shard_dsns_owner ledger_owner
dsns shard_dsns_worker ledger_worker
echo "secrets in $folder: $(ls "$folder" | tr '\n' ' ')"
