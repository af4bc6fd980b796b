#!/usr/bin/python3
"""An HTTP receiver standing in for a webhook endpoint, Slack's incoming webhooks and
PagerDuty's Events API v2, for carbonhound's notification tests. Listens on 127.0.0.1 at a
free port; prints "PORT <n>" once it listens; exits when its stdin closes.

Usage: http_receiver.py DIR

Paths:
  POST /hook            carbonhound's webhook schema (version 1)         -> 200
  POST /slack/...       a Slack incoming-webhook payload                 -> 200 "ok"
  POST /v2/enqueue      a PagerDuty Events API v2 event                  -> 202 {"status":"success",...}

Each request's body is validated against that service's documented schema; a valid one is
saved as DIR/NNNN-<kind>.json (written to a temporary name, then renamed), an invalid one is
answered 400 (as Slack and PagerDuty do) and saved as DIR/NNNN-<kind>.invalid with the reason.
While the file DIR/down exists every request is answered 503 and nothing is saved (the
receiver is "down"). While DIR/delay holds a number of seconds, each valid request is saved
first and answered that much later (a slow receiver, for crash-during-send tests).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
COUNT = 0
LOCK = threading.Lock()


def need(cond, why):
    if not cond:
        raise ValueError(why)


def check_webhook(b):
    need(b.get("version") == 1, "version must be 1")
    if b.get("event") == "bundle":
        for k in ("id", "subject", "notifications"):
            need(k in b, f"missing {k}")
        for n in b["notifications"]:
            check_webhook(n)
        return
    if b.get("event") == "summary":
        for k in ("id", "subject", "time", "notifications", "text"):
            need(k in b, f"missing {k}")
        for n in b["notifications"]:
            for k in ("rule", "subject", "url"):
                need(k in n, f"missing notifications[].{k}")
        return
    for k in ("id", "event", "subject", "state", "rule", "time", "series", "graph_url", "text"):
        need(k in b, f"missing {k}")
    need(b["event"] in ("fire", "change", "reminder", "recovery", "error", "error-reminder",
                        "error-recovery", "acknowledged", "escalation"), f"bad event {b['event']}")
    need(b["state"] in ("ok", "warn", "crit", "nodata", "error"), f"bad state {b['state']}")
    for k in ("name", "slug", "url", "labels", "type"):
        need(k in b["rule"], f"missing rule.{k}")
    need(isinstance(b["series"], list), "series must be a list")
    for s in b["series"]:
        for k in ("series", "state", "value", "since"):
            need(k in s, f"missing series[].{k}")
    need(b["graph_url"].startswith("http") and "format=png" in b["graph_url"], "graph_url")


def check_slack(b):
    # https://api.slack.com/messaging/webhooks: text, or blocks, or attachments.
    need(isinstance(b.get("text"), str) and b["text"], "text is required as the fallback")
    for a in b.get("attachments", []):
        need(isinstance(a.get("fallback"), str), "attachment fallback must be a string")
        if "color" in a:
            need(isinstance(a["color"], str), "color must be a string")
        for f in a.get("fields", []):
            need(isinstance(f.get("title"), str) and isinstance(f.get("value"), str),
                 "fields need title and value strings")
        if "ts" in a:
            need(isinstance(a["ts"], (int, float)), "ts must be a number")


def check_pagerduty(b):
    # https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
    need(isinstance(b.get("routing_key"), str) and b["routing_key"], "routing_key")
    need(b.get("event_action") in ("trigger", "acknowledge", "resolve"), "event_action")
    if "dedup_key" in b:
        need(isinstance(b["dedup_key"], str) and 0 < len(b["dedup_key"]) <= 255, "dedup_key")
    if b["event_action"] == "trigger":
        p = b.get("payload")
        need(isinstance(p, dict), "payload is required for trigger")
        need(isinstance(p.get("summary"), str) and 0 < len(p["summary"]) <= 1024, "summary")
        need(isinstance(p.get("source"), str) and p["source"], "source")
        need(p.get("severity") in ("critical", "error", "warning", "info"), "severity")
        if "timestamp" in p:
            need("T" in p["timestamp"], "timestamp must be ISO 8601")
        for link in b.get("links", []):
            need("href" in link, "links need href")
        for img in b.get("images", []):
            need("src" in img, "images need src")
    else:
        need("dedup_key" in b, "acknowledge and resolve need dedup_key")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype="text/plain"):
        data = body.encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender went away (killed by a test)

    def do_POST(self):
        global COUNT
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if os.path.exists(os.path.join(DIR, "down")):
            return self.answer(503, "down for the test")
        if self.path == "/hook":
            kind, check = "webhook", check_webhook
        elif self.path.startswith("/slack/"):
            kind, check = "slack", check_slack
        elif self.path == "/v2/enqueue":
            kind, check = "pagerduty", check_pagerduty
        else:
            return self.answer(404, "no such path")
        with LOCK:
            COUNT += 1
            n = COUNT
        try:
            body = json.loads(raw)
            check(body)
        except (ValueError, KeyError, TypeError) as e:
            with open(os.path.join(DIR, f"{n:04d}-{kind}.invalid"), "w") as f:
                f.write(f"{e}\n{raw.decode(errors='replace')}")
            return self.answer(400, f"invalid payload: {e}")
        tmp = os.path.join(DIR, f".{n:04d}-{kind}.tmp")
        with open(tmp, "wb") as f:
            f.write(raw)
        os.rename(tmp, os.path.join(DIR, f"{n:04d}-{kind}.json"))
        try:
            with open(os.path.join(DIR, "delay")) as f:
                time.sleep(float(f.read().strip() or 0))
        except (OSError, ValueError):
            pass
        if kind == "pagerduty":
            return self.answer(202, json.dumps({"status": "success", "message": "Event processed",
                                                "dedup_key": body.get("dedup_key", "")}),
                               "application/json")
        return self.answer(200, "ok")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


main()
