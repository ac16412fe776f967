#!/usr/bin/env bash
# Fuzzes the SIP parser and core for as long as asked (stable toolchain, no
# nightly): the mutation engine of tests/it/fuzz.rs in a release build.
#   scripts/fuzz.sh [SECONDS] [SEED]     # default 600 s, a seed from the clock
# Prints mutants per second; an input that panics is saved under
# tests/fixtures/fuzz/ (a seed for every later run) and the run fails.
# The test suite runs the same engine for a bounded, seeded share.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
seed="${2:-$(date +%s)}"
HOTLINE_FUZZ_SECONDS="$seconds" HOTLINE_FUZZ_SEED="$seed" \
  cargo test --release --locked --test it -- --exact \
  fuzz::mutants_of_the_torture_corpus_never_panic_the_parser_or_the_core --nocapture
