#!/usr/bin/python3
"""graphite-web 1.1.8's own drawing of a corpus of graph requests, for tests/graph_reference.rs.

Reads a JSON list of cases on stdin, each

    {"params": [[key, value], ...], "tz": "UTC",
     "series": [{"name", "start", "end", "step", "values": [number or null, ...],
                 "consolidate": "average", "xFilesFactor": 0,
                 "color": null or "name/hex", "options": {"stacked": true, ...}}]}

(and optionally "format": "png" to draw graphite-web's PNG, whose text Cairo measures with
hinted metrics), and for each builds graphite-web's LineGraph or PieGraph (graphite.render.glyph, the Debian
package in /usr/lib/python3/dist-packages) exactly as its render view does: the parameters go
through views.py's parseOptions conversion (ints, floats, true/false, empty and `default`
dropped), the series are graphite.render.datalib.TimeSeries with the given options, pie values
come from graphite-web's pieAverage/pieMaximum/pieMinimum. It renders format=svg with Cairo.

Cairo's SVG writes text as glyph outlines and merges path segments, so the drawing is also
recorded as glyph.py asks Cairo for it: every drawText (the text and the device position of
its baseline start, the angle), and every stroke and fill (its `encodeHeader` group, colour,
line width and sub-paths as point lists; a line_to without a current point starts a
sub-path, as in Cairo; an arc is recorded as points 1 degree apart at most). It writes one
JSON object per case on stdout:

    {"texts": [{"text", "x", "y", "angle", "group"}], "paths": [{"group", "op", "rgba",
     "width", "subpaths": [[[x, y], ...], ...], "closed": [bool, ...]}],
     "headers": [the encodeHeader steps, in order: title, legend, axes, grid, lines],
     "bytes": size of graphite-web's image}

(graphite-web's SVG would turn each encodeHeader into a <g class=…>, but Cairo leaves out the
marker paths drawn off the image, so its SVG has none; the steps are recorded instead.)
    {"error": "what graphite-web raised"}

Run with /usr/bin/python3 (the only Python that sees graphite-web, pycairo and Django).
"""

import json
import math
import os
import sys
import tempfile


# The graphTemplates.conf carbonhound's side reads too ([default] is glyph.py's own defaults).
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures',
                         'graphTemplates.conf')


def setup_django():
    storage = tempfile.mkdtemp(prefix='carbonhound-graph-ref-')
    settings_dir = os.path.join(storage, 'settings')
    os.makedirs(settings_dir)
    with open(os.path.join(settings_dir, 'carbonhound_graph_settings.py'), 'w') as f:
        f.write('SECRET_KEY = "carbonhound-graph-reference"\n'
                'STORAGE_DIR = %r\nLOG_DIR = %r\nTIME_ZONE = "UTC"\n'
                'GRAPHTEMPLATES_CONF = %r\n'
                % (storage, storage, TEMPLATES))
    sys.path.insert(0, settings_dir)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = 'carbonhound_graph_settings'
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
    import logging
    import warnings
    logging.disable(logging.CRITICAL)
    warnings.simplefilter('ignore')
    import django
    django.setup()


