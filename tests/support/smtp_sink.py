#!/usr/bin/python3
"""A real SMTP server for carbonhound's alerting tests: aiosmtpd on 127.0.0.1 at a free port.

Usage: smtp_sink.py DIR [PORT]
Saves every message it accepts, exactly as received, to DIR/0001.eml, DIR/0002.eml, ...
(written to a temporary name first, then renamed, so a reader never sees half a message).
Prints "PORT <n>" on stdout once it listens, and exits when its stdin closes, so it dies
with the test that started it. Exits with status 2 if aiosmtpd is not installed
(Debian: python3-aiosmtpd).
"""
import asyncio
import os
import sys

try:
    from aiosmtpd.smtp import SMTP
except ImportError as e:  # the test must fail, not skip, without a real SMTP server
    print(f"aiosmtpd is not installed (Debian package python3-aiosmtpd): {e}", file=sys.stderr)
    sys.exit(2)


class Saver:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = f"{self.count:04d}.eml"
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


async def main(directory, port):
    loop = asyncio.get_running_loop()
    saver = Saver(directory)
    server = await loop.create_server(lambda: SMTP(saver, hostname="smtp-sink.test"), "127.0.0.1", port)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or not os.path.isdir(sys.argv[1]):
        print("usage: smtp_sink.py DIR [PORT] (an existing directory; port 0 or none: any)",
              file=sys.stderr)
        sys.exit(64)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 0))
