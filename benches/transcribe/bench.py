#!/usr/bin/env python3
"""CER and real-time factor of one model over the benchmark's set
(run.sh writes it: reference, clean WAV, noisy WAV per line), or over
recordings (--recordings REF_TSV: reference, WAV, channel 0)."""
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "scripts", "transcribe"))
sys.path.insert(0, here)
import worker  # noqa: E402
from cer import cer  # noqa: E402


def main(model_dir, set_tsv):
    threads = int(os.environ.get("THREADS", "1"))
    t0 = time.monotonic()
    model = worker.load(model_dir, threads)
    print("model %s loaded in %.1f s, %d thread(s)" % (model_dir, time.monotonic() - t0, threads))
    totals = {}
    for line in open(set_tsv, encoding="utf-8"):
        ref, *wavs = line.rstrip("\n").split("\t")
        for kind, wav in zip(("clean", "noisy"), wavs):
            r = worker.transcribe(model, "m", wav, 0)
            e = cer(ref, r["text"])
            t = totals.setdefault(kind, [0.0, 0.0, 0.0, 0])
            t[0] += e; t[1] += r["seconds"]; t[2] += r["duration"]; t[3] += 1
            print("%s\tCER %.2f\tRTF %.2f\t%s\t%s" % (kind, e, r["seconds"] / r["duration"], ref, r["text"]), flush=True)
    for kind, (e, s, d, n) in totals.items():
        print("SUMMARY %s %s: %d sentences, mean CER %.3f, RTF %.3f (%.1f s for %.1f s of audio)"
              % (os.path.basename(model_dir), kind, n, e / n, s / d, s, d))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
