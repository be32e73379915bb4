#!/usr/bin/env bash
# Prints a release's version from its tag (v1.2.3 -> 1.2.3), and fails
# unless the tag matches the version in Cargo.toml: `baton --version`, the
# archives' names and the image tag must all say the same thing.
# Used by .github/workflows/release.yml.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:?usage: scripts/release-version.sh TAG (e.g. v0.1.0)}
version=${tag#v}
crate=$(cargo metadata --no-deps --locked --format-version 1 \
  | jq -r '.packages[] | select(.name == "baton-rollout") | .version')
if [ "$version" != "$crate" ] || [ "$tag" = "$version" ]; then
  echo "release-version.sh: tag $tag does not name Cargo.toml's version v$crate" >&2
  exit 1
fi
echo "$version"
