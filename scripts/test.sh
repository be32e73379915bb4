#!/usr/bin/env bash
# The project's test command (README, .ci/run and CI all call this).
# Installs what the tests need when missing, then checks formatting,
# lints the Rust with warnings denied and the workflows and scripts with
# actionlint and ShellCheck, and runs every test tier of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# kubectl: the sandbox's tests drive it as a user would. Debian's
# kubernetes-client provides one where none is installed.
if ! command -v kubectl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's kubernetes-client for kubectl" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
  else
    echo "test.sh: kubectl is missing and cannot be installed here (need root and apt-get); the kubectl test will fail" >&2
  fi
fi

# A browser for the report tests: Debian's chromium where none is found.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
  && ! command -v google-chrome >/dev/null 2>&1 && ! command -v google-chrome-stable >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's chromium for the report tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "test.sh: no Chromium and none can be installed here (need root and apt-get); the browser test will fail" >&2
  fi
fi

# The sandbox's kernel data plane (nftables DNAT, conntrack as ground
# truth) for its tests and the attribution catalogue's second form: runs
# only as root with nft and conntrack. Where it can run, its tests must
# (BATON_REQUIRE_KERNEL_DATA_PLANE=1); elsewhere they say why they skip.
if [ "$(id -u)" -eq 0 ]; then
  if { ! command -v nft || ! command -v conntrack; } >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's nftables and conntrack for the kernel data plane" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables conntrack >/dev/null
  fi
  probe="baton_probe_$$"
  if nft add table ip "$probe" 2>/dev/null && nft delete table ip "$probe" 2>/dev/null \
    && command -v conntrack >/dev/null 2>&1; then
    export BATON_REQUIRE_KERNEL_DATA_PLANE=1
  else
    echo "test.sh: this kernel refuses nftables tables (or conntrack is missing): the kernel data plane's tests are skipped" >&2
  fi
else
  echo "test.sh: not root: the kernel data plane's tests are skipped" >&2
fi

cargo fmt --all --check
scripts/lint.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
