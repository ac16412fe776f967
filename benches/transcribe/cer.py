#!/usr/bin/env python3
"""Character error rate of a transcript against a reference: Levenshtein
distance over Chinese characters and digits (punctuation and spaces left
out, traditional forms of the reference's characters not forgiven), divided
by the reference's length. Usage: cer.py REFERENCE HYPOTHESIS."""
import sys
import unicodedata


def chars(s):
    return [c for c in s if not unicodedata.category(c).startswith(("P", "Z", "S")) and not c.isspace()]


def cer(ref, hyp):
    r, h = chars(ref), chars(hyp)
    prev = list(range(len(h) + 1))
    for i, rc in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hc in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc))
        prev = cur
    return prev[-1] / max(1, len(r))


if __name__ == "__main__":
    print("%.3f" % cer(sys.argv[1], sys.argv[2]))
