#!/bin/sh
# Sends Monit's view of every service to carbonhound as carbon plaintext lines.
# Usage: monit-to-carbon.sh [host [port]]   (defaults 127.0.0.1 2003)
# Environment: MONIT (the monit command, default "monit"), MONIT_NODE (the host node name,
# default the short host name).
set -eu
HOST="${1:-127.0.0.1}"
PORT="${2:-2003}"
MONIT="${MONIT:-monit}"
NODE="$(printf '%s' "${MONIT_NODE:-$(hostname -s)}" | tr '.' '_')"
NOW="$(date +%s)"

$MONIT status | awk -v node="$NODE" -v now="$NOW" '
  function name(s) { gsub(/[^A-Za-z0-9_-]/, "_", s); return s }
  /^(Process|File|Filesystem|Directory|Remote Host|System|Program|Network|Fifo) / {
    svc = $0; sub(/^[A-Za-z ]+ '\''/, "", svc); sub(/'\''.*$/, "", svc); svc = name(svc); next
  }
  svc != "" && $1 == "status" {
    v = ($0 ~ /OK|Running|Accessible|Online/) ? 0 : 1
    printf "monit.%s.%s.status %d %s\n", node, svc, v, now
  }
  svc != "" && $1 == "monitoring" && $2 == "status" {
    printf "monit.%s.%s.monitored %d %s\n", node, svc, ($3 == "Monitored") ? 1 : 0, now
  }
  svc != "" && $1 == "port" && $2 == "response" && $3 == "time" {
    t = $4; unit = $5
    if (unit == "ms") t = t / 1000
    printf "monit.%s.%s.response_time %s %s\n", node, svc, t, now
  }
' > /tmp/monit-to-carbon.$$

# bash's /dev/tcp is not in every sh; use whichever client exists.
if command -v nc >/dev/null 2>&1; then
  nc -q 1 "$HOST" "$PORT" < /tmp/monit-to-carbon.$$ 2>/dev/null || nc "$HOST" "$PORT" < /tmp/monit-to-carbon.$$
else
  bash -c "cat /tmp/monit-to-carbon.$$ > /dev/tcp/$HOST/$PORT"
fi
rm -f /tmp/monit-to-carbon.$$
