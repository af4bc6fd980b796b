"""Reads whisper files with whisper 1.1's own module and prints one JSON object per file:
{"path", "info": whisper.info(path), "fetch": {"from", "until", "step", "values"}}.

usage: whisper_read.py FROM UNTIL PATH...   (FROM/UNTIL in epoch seconds)
A missing file prints {"path", "missing": true}.
"""
import json
import os
import sys

import whisper

start, until = int(sys.argv[1]), int(sys.argv[2])
for path in sys.argv[3:]:
    if not os.path.exists(path):
        print(json.dumps({"path": path, "missing": True}))
        continue
    (f, u, step), values = whisper.fetch(path, start, until)
    print(json.dumps({
        "path": path,
        "info": whisper.info(path),
        "fetch": {"from": f, "until": u, "step": step, "values": values},
    }))
