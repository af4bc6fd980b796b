#!/usr/bin/python3
"""graphite-web 1.1.8's function signatures, for tests/function_signatures.rs.

Loads graphite-web (Debian's graphite-web, in /usr/lib/python3/dist-packages/graphite) with
throw-away Django settings, takes every series function as its `/functions` view lists them
(`graphite.functions.SeriesFunctions()`: `graphite.render.functions.SeriesFunctions` plus the
bundled custom plugins) and prints one JSON document on stdout:

    {"functions": {NAME: {"group": ..., "params": [PARAM, ...], "python": [ARG, ...]}}}

PARAM is what graphite-web's `Param.toJSON` gives (`name`, `type`, and when set `required`,
`default`, `multiple`, `options` sorted as graphite-web sorts them), with an infinite default
written as the string "inf". ARG is one parameter of the Python function itself
(`inspect.signature`): {"name", "kind" ("positional", "var_positional", "keyword", ...),
"default"} where "default" is absent for a parameter without one and "null" stands for
Python's `None`. The Python default decides whether a call may leave an argument out
(`lowest(x)` works in graphite-web because `n=1`), even where the Param list says nothing.

Exits non-zero when graphite-web cannot be imported: the Rust test must then fail.
"""

import inspect
import json
import math
import os
import sys
import tempfile


def encode(v):
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return repr(v)


def main():
    storage = tempfile.mkdtemp(prefix="graphite-sig-")
    settings_dir = os.path.join(storage, "settings")
    os.makedirs(settings_dir)
    os.makedirs(os.path.join(storage, "log"))
    with open(os.path.join(settings_dir, "carbonhound_sig_settings.py"), "w") as f:
        f.write(
            "STORAGE_DIR = %r\nLOG_DIR = %r\nSECRET_KEY = 'carbonhound-tests'\n"
            "TAGDB = 'graphite.tags.base.DummyTagDB'\nFUNCTION_PLUGINS = []\n"
            % (storage, os.path.join(storage, "log"))
        )
    sys.path.insert(0, settings_dir)
    os.environ["GRAPHITE_SETTINGS_MODULE"] = "carbonhound_sig_settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"

    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    import django

    django.setup()

    from graphite.functions import SeriesFunctions

    out = {}
    for name, func in sorted(SeriesFunctions().items()):
        params = []
        for p in func.params:
            j = p.toJSON()
            j.pop("suggestions", None)
            if "default" in j:
                j["default"] = encode(j["default"])
            if "options" in j:
                j["options"] = [encode(o) for o in j["options"]]
            params.append(j)
        python = []
        for arg in inspect.signature(func).parameters.values():
            a = {"name": arg.name, "kind": arg.kind.name.lower()}
            if arg.default is not inspect.Parameter.empty:
                a["default"] = encode(arg.default)
            python.append(a)
        out[name] = {"group": getattr(func, "group", None), "params": params, "python": python}
    json.dump({"functions": out}, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
