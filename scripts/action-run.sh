#!/usr/bin/env bash
# The `baton run` step of action.yml. Reads BATON_PROFILE, BATON_ARGS
# (split on whitespace) and BATON_OUT; runs baton; appends the run's
# summary.md to $GITHUB_STEP_SUMMARY whatever the verdict; writes the
# exit code and the run directory to $GITHUB_OUTPUT; exits with baton's
# exit code, so FAIL, INVALID and bad input fail the step.
set -uo pipefail

: "${BATON_PROFILE:?the profile input of the action is required}"
out=${BATON_OUT:-baton-report}
read -r -a extra <<<"${BATON_ARGS:-}"

code=0
baton run "$BATON_PROFILE" -o "$out" "${extra[@]}" || code=$?

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ -f "$out/summary.md" ]; then
    cat "$out/summary.md" >>"$GITHUB_STEP_SUMMARY"
  else
    printf '## baton: no summary\n\nbaton exited %s before writing one; see the step log.\n' \
      "$code" >>"$GITHUB_STEP_SUMMARY"
  fi
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "report-dir=$out"
  } >>"$GITHUB_OUTPUT"
fi
exit "$code"
