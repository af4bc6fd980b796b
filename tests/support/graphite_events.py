#!/usr/bin/python3
"""Reference answers from graphite-web 1.1.8's events app for tests/events.rs.

Reads one JSON document on stdin:

    {
      "time_zone": "Europe/Berlin",                     # graphite-web's settings.TIME_ZONE
      "posts": ["{\"what\": \"deploy\", ...}", ...],    # request bodies, posted in order
      "get_data": [{"from": "...", "tags": "..."}, ...],  # query parameters of /events/get_data
      "details": [{"id": 1, "pretty": false}, ...],     # /events/<id> with Accept: application/json
      "render": [{"target": "events(\"deploy\")", "from": "1700000000", "until": "...",
                  "maxDataPoints": 4, "xFilesFactor": 0.5}, ...],  # /render?format=json
      "functions": ["events"]                           # /functions/<name>
    }

loads graphite-web (the Debian package in /usr/lib/python3/dist-packages/graphite) with Django
settings of its own (a fresh sqlite database in a temporary directory, migrated; an empty
whisper directory; input validation enforced), sends every request through graphite-web's own
views with Django's test client — POST /events/ (`post_event`), GET /events/get_data
(`get_data`), GET /events/<id> (`jsonDetail`), GET /render (`events` and the render view's
JSON) and GET /functions/<name> — and prints one JSON document on stdout:

    {"posts": [{"status": 200, "body": ""}, ...],
     "get_data": [{"status": 200, "content_type": "application/json", "body": "[...]"}, ...],
     "details": [{"status": 200, "body": "{...}"}, ...],
     "render": [{"status": 200, "body": "[...]"}, ...],
     "functions": [{"status": 200, "body": "{...}"}, ...]}

Exits non-zero when graphite-web or Django cannot be imported: the Rust test must then fail.
"""

import json
import os
import sys
import tempfile


def main():
    spec = json.load(sys.stdin)
    storage = tempfile.mkdtemp(prefix="graphite-events-")
    whisper_dir = os.path.join(storage, "whisper")
    os.makedirs(whisper_dir)
    os.makedirs(os.path.join(storage, "log"))
    settings_dir = os.path.join(storage, "settings")
    os.makedirs(settings_dir)
    with open(os.path.join(settings_dir, "carbonhound_events_settings.py"), "w") as f:
        f.write(
            "SECRET_KEY = 'carbonhound-tests'\nSTORAGE_DIR = %r\nWHISPER_DIR = %r\n"
            "STANDARD_DIRS = [%r]\nLOG_DIR = %r\nINDEX_FILE = %r\nCARBONLINK_HOSTS = []\n"
            "USE_WORKER_POOL = False\nTAGDB = 'graphite.tags.base.DummyTagDB'\n"
            "TIME_ZONE = %r\nENFORCE_INPUT_VALIDATION = True\nFUNCTION_PLUGINS = []\n"
            "LOG_RENDERING_PERFORMANCE = False\nLOG_CACHE_PERFORMANCE = False\n"
            "LOG_INFO_PERFORMANCE = False\n"
            "DATABASES = {'default': {'NAME': %r, 'ENGINE': 'django.db.backends.sqlite3',"
            " 'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}\n"
            % (
                storage,
                whisper_dir + "/",
                whisper_dir + "/",
                os.path.join(storage, "log"),
                os.path.join(storage, "index"),
                spec.get("time_zone", "UTC"),
                os.path.join(storage, "graphite.db"),
            )
        )
    sys.path.insert(0, settings_dir)
    os.environ["GRAPHITE_SETTINGS_MODULE"] = "carbonhound_events_settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"

    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    import inspect

    # graphite-web 1.1.8's `functionInfo` (/functions) calls inspect.getargspec and
    # inspect.formatargspec, which Python 3.11 removed; put back what they did.
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = lambda f: tuple(inspect.getfullargspec(f))[:4]
    if not hasattr(inspect, "formatargspec"):

        def formatargspec(args, varargs=None, varkw=None, defaults=None):
            parts = list(args)
            if defaults:
                first = len(args) - len(defaults)
                for i, d in enumerate(defaults):
                    parts[first + i] = "%s=%r" % (args[first + i], d)
            if varargs:
                parts.append("*" + varargs)
            if varkw:
                parts.append("**" + varkw)
            return "(" + ", ".join(parts) + ")"

        inspect.formatargspec = formatargspec

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0, interactive=False)
    client = Client(raise_request_exception=False)

    def text(response):
        return response.content.decode("utf-8")

    out = {"posts": [], "get_data": [], "details": [], "render": [], "functions": []}
    for body in spec.get("posts", []):
        r = client.post("/events/", data=body, content_type="application/json")
        out["posts"].append({"status": r.status_code, "body": text(r)})
    for params in spec.get("get_data", []):
        r = client.get("/events/get_data", params)
        out["get_data"].append(
            {"status": r.status_code, "content_type": r.get("Content-Type"), "body": text(r)}
        )
    for d in spec.get("details", []):
        params = {"pretty": "1"} if d.get("pretty") else {}
        r = client.get("/events/%d" % d["id"], params, HTTP_ACCEPT="application/json")
        out["details"].append({"status": r.status_code, "body": text(r)})
    for case in spec.get("render", []):
        params = {"target": case["target"], "format": "json"}
        for key in ("from", "until", "maxDataPoints", "xFilesFactor"):
            if key in case:
                params[key] = str(case[key])
        r = client.get("/render", params)
        out["render"].append({"status": r.status_code, "body": text(r)})
    for name in spec.get("functions", []):
        r = client.get("/functions/%s" % name)
        out["functions"].append({"status": r.status_code, "body": text(r)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
