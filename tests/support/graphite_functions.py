#!/usr/bin/python3
"""Reference evaluator for tests/functions_reference.rs: graphite-web 1.1.8's own function code.

Reads one JSON document on stdin:

    {
      "whisper_dir": "/tmp/.../whisper",          # created here with Python's whisper module
      "metrics": [                                # one whisper file each
        {"name": "a.b", "retentions": [[60, 20160]], "xff": 0.5,
         "aggregation": "average", "points": [[epoch, value], ...]}
      ],
      "cases": [{"target": "movingAverage(a.b,5)", "from": epoch, "until": epoch,
                 "now": epoch, "xFilesFactor": 0.0}]
    }

creates the whisper files (tagged names go where graphite-web's StandardFinder looks for them),
points graphite-web's StandardFinder at that directory (no carbonlink, no tag database beyond
name parsing, UTC, input validation enforced) and evaluates every case with graphite-web's
`evaluateTarget`, exactly as its render view does. Prints one JSON document on stdout:

    {"results": [{"ok": true, "series": [...]}, {"ok": false, "error": "..."}]}

Each series: name, pathExpression, start, end, step, valuesPerPoint, consolidationFunc,
xFilesFactor, tags (strings), options (graph hints), color, and `values`: what iterating the
series gives (consolidated when valuesPerPoint > 1), floats encoded as numbers or, for values JSON
cannot hold, the strings "nan", "inf", "-inf".

Exits non-zero when graphite-web or whisper cannot be imported: the Rust test must then fail.
"""

import json
import math
import os
import sys
import tempfile


def encode_value(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return repr(v)


def encode_option(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return encode_value(v)
    return str(v)


def main():
    spec = json.load(sys.stdin)
    whisper_dir = spec["whisper_dir"]
    storage = tempfile.mkdtemp(prefix="graphite-ref-")

    # graphite-web reads its overrides from the module named by GRAPHITE_SETTINGS_MODULE.
    settings_dir = os.path.join(storage, "settings")
    os.makedirs(settings_dir)
    with open(os.path.join(settings_dir, "carbonhound_ref_settings.py"), "w") as f:
        f.write(
            "STORAGE_DIR = %r\nWHISPER_DIR = %r\nSTANDARD_DIRS = [%r]\nLOG_DIR = %r\n"
            "CARBONLINK_HOSTS = []\nTAGDB = 'graphite.tags.base.DummyTagDB'\n"
            "TIME_ZONE = 'UTC'\nENFORCE_INPUT_VALIDATION = True\nSECRET_KEY = 'carbonhound-tests'\n"
            "USE_WORKER_POOL = False\nSTORAGE_FINDERS = ('graphite.finders.standard.StandardFinder',)\n"
            "LOG_RENDERING_PERFORMANCE = False\nLOG_CACHE_PERFORMANCE = False\n"
            % (storage, whisper_dir, whisper_dir, os.path.join(storage, "log"))
        )
    os.makedirs(os.path.join(storage, "log"))
    sys.path.insert(0, settings_dir)
    os.environ["GRAPHITE_SETTINGS_MODULE"] = "carbonhound_ref_settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
    os.environ["TZ"] = "UTC"
    import time

    time.tzset()

    import warnings

    warnings.simplefilter("ignore")

    import whisper
    import django

    django.setup()

    import pytz
    from datetime import datetime
    from graphite.render.evaluator import evaluateTarget
    from graphite.tags.utils import TaggedSeries

    os.makedirs(whisper_dir, exist_ok=True)
    for m in spec.get("metrics", []):
        name = m["name"]
        if ";" in name:
            rel = TaggedSeries.encode(name, os.sep)
        else:
            rel = name.replace(".", os.sep)
        path = os.path.join(whisper_dir, rel + ".wsp")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
        whisper.create(
            path,
            [tuple(r) for r in m["retentions"]],
            xFilesFactor=m.get("xff", 0.5),
            aggregationMethod=m.get("aggregation", "average"),
        )
        points = [(int(t), float(v)) for t, v in m.get("points", [])]
        # update_many takes newest first within the highest-precision archive's reach.
        if points:
            whisper.update_many(path, points)

    utc = pytz.utc
    results = []
    for case in spec["cases"]:
        ctx = {
            "startTime": datetime.fromtimestamp(case["from"], utc),
            "endTime": datetime.fromtimestamp(case["until"], utc),
            "now": datetime.fromtimestamp(case.get("now", case["until"]), utc),
            "localOnly": False,
            "template": {},
            "tzinfo": utc,
            "forwardHeaders": None,
            "sourceIdHeaders": {},
            "data": [],
            "prefetched": {},
            "xFilesFactor": case.get("xFilesFactor", 0.0),
            "maxDataPoints": None,
            "targets": [case["target"]],
        }
        try:
            series_list = evaluateTarget(ctx, [case["target"]])
        except Exception as e:  # graphite-web answers these with an error status
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
            continue
        out = []
        for s in series_list:
            out.append(
                {
                    "name": s.name,
                    "pathExpression": s.pathExpression,
                    "start": int(s.start),
                    "end": int(s.end),
                    "step": int(s.step),
                    "valuesPerPoint": int(s.valuesPerPoint),
                    "consolidationFunc": s.consolidationFunc,
                    "xFilesFactor": float(s.xFilesFactor),
                    "tags": {str(k): str(v) for k, v in s.tags.items()},
                    "options": {str(k): encode_option(v) for k, v in s.options.items()},
                    "color": getattr(s, "color", None),
                    "values": [encode_value(v) for v in s],
                }
            )
        results.append({"ok": True, "series": out})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
