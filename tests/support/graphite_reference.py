#!/usr/bin/python3
"""Reference outputs from graphite-web 1.1.8 for carbonhound's differential test.

This script is the only source of the expectations in tests/fixtures/graphite/: it builds a
deterministic whisper data set with Python's `whisper` module, loads graphite-web 1.1.8 (the
Debian package in /usr/lib/python3/dist-packages/graphite) in-process with Django settings that
point at that data set (no carbonlink, sqlite tag database), renders every case of
tests/fixtures/graphite/cases.txt through graphite-web's own `/render` view (Django's test
client), and writes what graphite-web answered.

Usage (always with the system Python, which sees the Debian packages):

    /usr/bin/python3 tests/support/graphite_reference.py --regenerate
        rewrites tests/fixtures/graphite/whisper/** and tests/fixtures/graphite/expected.jsonl

    /usr/bin/python3 tests/support/graphite_reference.py --out DIR
        writes the same into DIR (DIR/whisper, DIR/expected.jsonl) and touches nothing else;
        the Rust test `expectations_are_current` uses this to check the committed files.

Run `--regenerate` after adding or changing a case in cases.txt, and commit the result.

Everything is pinned to the reference time NOW = 1700000000 (2023-11-14 22:13:20 UTC): whisper
writes use it as `now`, and every render request passes `now=1700000000`, so the output never
depends on the wall clock. The data uses only exactly rounded arithmetic (no libm), so the
fixture is the same bytes on every machine.

graphite-web runs with ENFORCE_INPUT_VALIDATION = True (its default is False, which logs a bad
parameter and calls the function anyway, or turns an InputParameterError raised inside a
function into an empty answer). carbonhound always validates and answers a bad request with a
clear 400, so the strict graphite-web is the reference; a case where graphite-web fails (400 or
an exception, i.e. a 500) is expected to fail in carbonhound too (any non-200 status).

Case file format (tests/fixtures/graphite/cases.txt), one case per line:

    # a comment; blank lines are ignored
    sumSeries(servers.*.cpu.user)
    {"target": "sumSeries(servers.*.cpu.user)", "from": "-2h", "maxDataPoints": 10}
    {"target": ["a.b", "c.d"], "divergence": "why carbonhound differs, on purpose"}

A bare line is a target rendered with the defaults (from=-20min, until=now). A JSON line may
give `target` (a string or a list), `from`, `until`, `maxDataPoints`, `noNullPoints`,
`xFilesFactor`, `tz`, `divergence` (a reason: the Rust side reports the case instead of
failing on it; keep these rare), and `"validation": "lenient"`: graphite-web renders that case
with its default ENFORCE_INPUT_VALIDATION = False, where a call may leave out an argument whose
Param is `required` but whose Python argument has a default (`lowest(x)` is
`lowest(x, 1, 'average')`), as carbonhound allows. The case's key in expected.jsonl is the line
itself.

expected.jsonl holds one JSON object per case, in case order:

    {"case": LINE, "json": [SERIES...], "raw": ["name,start,end,step|count", ...]}
    {"case": LINE, "error": "what graphite-web raised or answered"}

where SERIES is {"target", "tags", "t0", "dt", "values"} (the datapoints of format=json with
their timestamps t0, t0+dt, ...; "timestamps" instead of t0/dt if they are not evenly spaced),
values being numbers, null, or the strings "inf", "-inf", "nan"; "raw" has the header of each
series of format=raw and how many values followed it.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile

NOW = 1700000000
DEFAULT_FROM = '-20min'

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, '..', 'fixtures', 'graphite'))
CASES = os.path.join(FIXTURES, 'cases.txt')

# Retentions, as carbon's storage-schemas.conf writes them: (seconds per point, points).
FINE = [(10, 6 * 360), (60, 1440)]           # 10s:6h,60s:1d
MINUTE = [(60, 1440), (300, 3 * 288)]       # 60s:1d,300s:3d
ODD = [(15, 3 * 240), (60, 1440)]               # 15s:3h,60s:1d
COARSE = [(300, 3 * 288)]                     # 300s:3d


class Rng(object):
    """A tiny deterministic generator (splitmix64 seeded from the sha256 of a name), so the
    data set never depends on Python's `random` implementation."""

    def __init__(self, name):
        self.state = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'big')

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) / 2.0 ** 64


