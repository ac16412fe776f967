#!/usr/bin/env bash
# Command 2: install the test tools that are missing (redis-server, sipp from
# sip-tester), then run format and lint checks and the whole test suite.
# Tests start their own gateways and servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need redis-server:redis-server sipp:sip-tester
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --lib --bins --tests
