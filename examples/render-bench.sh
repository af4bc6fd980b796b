#!/usr/bin/env bash
# The render benchmark of issue #4: wrk -t2 -c8 against a release server reading the
# 20,000-metric data set that `cargo run --release --example loadgen -- --keep` leaves behind.
#
# Usage: examples/render-bench.sh KEPT_LOADGEN_DIR [SECONDS_PER_RUN] [RUNS]
# Prints, per request, the median over RUNS runs of wrk's p50 latency and requests/s.
# The data must be younger than 6 hours (the 10 s archive) for `from=-1h` to read 360 points.
set -euo pipefail
dir=${1:?usage: examples/render-bench.sh KEPT_LOADGEN_DIR [SECONDS] [RUNS]}
secs=${2:-10}
runs=${3:-3}
port=${PORT:-18081}
bin=${SERVER:-target/release/carbonhound}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

CARBONHOUND_HTTP__LISTEN=127.0.0.1:$port CARBONHOUND_CARBON__PLAINTEXT_TCP= \
CARBONHOUND_CARBON__PLAINTEXT_UDP= CARBONHOUND_CARBON__PICKLE_TCP= RUST_LOG=warn \
  "$bin" serve --config "$dir/carbonhound.toml" > /tmp/render-bench-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/version" >/dev/null && break; sleep 0.1; done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}'; }

for path in \
  "/render?target=bench.h001.m01&from=-1h&format=json" \
  "/render?target=sumSeries(bench.h00*.m*)&from=-1h&format=json" \
  "/metrics/find?query=bench.*" \
  "/metrics/expand?query=bench.h0*.*&leavesOnly=1"; do
  p50s=(); rps=()
  for _ in $(seq "$runs"); do
    out=$(wrk -t2 -c8 -d"${secs}s" --latency "http://127.0.0.1:$port$path")
    p50s+=("$(echo "$out" | awk '$1=="50%"{print $2}' | to_ms)")
    rps+=("$(echo "$out" | awk '/^Requests\/sec/{print $2}')")
    echo "$out" | grep -q "Non-2xx" && { echo "non-2xx answers for $path" >&2; exit 1; }
  done
  printf '%-70s p50 %7.3f ms  %9.0f req/s   (runs: p50 %s; req/s %s)\n' "$path" \
    "$(printf '%s\n' "${p50s[@]}" | median)" "$(printf '%s\n' "${rps[@]}" | median)" \
    "${p50s[*]}" "${rps[*]}"
done
