#!/bin/sh
# Compose service `temporal-setup`, once the server is started: the namespace and the search
# attributes that the transfer workflows set (workflows/search_attributes.py), as NAME=TYPE
# words in SEARCH_ATTRIBUTES. Safe to run again: what exists is left alone. An attribute that
# exists with another type stops it (exit 1): the workflows' upserts would fail on it.
# Every wait is bounded by WAIT_SECONDS (default 300); deploy/retry.sh sits next to this folder.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${RETENTION:?}" "${SEARCH_ATTRIBUTES:?}"
retry="sh $(dirname "$0")/../retry.sh ${WAIT_SECONDS:-300}"

$retry "Temporal at $TEMPORAL_ADDRESS" \
    sh -c 'temporal operator cluster health 2>/dev/null | grep -q SERVING'

if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
fi
# the frontend's namespace cache refreshes within seconds
$retry "namespace $NAMESPACE" \
    sh -c 'temporal operator search-attribute list --namespace "$0" >/dev/null 2>&1' "$NAMESPACE"

registered_type() {  # the type of search attribute $1, empty when it is not registered
    temporal operator search-attribute list --namespace "$NAMESPACE" | awk -v name="$1" '$1 == name { print $2 }'
}

for attribute in $SEARCH_ATTRIBUTES; do
    name=${attribute%%=*}
    wanted=${attribute#*=}
    found=$(registered_type "$name")
    if [ -z "$found" ]; then
        temporal operator search-attribute create --namespace "$NAMESPACE" \
            --name "$name" --type "$wanted"
    elif [ "$found" != "$wanted" ]; then
        echo "search attribute $name is $found on namespace $NAMESPACE; the workflows need" \
            "$wanted: remove it or use another namespace" >&2
        exit 1
    fi
done
echo "namespace $NAMESPACE ready with search attributes: $SEARCH_ATTRIBUTES"
