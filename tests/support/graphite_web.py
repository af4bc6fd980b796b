#!/usr/bin/python3
"""graphite-web 1.1.8 (Debian's package) as a real HTTP server for carbonhound's tests.

Usage: graphite_web.py STORAGE_DIR WHISPER_DIR

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

Whisper files are read as graphite-web reads them in production: directly from WHISPER_DIR on
every request (no index file, no cache), so files written after start are seen.
"""
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


def main(storage_dir, whisper_dir):
    settings_dir = os.path.join(storage_dir, 'settings')
    os.makedirs(settings_dir, exist_ok=True)
    with open(os.path.join(settings_dir, 'carbonhound_test_settings.py'), 'w') as f:
        f.write(SETTINGS.format(storage=storage_dir, whisper=whisper_dir.rstrip('/') + '/'))
    sys.path.insert(0, settings_dir)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = 'carbonhound_test_settings'
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
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
    if len(sys.argv) != 3 or not os.path.isdir(sys.argv[1]) or not os.path.isdir(sys.argv[2]):
        print('usage: graphite_web.py STORAGE_DIR WHISPER_DIR (existing directories)',
              file=sys.stderr)
        sys.exit(64)
    main(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
