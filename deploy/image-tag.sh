#!/bin/sh
# The worker image's tag: `<project version>-<git revision>`, `-dirty` when the tree has
# uncommitted changes. Every build gets a tag of its own; the one before stays to roll back to.
#   export TRANSFERS_IMAGE_TAG=$(sh deploy/image-tag.sh)
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
revision=$(git rev-parse --short=12 HEAD)
dirty=$(git status --porcelain --untracked-files=no | head -n 1)
echo "$version-$revision${dirty:+-dirty}"
