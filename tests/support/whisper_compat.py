"""Drives Python's whisper module (Debian python3-whisper, whisper 1.1) for
tests/whisper_compat.rs.

Reads one JSON job on stdin, writes one JSON answer on stdout. Floats travel as the 16 hex
digits of their IEEE-754 big-endian bits, so every value compares bit for bit.

Job:
  {"cases": [{
      "py_path": str,                  # file this script creates and updates
      "archives": [[secondsPerPoint, points], ...],
      "xff": float, "method": str,
      "ops": [{"op": "update_many", "now": int, "points": [[t, hex], ...]}
              | {"op": "update", "now": int, "t": int, "v": hex}],
      "reads": [{"path": str, "now": int,
                 "windows": [[from, until | null, archiveToSelect | null], ...]}]}]}

Answer:
  {"cases": [{
      "create_error": null | "Class: message",
      "op_errors": [null | "Class: message", ...],
      "reads": [{"info": {...}, "fetches": [null | {"error": "Class"} | [from, until, step, [hex | null, ...]]]}]}]}
"""

import json
import struct
import sys

import whisper


def to_hex(v):
    return struct.pack(">d", v).hex()


def from_hex(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]


def describe(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def read(path, now, windows):
    info = whisper.info(path)
    answer = {
        "info": {
            "aggregationMethod": info["aggregationMethod"],
            "maxRetention": info["maxRetention"],
            "xFilesFactor": to_hex(info["xFilesFactor"]),
            "archives": [[a["offset"], a["secondsPerPoint"], a["points"], a["retention"], a["size"]]
                         for a in info["archives"]],
        },
        "fetches": [],
    }
    for (from_time, until_time, select) in windows:
        try:
            got = whisper.fetch(path, from_time, until_time, now=now, archiveToSelect=select)
        except (whisper.WhisperException, ValueError) as exc:
            answer["fetches"].append({"error": type(exc).__name__})
            continue
        if got is None:
            answer["fetches"].append(None)
            continue
        (start, end, step), values = got
        answer["fetches"].append([start, end, step, [None if v is None else to_hex(v) for v in values]])
    return answer


def run_case(case):
    result = {"create_error": None, "op_errors": [], "reads": []}
    try:
        whisper.create(case["py_path"], [tuple(a) for a in case["archives"]],
                       xFilesFactor=case["xff"], aggregationMethod=case["method"])
    except whisper.WhisperException as exc:
        result["create_error"] = describe(exc)
        return result
    for op in case["ops"]:
        try:
            if op["op"] == "update_many":
                whisper.update_many(case["py_path"], [(t, from_hex(v)) for (t, v) in op["points"]], now=op["now"])
            else:
                whisper.update(case["py_path"], from_hex(op["v"]), op["t"], now=op["now"])
            result["op_errors"].append(None)
        except whisper.WhisperException as exc:
            result["op_errors"].append(describe(exc))
    for r in case["reads"]:
        result["reads"].append(read(r["path"], r["now"], r["windows"]))
    return result


def main():
    job = json.load(sys.stdin)
    json.dump({"cases": [run_case(c) for c in job["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()