def triangle(t, period):
    """A triangle wave in [-1, 1]. Only +, -, *, / (exactly rounded everywhere), no libm: the
    fixture must come out byte for byte the same on every machine."""
    x = (t % period) / period
    return 4 * x - 1 if x < 0.5 else 3 - 4 * x


def wave(base, amp, noise, gaps=0.0, decimals=1, period=3600):
    """Values around `base`: a triangle wave of amplitude `amp` plus uniform noise; a fraction
    `gaps` of the points missing."""
    def gen(name, t, rng):
        if gaps and rng.next() < gaps:
            rng.next()
            return None
        v = base + amp * triangle(t, period) + noise * (rng.next() - 0.5)
        return round(v, decimals)
    return gen


def const(value):
    return lambda name, t, rng: value


def counter(start, rate):
    return lambda name, t, rng: float(start + rate * ((t - (NOW - 2 * 86400)) // 10))


def window(gen, newest_age, oldest_age):
    """Only points between `oldest_age` and `newest_age` seconds before NOW."""
    def inner(name, t, rng):
        v = gen(name, t, rng)
        return v if NOW - oldest_age <= t <= NOW - newest_age else None
    return inner


def empty(name, t, rng):
    return None


# name -> (retentions, generator, xFilesFactor, aggregation method)
def metrics():
    m = {}

    def add(name, ret, gen, xff=0.5, agg='average'):
        m[name] = (ret, gen, xff, agg)

    # servers.<host>.cpu.<kind>: several steps under one wildcard
    add('servers.web1.cpu.user', FINE, wave(40, 20, 10))
    add('servers.web1.cpu.system', FINE, wave(10, 5, 4, gaps=0.1))
    add('servers.web2.cpu.user', FINE, wave(55, 15, 30))
    add('servers.web2.cpu.system', MINUTE, wave(12, 3, 6))
    add('servers.db1.cpu.user', ODD, wave(70, 10, 8, gaps=0.05))
    add('servers.db1.cpu.system', ODD, wave(20, 8, 2))
    add('servers.web3.cpu.user', FINE, window(wave(30, 5, 5), 1500, 86400))
    # servers.<host>.disk.{bytes_used,total_bytes}
    for host, used, total, ret in (('web1', 40, 100, MINUTE), ('web2', 75, 100, MINUTE), ('db1', 900, 1000, COARSE)):
        add('servers.%s.disk.bytes_used' % host, ret, wave(used, used / 10.0, used / 20.0, decimals=0))
        add('servers.%s.disk.total_bytes' % host, ret, const(float(total)))
    # stats.counts.haproxy.<service>.<code>: counters for applyByNode
    for svc in ('web', 'api'):
        for code, rate in (('2XX', 50), ('3XX', 5), ('5XX', 1)):
            add('stats.counts.haproxy.%s.%s' % (svc, code), FINE, wave(rate * (2 if svc == 'web' else 1), rate / 2.0, rate / 5.0, gaps=0.02, decimals=0), agg='sum')
    # mining.<site>.{extracted,shipped}: for the *SeriesLists functions
    for site, base in (('carbon', 10), ('diamond', 3), ('graphite', 7)):
        add('mining.%s.extracted' % site, MINUTE, wave(base * 2, base, base / 2.0))
        add('mining.%s.shipped' % site, MINUTE, wave(base, base / 2.0, base / 4.0, gaps=0.1))
    # txn.<kind>.{mean,count}: for weightedAverage
    for kind, mean, count in (('login', 120, 30), ('search', 300, 80), ('upload', 900, 5)):
        add('txn.%s.mean' % kind, FINE, wave(mean, mean / 5.0, mean / 10.0))
        add('txn.%s.count' % kind, FINE, wave(count, count / 3.0, count / 4.0, decimals=0))
    # special shapes
    add('special.empty', FINE, empty)
    add('special.zeros', FINE, const(0.0))
    add('special.constant', FINE, const(5.0))
    add('special.negative', FINE, wave(-20, 15, 10))
    add('special.mixed_sign', FINE, wave(0, 50, 10, gaps=0.2))
    add('special.gappy', FINE, wave(8, 4, 2, gaps=0.6))
    add('special.recent_only', FINE, window(wave(3, 1, 1), 0, 200))
    add('special.old_only', FINE, window(wave(6, 1, 1), 3 * 3600, 5 * 3600))
    add('special.coarse', COARSE, wave(100, 30, 10))
    add('special.odd', ODD, wave(2.5, 1, 0.5, decimals=2))
    add('special.big', MINUTE, wave(3e12, 1e12, 1e11, decimals=0))
    add('special.tiny', FINE, wave(2e-9, 1e-9, 1e-10, decimals=12))
    add('special.counter', FINE, counter(1000, 7), agg='max')
    add('app.requests.count', FINE, wave(200, 80, 40, decimals=0), agg='sum')
    add('app.latency.mean', FINE, wave(0.25, 0.1, 0.05, decimals=3))
    add('app.latency.p99', ODD, wave(1.5, 0.5, 0.3, decimals=3, period=1800))
    add('deep.a.b.c.d.e.f', MINUTE, wave(1, 1, 1))
    add('deep.a.b.c.d.e.g', FINE, wave(2, 1, 1, gaps=0.3))
    add('deep.a.x.c.d.e.f', MINUTE, wave(3, 1, 1))
    # tagged series (stored under _tagged/, listed in the tag database)
    add('cpu.usage;dc=east;host=web1', FINE, wave(35, 10, 8))
    add('cpu.usage;dc=east;host=web2', FINE, wave(60, 10, 8, gaps=0.1))
    add('cpu.usage;dc=west;host=db1', MINUTE, wave(80, 5, 4))
    add('cpu.usage;dc=west;env=prod;host=web3', FINE, wave(20, 5, 4))
    add('disk.used;dc=east;host=web1', MINUTE, wave(500, 50, 20, decimals=0))
    add('disk.used;dc=west;host=db1', MINUTE, wave(900, 20, 20, decimals=0))
    add('mem.free;host=web1', FINE, wave(2048, 256, 64, decimals=0))
    return m


def metric_path(whisper_dir, name):
    if ';' in name:
        h = hashlib.sha256(name.encode('utf8')).hexdigest()
        return os.path.join(whisper_dir, '_tagged', h[0:3], h[3:6], name.replace('.', '_DOT_') + '.wsp')
    return os.path.join(whisper_dir, *name.split('.')) + '.wsp'


def build_whisper(whisper_dir):
    import whisper
    if os.path.exists(whisper_dir):
        shutil.rmtree(whisper_dir)
    tagged = []
    for name, (ret, gen, xff, agg) in sorted(metrics().items()):
        path = metric_path(whisper_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        whisper.create(path, ret, xFilesFactor=xff, aggregationMethod=agg)
        finest = ret[0][0]
        oldest = NOW - max(s * n for s, n in ret) + finest
        rng = Rng(name)
        points = []
        t = oldest - oldest % finest
        while t <= NOW:
            v = gen(name, t, rng)
            if v is not None:
                points.append((t, v))
            t += finest
        # Oldest first, in chunks, as carbon would write them over time.
        for i in range(0, len(points), 500):
            whisper.update_many(path, points[i:i + 500], now=NOW)
        if ';' in name:
            tagged.append(name)
    return tagged


SETTINGS = '''
SECRET_KEY = 'carbonhound-reference'
TIME_ZONE = 'UTC'
ALLOWED_HOSTS = ['*']
STORAGE_DIR = {storage!r}
WHISPER_DIR = {whisper!r}
STANDARD_DIRS = [{whisper!r}]
LOG_DIR = {storage!r}
INDEX_FILE = {storage!r} + '/index'
CARBONLINK_HOSTS = []
USE_WORKER_POOL = False
TAGDB = 'graphite.tags.localdatabase.LocalDatabaseTagDB'
TAGDB_CACHE_DURATION = 0
DEFAULT_XFILES_FACTOR = 0
ENFORCE_INPUT_VALIDATION = True
FUNCTION_PLUGINS = []
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
LOG_INFO_PERFORMANCE = False
DATABASES = {{'default': {{'NAME': {storage!r} + '/graphite.db', 'ENGINE': 'django.db.backends.sqlite3',
                          'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}}}
'''


def start_graphite(storage_dir, whisper_dir, tagged):
    """Imports graphite-web with settings pointing at the fixture and fills its tag database."""
    settings_dir = os.path.join(storage_dir, 'settings')
    os.makedirs(settings_dir)
    with open(os.path.join(settings_dir, 'carbonhound_reference_settings.py'), 'w') as f:
        f.write(SETTINGS.format(storage=storage_dir, whisper=whisper_dir.rstrip('/') + '/'))
    sys.path.insert(0, settings_dir)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = 'carbonhound_reference_settings'
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
    import logging
    logging.disable(logging.CRITICAL)
    import django
    django.setup()
    from django.core.management import call_command
    call_command('migrate', verbosity=0, interactive=False)
    from graphite.storage import STORE
    for name in tagged:
        STORE.tagdb.tag_series(name)
    from django.test import Client
    return Client(raise_request_exception=True)


def read_cases(path):
    cases = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('{'):
                try:
                    spec = json.loads(line)
                except ValueError as e:
                    raise SystemExit('%s:%d: bad JSON case: %s' % (path, lineno, e))
                if 'target' not in spec:
                    raise SystemExit('%s:%d: a JSON case needs "target"' % (path, lineno))
            else:
                spec = {'target': line}
            cases.append((line, spec))
    return cases


def query(spec, fmt):
    targets = spec['target'] if isinstance(spec['target'], list) else [spec['target']]
    q = [('target', t) for t in targets]
    q.append(('from', str(spec.get('from', DEFAULT_FROM))))
    if 'until' in spec:
        q.append(('until', str(spec['until'])))
    q.append(('now', str(NOW)))
    q.append(('format', fmt))
    for key in ('maxDataPoints', 'xFilesFactor', 'tz'):
        if key in spec:
            q.append((key, str(spec[key])))
    if spec.get('noNullPoints'):
        q.append(('noNullPoints', '1'))
    return q


def encode_value(v):
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return 'nan'
    if math.isinf(v):
        return 'inf' if v > 0 else '-inf'
    return v


def compact(series):
    ts = [p[1] for p in series['datapoints']]
    out = {'target': series['target'], 'tags': series['tags']}
    if len(ts) >= 2 and all(ts[i + 1] - ts[i] == ts[1] - ts[0] for i in range(len(ts) - 1)):
        out['t0'], out['dt'] = ts[0], ts[1] - ts[0]
    elif len(ts) == 1:
        out['t0'], out['dt'] = ts[0], 0
    else:
        out['timestamps'] = ts
    out['values'] = [encode_value(p[0]) for p in series['datapoints']]
    return out


def render(client, spec, fmt):
    """(body, None) or (None, error text)."""
    try:
        resp = client.get('/render', query(spec, fmt))
    except Exception as e:  # graphite-web raised: a 500 in production
        return None, '%s: %s' % (type(e).__name__, str(e).splitlines()[0] if str(e) else '')
    body = resp.content.decode('utf8')
    if resp.status_code != 200:
        return None, 'HTTP %d: %s' % (resp.status_code, body.strip().splitlines()[0] if body.strip() else '')
    return body, None


def run_case(client, line, spec):
    if spec.get('validation') == 'lenient':
        from django.test import override_settings
        with override_settings(ENFORCE_INPUT_VALIDATION=False):
            return run_case(client, line, dict(spec, validation='strict'))
    body, err = render(client, spec, 'json')
    if err is not None:
        return {'case': line, 'error': err}
    parsed = json.loads(body)
    raw_body, err = render(client, spec, 'raw')
    if err is not None:
        return {'case': line, 'error': 'raw only: ' + err}
    raw = []
    for rline in raw_body.split('\n'):
        if not rline:
            continue
        head, _, values = rline.rpartition('|')
        raw.append('%s|%d' % (head, len(values.split(',')) if values else 0))
    return {'case': line, 'json': [compact(s) for s in parsed], 'raw': raw}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument('--regenerate', action='store_true', help='rewrite tests/fixtures/graphite')
    g.add_argument('--out', help='write whisper/ and expected.jsonl into this directory')
    args = ap.parse_args()
    out = FIXTURES if args.regenerate else os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    whisper_dir = os.path.join(out, 'whisper')
    tagged = build_whisper(whisper_dir)
    cases = read_cases(CASES)
    storage = tempfile.mkdtemp(prefix='carbonhound-graphite-')
    try:
        client = start_graphite(storage, whisper_dir, tagged)
        results = [run_case(client, line, spec) for line, spec in cases]
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    with open(os.path.join(out, 'expected.jsonl'), 'w') as f:
        for r in results:
            f.write(json.dumps(r, sort_keys=True, separators=(',', ':')) + '\n')
    errors = sum(1 for r in results if 'error' in r)
    print('%d cases (%d graphite-web errors) -> %s' % (len(results), errors, out))


if __name__ == '__main__':
    main()
