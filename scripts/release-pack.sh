#!/usr/bin/env bash
# Packs one release binary as OUTDIR/baton-VERSION-TARGET.tar.gz (a folder
# of that name holding `baton` and the README, so unpacking never
# scatters files) and, beside it, a .sha256 file in sha256sum's format:
# `sha256sum -c` (Linux) or `shasum -a 256 -c` (macOS) checks it in the
# download folder. Used by .github/workflows/release.yml on Linux and macOS.
set -euo pipefail

usage="usage: scripts/release-pack.sh VERSION TARGET BINARY OUTDIR"
version=${1:?$usage}
target=${2:?$usage}
binary=${3:?$usage}
out=${4:?$usage}
root=$(cd "$(dirname "$0")/.." && pwd)
name="baton-$version-$target"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
cp "$binary" "$stage/$name/baton"
chmod 0755 "$stage/$name/baton"
cp "$root/README.md" "$stage/$name/"
# COPYFILE_DISABLE: no AppleDouble (._*) entries from macOS's bsdtar.
COPYFILE_DISABLE=1 tar -C "$stage" -czf "$out/$name.tar.gz" "$name"

cd "$out"
if command -v sha256sum >/dev/null 2>&1; then
  sha256sum "$name.tar.gz" >"$name.tar.gz.sha256"
else
  shasum -a 256 "$name.tar.gz" >"$name.tar.gz.sha256"
fi
cat "$name.tar.gz.sha256"
