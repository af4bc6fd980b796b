#!/usr/bin/python3
"""graphite-web 1.1.8 (Debian's package) as a real HTTP server for carbonhound's tests.

Usage: graphite_web.py STORAGE_DIR WHISPER_DIR [--cluster-server HOST]... [--remote-use-post]

Writes a graphite-web settings module into STORAGE_DIR (STORAGE_DIR, WHISPER_DIR, a sqlite
database STORAGE_DIR/graphite.db with the local tag database, no carbonlink, a fixed SECRET_KEY,
TIME_ZONE UTC), creates the database's tables (`django-admin migrate`, done in-process), and
serves graphite-web's own WSGI application (graphite/wsgi.py's Django application, every URL:
/render, /metrics/find, /tags, /events, ...) with Python's wsgiref server, one thread per
request, on 127.0.0.1 at a free port.

Prints "PORT <n>" on stdout once it accepts connections, logs each request on stderr, and exits
when its stdin closes, so it dies with the test that started it. Exits with status 2 when
graphite-web or Django cannot be imported (Debian: apt-get install graphite-web), so a test
fails, never skips, without the real graphite-web.

With --cluster-server (repeatable; graphite-web's CLUSTER_SERVERS entry, e.g. 127.0.0.1:8080 or
127.0.0.1:8080?format=msgpack) it is a cluster front: its finders include a RemoteFinder per
server, which asks /metrics/find/ and /render/ with local=1 in pickle (or the entry's format).
--remote-use-post sets REMOTE_STORE_USE_POST (those requests are multipart/form-data POSTs,
as urllib3 sends `fields`). REMOTE_RETRY_DELAY is 0, so one failed request does not silence a server for the next minute. Python 3.10+ lost
an alias that graphite-web's bundled msgpack decoder needs; it is put back (python310_compat),
so msgpack answers decode at all.

Whisper files are read as graphite-web reads them in production: directly from WHISPER_DIR on
every request (no index file, no cache), so files written after start are seen.
"""
import argparse
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

SETTINGS = '''
SECRET_KEY = 'carbonhound-tests'
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
DEFAULT_CACHE_DURATION = 0
FUNCTION_PLUGINS = []
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
LOG_INFO_PERFORMANCE = False
DATABASES = {{'default': {{'NAME': {storage!r} + '/graphite.db',
                          'ENGINE': 'django.db.backends.sqlite3',
                          'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}}}
'''


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write('graphite-web: %s\n' % (format % args))


CLUSTER_SETTINGS = '''
CLUSTER_SERVERS = {servers!r}
REMOTE_EXCLUDE_LOCAL = False
REMOTE_STORE_USE_POST = {use_post!r}
REMOTE_RETRY_DELAY = 0
'''


def python310_compat():
    """Puts back `collections.Hashable` (moved to collections.abc, and gone from collections
    since Python 3.10), which the u-msgpack-python 2.4.1 bundled in graphite-web 1.1.8
    (graphite/umsgpack.py, used when the `msgpack` module is absent) needs to unpack any map:
    without it every msgpack answer fails to decode on Debian's Python 3.11, graphite-web's own
    included. (Debian's python3-msgpack is no way out: graphite-web passes it `encoding=`, which
    msgpack 1.0 removed.) Only the alias is added; graphite-web's code runs unchanged."""
    import collections
    import collections.abc
    if not hasattr(collections, 'Hashable'):
        collections.Hashable = collections.abc.Hashable


def main(storage_dir, whisper_dir, cluster_servers, use_post):
    settings_dir = os.path.join(storage_dir, 'settings')
    os.makedirs(settings_dir, exist_ok=True)
    with open(os.path.join(settings_dir, 'carbonhound_test_settings.py'), 'w') as f:
        f.write(SETTINGS.format(storage=storage_dir, whisper=whisper_dir.rstrip('/') + '/'))
        if cluster_servers:
            f.write(CLUSTER_SETTINGS.format(servers=cluster_servers, use_post=use_post))
    sys.path.insert(0, settings_dir)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = 'carbonhound_test_settings'
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
    python310_compat()
    try:
        import django
        import graphite  # noqa: F401
    except ImportError as e:
        print('graphite-web is not installed (Debian package graphite-web): %s' % e,
              file=sys.stderr)
        sys.exit(2)
    django.setup()
    from django.core.management import call_command
    call_command('migrate', verbosity=0, interactive=False)
    from graphite.wsgi import application

    server = make_server('127.0.0.1', 0, application, server_class=ThreadingWSGIServer,
                         handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print('PORT %d' % server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='graphite-web 1.1.8 for carbonhound tests')
    parser.add_argument('storage_dir')
    parser.add_argument('whisper_dir')
    parser.add_argument('--cluster-server', action='append', default=[])
    parser.add_argument('--remote-use-post', action='store_true')
    args = parser.parse_args()
    if not os.path.isdir(args.storage_dir) or not os.path.isdir(args.whisper_dir):
        print('usage: graphite_web.py STORAGE_DIR WHISPER_DIR (existing directories) [...]',
              file=sys.stderr)
        sys.exit(64)
    main(os.path.abspath(args.storage_dir), os.path.abspath(args.whisper_dir),
         args.cluster_server, args.remote_use_post)
