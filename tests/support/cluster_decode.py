#!/usr/bin/python3
"""Decodes a cluster-protocol answer as a graphite-web 1.1.8 front does, for carbonhound's tests.

Usage: cluster_decode.py CONTENT_TYPE < BODY

Reads an answer of /metrics/find or /render (format=pickle or msgpack) on stdin and decodes it
with graphite-web's own code: RemoteFinder._deserialize_buffer and _deserialize_stream (the
inline and the streaming paths of finders/remote.py, which pick msgpack for
application/x-msgpack and graphite.util.unpickle, the restricted unpickler, otherwise). Both
must give the same value. (With the alias python310_compat puts back, without which
graphite-web 1.1.8 decodes no msgpack map on Python 3.10 or later.)

Prints one JSON object on stdout:
  "value": the decoded value, spelled so that nothing is lost in JSON: a dict is
           {"dict": [[key, value], ...]} (its keys in order), a tuple {"tuple": [...]}, an
           instance {"object": "module.Class", "dict": [[attr, value], ...]} (its __dict__),
           a str, int, float, bool or None as itself (json keeps 1 and 1.0 apart);
  "reencoded_equal": for msgpack, whether graphite-web's packer (graphite.util.msgpack.dumps
           with use_bin_type=True, as find_view and renderView call it) writes the very same
           bytes for the decoded value; null for pickle (Python's pickler adds a memo).

Exits with status 2 when graphite-web cannot be imported (Debian: apt-get install graphite-web).
"""
import io
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graphite_web import python310_compat  # noqa: E402


def spell(v):
    if isinstance(v, dict):
        return {'dict': [[k, spell(x)] for k, x in v.items()]}
    if isinstance(v, tuple):
        return {'tuple': [spell(x) for x in v]}
    if isinstance(v, list):
        return [spell(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    cls = type(v)
    return {'object': '%s.%s' % (cls.__module__, cls.__name__),
            'dict': [[k, spell(x)] for k, x in vars(v).items()]}


def main():
    content_type = sys.argv[1]
    body = sys.stdin.buffer.read()
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'graphite.settings')
    python310_compat()
    warnings.simplefilter('ignore')
    try:
        from graphite.finders.remote import RemoteFinder
        from graphite.util import msgpack
    except ImportError as e:
        print('graphite-web is not installed (Debian package graphite-web): %s' % e,
              file=sys.stderr)
        sys.exit(2)
    inline = RemoteFinder._deserialize_buffer(body, content_type)
    streamed = RemoteFinder._deserialize_stream(io.BytesIO(body), content_type)
    if spell(inline) != spell(streamed):
        print('inline and streamed decoding differ:\n%r\n%r' % (inline, streamed),
              file=sys.stderr)
        sys.exit(1)
    reencoded = None
    if content_type == 'application/x-msgpack':
        reencoded = msgpack.dumps(inline, use_bin_type=True) == body
    json.dump({'value': spell(inline), 'reencoded_equal': reencoded}, sys.stdout)


if __name__ == '__main__':
    main()
