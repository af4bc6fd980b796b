"""Helper of tests/whisper_resize.rs, run by Debian's /usr/bin/python3 with python3-whisper.

  make SEED PATH     create a random whisper file at PATH (seeded), filled over its retention;
                     prints the JSON {"retentions": [...]} to resize it to
  read PATH NOW      prints the JSON of info() and fetch() of every archive over its whole
                     retention ending NOW (archiveToSelect), values as repr strings, for
                     comparison (one NOW for both files, so their windows are the same)
"""
import json
import random
import sys
import time

import whisper

STEPS = [10, 20, 30, 60, 120, 300]


def archives(rng):
    n = rng.randint(1, 3)
    spp = rng.choice(STEPS[:3])
    pts = rng.randint(20, 200)
    out = [(spp, pts)]
    while len(out) < n:
        spp *= rng.choice([2, 3, 5, 6])
        pts = max(pts // 2, 10) + rng.randint(10, 100)
        if spp * pts <= out[-1][0] * out[-1][1]:
            pts = out[-1][0] * out[-1][1] // spp + rng.randint(1, 50)
        out.append((spp, pts))
    return out


def make(seed, path):
    rng = random.Random(seed)
    old = archives(rng)
    method = rng.choice(sorted(whisper.aggregationMethods))
    xff = rng.choice([0.0, 0.3, 0.5, 1.0])
    whisper.create(path, old, xFilesFactor=xff, aggregationMethod=method)
    now = int(time.time())
    retention = max(s * p for s, p in old)
    points = []
    for _ in range(rng.randint(50, 1500)):
        t = now - rng.randint(0, retention - 1)
        points.append((t, round(rng.uniform(-100, 1000), rng.randint(0, 3))))
    whisper.update_many(path, points)
    new = ["%d:%d" % a for a in archives(rng)]
    print(json.dumps({"retentions": new}))


def read(path, now):
    info = whisper.info(path)
    out = {"aggregationMethod": info["aggregationMethod"],
           "xFilesFactor": repr(info["xFilesFactor"]),
           "archives": []}
    for a in info["archives"]:
        frm = now - a["retention"] + a["secondsPerPoint"]
        (start, end, step), values = whisper.fetch(
            path, frm, now, now=now, archiveToSelect=a["secondsPerPoint"])
        out["archives"].append({
            "secondsPerPoint": a["secondsPerPoint"], "points": a["points"],
            "start": start, "end": end, "step": step,
            "values": [None if v is None else repr(v) for v in values]})
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(int(sys.argv[2]), sys.argv[3])
    else:
        read(sys.argv[2], int(sys.argv[3]))
