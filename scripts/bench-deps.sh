#!/usr/bin/env bash
# Installs what the peer benchmark needs, when missing: nginx-light (the
# target), ab (apache2-utils) and wrk from Debian, oha from crates.io into
# a cache outside the repository. Safe to run repeatedly.
set -euo pipefail
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v ab >/dev/null || need+=(apache2-utils)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-deps: need root to apt-get install ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
tools="${BATON_BENCH_TOOLS:-$HOME/.cache/baton-bench}"
if [ ! -x "$tools/bin/oha" ]; then
  echo "bench-deps: installing oha from crates.io into $tools (a few minutes, once)" >&2
  cargo install oha --locked --quiet --root "$tools"
fi