class Recorder:
    """Stands in for a cairo.Context: forwards every call and records the geometry."""

    def __init__(self, ctx, log):
        self._ctx = ctx
        self._log = log
        self._subpaths = []   # list of [points, closed]
        self._current = None
        self._text = False
        self.group = ''
        self.recording = True

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def _dev(self, x, y):
        return list(self._ctx.user_to_device(x, y))

    def move_to(self, x, y):
        self._ctx.move_to(x, y)
        self._subpaths.append([[self._dev(x, y)], False])
        self._current = (x, y)

    def line_to(self, x, y):
        if self._current is None:
            self.move_to(x, y)
            return
        self._ctx.line_to(x, y)
        self._subpaths[-1][0].append(self._dev(x, y))
        self._current = (x, y)

    def rel_move_to(self, dx, dy):
        self._ctx.rel_move_to(dx, dy)
        x, y = self._ctx.get_current_point()
        self._subpaths.append([[self._dev(x, y)], False])
        self._current = (x, y)

    def close_path(self):
        self._ctx.close_path()
        if self._subpaths:
            self._subpaths[-1][1] = True
            start = self._subpaths[-1][0][0]
            self._current = tuple(self._ctx.device_to_user(*start))

    def rectangle(self, x, y, w, h):
        self._ctx.rectangle(x, y, w, h)
        self._subpaths.append([[self._dev(x, y), self._dev(x + w, y), self._dev(x + w, y + h),
                                self._dev(x, y + h)], True])
        self._current = (x, y)

    def arc(self, xc, yc, r, a1, a2):
        self._ctx.arc(xc, yc, r, a1, a2)
        span = max(a2 - a1, 0.0)
        n = max(int(math.ceil(math.degrees(span))), 1)
        for i in range(n + 1):
            a = a1 + span * i / n
            x, y = xc + r * math.cos(a), yc + r * math.sin(a)
            if self._current is None:
                self._subpaths.append([[self._dev(x, y)], False])
            else:
                self._subpaths[-1][0].append(self._dev(x, y))
            self._current = (x, y)

    def copy_path(self):
        return (self._ctx.copy_path(), [[list(p), c] for p, c in self._subpaths], self._current)

    def append_path(self, copied):
        path, subpaths, current = copied
        self._ctx.append_path(path)
        self._subpaths.extend([[list(p), c] for p, c in subpaths])
        if subpaths:
            self._current = current

    def text_path(self, text):
        x, y = self._ctx.get_current_point()
        dx, dy = self._dev(x, y)
        xx, yx, _, _, _, _ = self._ctx.get_matrix()
        if self.recording:
            self._log['texts'].append({'text': text, 'x': dx, 'y': dy,
                                       'angle': math.degrees(math.atan2(yx, xx)),
                                       'group': self.group})
        self._ctx.text_path(text)
        self._text = True

    def _clear(self):
        self._subpaths = []
        self._current = None
        self._text = False

    def _record(self, op):
        if self.recording and not self._text:
            self._log['paths'].append({
                'group': self.group, 'op': op,
                'rgba': list(self._ctx.get_source().get_rgba()),
                'width': self._ctx.get_line_width(),
                'subpaths': [p for p, _ in self._subpaths],
                'closed': [c for _, c in self._subpaths]})
        self._clear()

    def stroke(self):
        self._record('stroke')
        self._ctx.stroke()

    def fill(self):
        self._record('fill')
        self._ctx.fill()

    def clip(self):
        self._clear()
        self._ctx.clip()


def parse_options(pairs, graph_class):
    """views.py's parseOptions conversion of the image parameters."""
    query = dict(pairs)
    options = {'width': 330, 'height': 250}
    for opt in graph_class.customizable:
        if opt in query:
            val = query[opt]
            if (val.isdigit() or (val.startswith('-') and val[1:].isdigit())) and 'color' not in opt.lower():
                val = int(val)
            elif '.' in val and (val.replace('.', '', 1).isdigit() or
                                 (val.startswith('-') and val[1:].replace('.', '', 1).isdigit())):
                val = float(val)
            elif val.lower() in ('true', 'false'):
                val = val.lower() == 'true'
            elif val.lower() == 'default' or val == '':
                continue
            options[opt] = val
    return query, options


def render(case):
    from graphite.render import glyph
    from graphite.render.datalib import TimeSeries
    from graphite.render.functions import pieAverage, pieMaximum, pieMinimum

    pairs = case['params']
    query = dict(pairs)
    graph_type = query.get('graphType', 'line')
    graph_class = glyph.GraphTypes[graph_type]
    _, options = parse_options(pairs, graph_class)
    log = {'texts': [], 'paths': [], 'headers': []}

    series_list = []
    for s in case['series']:
        ts = TimeSeries(s['name'], s['start'], s['end'], s['step'], s['values'],
                        consolidate=s.get('consolidate', 'average'),
                        xFilesFactor=s.get('xFilesFactor', 0))
        ts.options.update(s.get('options', {}))
        if s.get('color'):
            ts.color = s['color']
        series_list.append(ts)

    if graph_type == 'pie':
        func = {'average': pieAverage, 'maximum': pieMaximum,
                'minimum': pieMinimum}[query.get('pieMode', 'average')]
        data = [(ts.name, func({}, ts) or 0) for ts in series_list]
    else:
        data = series_list
    options['data'] = data
    options['outputFormat'] = case.get('format', 'svg')
    options['tz'] = case.get('tz', 'UTC')

    class Recording(graph_class):
        def setupCairo(self, outputFormat='png'):
            graph_class.setupCairo(self, outputFormat)
            self.ctx = Recorder(self.ctx, log)

        def encodeHeader(self, text):
            log['headers'].append(text)
            self.ctx.recording = False
            graph_class.encodeHeader(self, text)
            self.ctx.recording = True
            self.ctx.group = text

    graph = Recording(**options)
    out = glyph.BytesIO()
    graph.output(out)
    log['bytes'] = len(out.getvalue())
    return log


def main():
    setup_django()
    cases = json.load(sys.stdin)
    for case in cases:
        try:
            result = render(case)
        except Exception as e:  # graphite-web's failure is the expected answer
            result = {'error': '%s: %s' % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(result) + '\n')


if __name__ == '__main__':
    main()
