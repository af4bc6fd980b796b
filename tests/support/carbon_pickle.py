"""Writes one carbon pickle frame (4-byte big-endian length + pickle) to stdout.

usage: carbon_pickle.py PROTOCOL KIND [JSON]
  points   JSON is a list of [path, timestamp, value]; the frame is the list of
           (path, (timestamp, value)) tuples carbon-relay sends
  global   pickle.dumps(os.system): a GLOBAL / STACK_GLOBAL opcode
  reduce   an object whose __reduce__ calls os.system: GLOBAL + REDUCE
  dict     a dict, not a list
  tuple    a (path, (timestamp, value)) tuple: decodes, but is not a list
  big      JSON is [path, timestamp, count]: count points of one metric (a large frame)

Run by tests/ingest.rs with /usr/bin/python3, so the frames come from CPython's own pickle.
"""
import json
import os
import pickle
import struct
import sys


class Evil:
    def __reduce__(self):
        return (os.system, ("echo carbonhound-pickle-was-executed >&2",))


def main():
    protocol = int(sys.argv[1])
    kind = sys.argv[2]
    arg = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    if kind == "points":
        obj = [(p, (t, v)) for p, t, v in arg]
    elif kind == "global":
        obj = os.system
    elif kind == "reduce":
        obj = [Evil()]
    elif kind == "dict":
        obj = {"a.b": (1, 2)}
    elif kind == "tuple":
        obj = ("a.b", (1, 2))
    elif kind == "big":
        path, ts, count = arg
        obj = [(path, (ts + i, float(i))) for i in range(count)]
    else:
        raise SystemExit("unknown kind " + kind)
    payload = pickle.dumps(obj, protocol=protocol)
    sys.stdout.buffer.write(struct.pack("!L", len(payload)) + payload)


main()
