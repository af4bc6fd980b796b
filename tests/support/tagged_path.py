"""For each metric name given, prints a JSON line {"name", "path", "file"}: graphite-web's
TaggedSeries.parse(name).path (the normalized series name) and the whisper file carbon
stores it in, TaggedSeries.encode(path, os.sep) + ".wsp", relative to the whisper directory.

Uses graphite-web 1.1's own code (/usr/lib/python3/dist-packages/graphite/tags/utils.py).
"""
import json
import os
import sys

from graphite.tags.utils import TaggedSeries

for name in sys.argv[1:]:
    path = TaggedSeries.parse(name).path
    print(json.dumps({"name": name, "path": path, "file": TaggedSeries.encode(path, os.sep) + ".wsp"}))
