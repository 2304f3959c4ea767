#!/bin/sh
# Compose service `temporal-setup`, once the server answers: the namespace and the search
# attributes that the transfer workflows set (workflows/search_attributes.py), as NAME=TYPE
# words in SEARCH_ATTRIBUTES. Safe to run again: what exists is left alone.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${RETENTION:?}" "${SEARCH_ATTRIBUTES:?}"

until temporal operator cluster health | grep -q SERVING; do
    echo "waiting for Temporal at $TEMPORAL_ADDRESS"
    sleep 1
done

if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
fi
until temporal operator search-attribute list --namespace "$NAMESPACE" >/dev/null 2>&1; do
    echo "waiting for namespace $NAMESPACE"  # the frontend's namespace cache refreshes
    sleep 1
done

for attribute in $SEARCH_ATTRIBUTES; do
    name=${attribute%%=*}
    if ! temporal operator search-attribute list --namespace "$NAMESPACE" | grep -qw "$name"; then
        temporal operator search-attribute create --namespace "$NAMESPACE" \
            --name "$name" --type "${attribute#*=}"
    fi
done
echo "namespace $NAMESPACE ready with search attributes: $SEARCH_ATTRIBUTES"
