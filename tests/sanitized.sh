#!/usr/bin/env bash
# sanitized.sh PROGRAM [ARGS...]
# Runs a test program and fails if it fails OR if any sanitizer reported a
# problem.  Criterion runs each test in a child process and still counts the
# test as passed when LeakSanitizer reports a leak at the child's exit, so
# the report in the output is the only reliable signal.
set -uo pipefail
out=$(mktemp /tmp/weir-test.XXXXXX)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
rc=$?
cat "$out"
if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$out"; then
  echo "sanitized.sh: sanitizer report above; failing" >&2
  exit 1
fi
exit $rc
