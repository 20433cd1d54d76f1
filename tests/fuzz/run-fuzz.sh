#!/usr/bin/env bash
# run-fuzz.sh FUZZER CORPUS SECONDS
# Runs a libFuzzer target for a while over its seed corpus.  New inputs go to
# a scratch directory, so the source tree is never written.  Fails on any
# crash, leak or sanitizer report; the reproducer is left in the scratch dir
# and its path printed.
set -euo pipefail
fuzzer="$1" corpus="$2" seconds="$3"
scratch=$(mktemp -d /tmp/weir-fuzz.XXXXXX)
if "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
     -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch" "$corpus" 2>"$scratch/log"; then
  tail -n 12 "$scratch/log"
  rm -rf "$scratch"
else
  cat "$scratch/log"
  echo "fuzz: failure; artifacts in $scratch" >&2
  exit 1
fi
