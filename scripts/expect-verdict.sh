#!/usr/bin/env bash
# Run one bundled profile against a real cluster and check baton's exit
# code, for .github/workflows/kind.yml:
#
#   scripts/expect-verdict.sh EXPECTED_EXIT PROFILE MANIFEST OUT [baton args...]
#
# Applies MANIFEST, waits for the rollout of every Deployment in it, runs `baton run PROFILE -o OUT`,
# publishes OUT/summary.md to the GitHub step summary whatever happened,
# deletes what MANIFEST created, and exits non-zero unless baton exited
# with EXPECTED_EXIT. Uses `kubectl` and `baton` from PATH.
set -euo pipefail

if [ "$#" -lt 4 ]; then
  echo "usage: $0 EXPECTED_EXIT PROFILE MANIFEST OUT [baton args...]" >&2
  exit 2
fi
expected=$1 profile=$2 manifest=$3 out=$4
shift 4

deployments=$(kubectl apply -f "$manifest" -o name | sed -n 's|^deployment\.apps/||p')
for d in $deployments; do
  kubectl rollout status "deploy/$d" --timeout 180s
done

code=0
baton run "$profile" -o "$out" "$@" || code=$?

summary="$out/summary.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ -f "$summary" ]; then
    cat "$summary" >>"$GITHUB_STEP_SUMMARY"
  else
    echo "baton wrote no summary for $profile (exit $code)" >>"$GITHUB_STEP_SUMMARY"
  fi
fi
kubectl delete -f "$manifest" --wait

if [ "$code" -ne "$expected" ]; then
  echo "::error title=$profile::baton exited $code, expected $expected"
  exit 1
fi
echo "$profile: baton exited $code, as expected"
