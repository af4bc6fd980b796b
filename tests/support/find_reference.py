#!/usr/bin/python3
"""Reference answers from graphite-web 1.1.8 for carbonhound's find differential test.

This script is the only source of tests/fixtures/graphite/find_expected.jsonl: it copies the
committed whisper fixture (tests/fixtures/graphite/whisper) into a temporary directory, adds
the entries of tests/fixtures/graphite/find_tree.txt (empty directories, which git cannot keep;
leaves beside branches of the same name; files that are not metrics), loads graphite-web 1.1.8
in-process over that tree (the settings of graphite_reference.py), sends every request of
tests/fixtures/graphite/find_cases.txt to graphite-web's own `/metrics/find` and
`/metrics/expand` views (Django's test client), and writes what it answered.

Usage (always with the system Python, which sees the Debian packages):

    /usr/bin/python3 tests/support/find_reference.py --regenerate
        rewrites tests/fixtures/graphite/find_expected.jsonl

    /usr/bin/python3 tests/support/find_reference.py --out DIR
        writes DIR/find_expected.jsonl (and the tree it used, DIR/whisper) and touches nothing
        else; the Rust test `find_expectations_are_current` uses this.

Two things of graphite-web's answers depend on chance or the clock, and are pinned here:

* `Store._list_nodes` shuffles the matches (`random.shuffle`) before `find_view` sorts them
  by name with Python's stable sort, so nodes of one name under several parents come in a
  random order (and treejson keeps a random one of them). This script replaces that shuffle
  by a sort by path, which gives one of graphite-web's possible answers: ties by path, and a
  branch before the leaf of the same path (as `_list_nodes` always yields them).
* `format=json` gives each leaf its `intervals` (from `time.time()` and the file's mtime);
  they are removed from the answer here (the index holds none; see tests/find_reference.rs).

expected lines, one per case in case order:

    {"case": LINE, "status": 200, "content_type": "...", "body": "the body, verbatim"}
    {"case": LINE, "error": "what graphite-web raised"}

A case line is a path and a query string; it may end in `## divergence: reason` (the request
is what comes before; the Rust side reports the case's differences instead of failing).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from urllib.parse import parse_qsl

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import graphite_reference  # noqa: E402  (its settings and start-up)

FIXTURES = graphite_reference.FIXTURES
CASES = os.path.join(FIXTURES, 'find_cases.txt')
TREE = os.path.join(FIXTURES, 'find_tree.txt')


def read_lines(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.strip().startswith('#')]


def build_tree(whisper_dir):
    import whisper
    shutil.copytree(os.path.join(FIXTURES, 'whisper'), whisper_dir)
    for entry in read_lines(TREE):
        path = os.path.join(whisper_dir, *entry.rstrip('/').split('/'))
        if entry.endswith('/'):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if path.endswith('.wsp'):
            whisper.create(path, [(60, 60)])
        else:
            open(path, 'w').close()


def pin_shuffle():
    import graphite.storage

    class Pinned(object):
        @staticmethod
        def shuffle(items):
            items.sort(key=lambda kv: kv[0])

    graphite.storage.random = Pinned


def without_intervals(body):
    nodes = json.loads(body)
    for n in nodes:
        n.pop('intervals', None)
    return json.dumps(nodes)


def run_case(client, line):
    request = line.split('## divergence:')[0].strip()
    path, _, qs = request.partition('?')
    params = {}
    for k, v in parse_qsl(qs, keep_blank_values=True):
        params.setdefault(k, []).append(v)
    try:
        resp = client.get(path, params)
    except Exception as e:  # graphite-web raised: a 500 in production
        return {'case': line, 'error': '%s: %s' % (type(e).__name__, str(e).splitlines()[0] if str(e) else '')}
    body = resp.content.decode('utf8')
    if resp.status_code == 200 and 'format=json' in qs:
        body = without_intervals(body)
    return {'case': line, 'status': resp.status_code, 'content_type': resp['Content-Type'], 'body': body}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument('--regenerate', action='store_true', help='rewrite find_expected.jsonl')
    g.add_argument('--out', help='write find_expected.jsonl (and whisper/) into this directory')
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='carbonhound-find-')
    try:
        out = FIXTURES if args.regenerate else os.path.abspath(args.out)
        os.makedirs(out, exist_ok=True)
        whisper_dir = os.path.join(work if args.regenerate else out, 'whisper')
        if os.path.exists(whisper_dir):
            shutil.rmtree(whisper_dir)
        build_tree(whisper_dir)
        storage = os.path.join(work, 'storage')
        os.makedirs(storage)
        client = graphite_reference.start_graphite(storage, whisper_dir, [])
        pin_shuffle()
        results = [run_case(client, line) for line in read_lines(CASES)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, 'find_expected.jsonl'), 'w') as f:
        for r in results:
            f.write(json.dumps(r, sort_keys=True, separators=(',', ':')) + '\n')
    print('%d cases -> %s' % (len(results), out))


if __name__ == '__main__':
    main()
