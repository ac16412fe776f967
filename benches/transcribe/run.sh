#!/usr/bin/env bash
# The transcription benchmark (docs/performance.md, "Transcription"):
# each sentence of sentences.tsv spoken by espeak-ng (Mandarin, from its
# pinyin), resampled to 8 kHz, G.711 u-law coded and decoded (the call's
# path), once clean and once with line noise (white noise at about 20 dB
# SNR and a 50 Hz hum); then CER and real-time factor per model.
# Usage: benches/transcribe/run.sh [MODEL_DIR...] (default: the installed
# base model). THREADS=n (default 1, as the gateway runs it). LIMIT=n: the
# first n sentences only (CI's smoke run).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${HOTLINE_TRANSCRIBE_VENV:-target/transcribe}
out=target/bench-transcribe
mkdir -p "$out"
n=0
while IFS=$'\t' read -r hanzi pinyin; do
  case "$hanzi" in '#'*|'') continue ;; esac
  n=$((n + 1))
  [ -n "${LIMIT:-}" ] && [ "$n" -gt "$LIMIT" ] && break
  f=$(printf '%s/s%02d' "$out" "$n")
  if [ ! -f "$f.noisy.wav" ]; then
    espeak-ng -v cmn-latn-pinyin -w "$f.raw.wav" "$pinyin"
    sox -V1 "$f.raw.wav" -r 8000 -c 1 -b 16 "$f.8k.wav" gain -n -3
    for kind in clean noisy; do
      src="$f.8k.wav"
      if [ "$kind" = noisy ]; then
        d=$(soxi -D "$f.8k.wav")
        sox -V1 -m "$f.8k.wav" \
          "|sox -V1 -n -r 8000 -c 1 -b 16 -p synth $d whitenoise vol 0.03 synth $d sine mix 50 vol 0.5" \
          "$f.mixed.wav"
        src="$f.mixed.wav"
      fi
      sox -V1 "$src" -e u-law -t wav "$f.ul.wav"
      sox -V1 "$f.ul.wav" -e signed -b 16 "$f.$kind.wav"
    done
    rm -f "$f.raw.wav" "$f.mixed.wav" "$f.ul.wav"
  fi
  printf '%s\t%s\t%s\n' "$hanzi" "$f.clean.wav" "$f.noisy.wav"
done < benches/transcribe/sentences.tsv > "$out/set.tsv"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$venv/whisper-base")
for m in "${models[@]}"; do
  THREADS=${THREADS:-1} nice -n 10 "$venv/bin/python" benches/transcribe/bench.py "$m" "$out/set.tsv"
done
