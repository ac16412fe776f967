#!/usr/bin/env bash
# Regenerates the voice prompts in config/prompts/ (8 kHz mono 16-bit WAV)
# with espeak-ng's Mandarin voice and sox. The WAVs are committed, so a
# fresh machine needs neither tool; a court can replace any file with its
# own recorded voice in the same format.
set -euo pipefail
cd "$(dirname "$0")/.."
out=config/prompts
mkdir -p "$out"
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install espeak-ng sox)" >&2; exit 1; }
done
say() { # name text
  local tmp
  tmp=$(mktemp --suffix=.wav)
  espeak-ng -v cmn -s 160 -w "$tmp" "$2"
  # Resample to 8 kHz mono 16-bit, trim leading silence, normalise to -3 dBFS.
  sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1.wav" silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse norm -3
  rm -f "$tmp"
  echo "$out/$1.wav: $(soxi -D "$out/$1.wav") s"
}
say greeting "您好，市北区执行指挥中心举报电话"
