#!/usr/bin/env python3
"""hotline's transcription worker (docs/adr/0012-transcription.md).

A long-lived child of the gateway: loads one Whisper model (CTranslate2
format, a local directory) once, then answers one JSON request per line on
stdin with one JSON line on stdout:

  {"wav": "/path/call.wav", "channel": 0}
  -> {"ok": true, "text": "...", "language": "zh", "duration": 8.6,
      "model": "whisper-base", "seconds": 2.1}
  -> {"ok": false, "error": "..."}

The recording is a 16-bit PCM WAV at 8 kHz (the gateway's: stereo, the
caller on the left, channel 0). It is read with the standard library,
resampled to 16 kHz and decoded in Simplified Chinese. Nothing is fetched:
the model is loaded from the given directory with the hub offline.

Usage: worker.py MODEL_DIR [THREADS]
       worker.py --once MODEL_DIR WAV [CHANNEL]   (the benchmark's use)
"""

import json
import os
import sys
import time
import wave

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MAX_SECONDS = 3 * 3600
BEAM = int(os.environ.get("HOTLINE_TRANSCRIBE_BEAM", "1"))
MAX_TOKENS = 200


def read_channel(path, channel):
    """The samples of one channel as floats in [-1, 1], and the rate."""
    import numpy as np

    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("not 16-bit PCM")
        channels, rate, frames = w.getnchannels(), w.getframerate(), w.getnframes()
        if frames > rate * MAX_SECONDS:
            raise ValueError("longer than %d s" % MAX_SECONDS)
        raw = w.readframes(frames)
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
    if channel >= channels:
        raise ValueError("no channel %d in %d" % (channel, channels))
    return pcm[:, channel].astype(np.float32) / 32768.0, rate


def to_16k(samples, rate):
    import numpy as np

    if rate == 16000 or len(samples) == 0:
        return samples
    n = int(round(len(samples) * 16000 / rate))
    x = np.linspace(0, len(samples) - 1, n, dtype=np.float64)
    return np.interp(x, np.arange(len(samples)), samples).astype(np.float32)


_T2S = None


def simplified(text):
    """Whisper often writes Mandarin in traditional characters: OpenCC's
    table turns them into simplified ones."""
    global _T2S
    if _T2S is None:
        from opencc import OpenCC

        _T2S = OpenCC("t2s")
    return _T2S.convert(text)


def load(model_dir, threads):
    from faster_whisper import WhisperModel

    for f in ("model.bin", "config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(model_dir, f)):
            raise FileNotFoundError("%s lacks %s (scripts/install-transcribe.sh)" % (model_dir, f))
    simplified("")  # the table loaded before the first job
    return WhisperModel(
        model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1,
        local_files_only=True,
    )


def transcribe(model, name, wav, channel):
    started = time.monotonic()
    samples, rate = read_channel(wav, channel)
    audio = to_16k(samples, rate)
    segments, info = model.transcribe(
        audio, language="zh", task="transcribe", beam_size=BEAM, temperature=0.0,
        condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
        # A model looping on noise or a synthetic voice stops: no repeats
        # of three tokens, and at most 8 tokens a second of audio (Mandarin
        # speech holds about 4 characters a second).
        no_repeat_ngram_size=3, repetition_penalty=1.3,
        max_new_tokens=min(MAX_TOKENS, int(len(samples) / rate * 8) + 8),
    )
    text = simplified("".join(s.text.strip() for s in segments))
    return {
        "ok": True, "text": text, "language": info.language,
        "duration": round(len(samples) / rate, 3), "model": name,
        "seconds": round(time.monotonic() - started, 3),
    }


def main(argv):
    if len(argv) >= 3 and argv[0] == "--once":
        model_dir = argv[1]
        model = load(model_dir, int(os.environ.get("THREADS", "2")))
        channel = int(argv[3]) if len(argv) > 3 else 0
        print(json.dumps(transcribe(model, os.path.basename(model_dir.rstrip("/")), argv[2], channel), ensure_ascii=False))
        return 0
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir = argv[0]
    threads = int(argv[1]) if len(argv) > 1 else 1
    name = os.path.basename(model_dir.rstrip("/"))
    try:
        model = load(model_dir, threads)
    except Exception as e:  # reported to the gateway, which fails the job
        print(json.dumps({"ok": False, "error": "model: %s" % e}), flush=True)
        return 1
    print(json.dumps({"ready": True, "model": name}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            out = transcribe(model, name, str(req["wav"]), int(req.get("channel", 0)))
        except Exception as e:  # one bad job never ends the worker
            out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
