#!/usr/bin/env bash
# The render memory probe of issue #10: the process's high-water mark (VmHWM) while a release
# server answers very large renders over the 20,000-metric data set that
# `cargo run --release --example loadgen -- --keep` leaves behind.
#
# Usage: examples/memory-probe.sh KEPT_LOADGEN_DIR [MAX_MEMORY]
#   MAX_MEMORY: [query] max_memory for the run (default "auto": a quarter of RAM, ≤ 512MiB).
# Prints, per step, the HTTP statuses, the bytes and seconds of each answer, and VmHWM.
# The data must be younger than 6 hours (the 10 s archive) for `from=-1h` to read 360 points.
set -euo pipefail
dir=${1:?usage: examples/memory-probe.sh KEPT_LOADGEN_DIR [MAX_MEMORY]}
budget=${2:-auto}
port=${PORT:-18082}
bin=${SERVER:-target/release/carbonhound}

CARBONHOUND_HTTP__LISTEN=127.0.0.1:$port CARBONHOUND_CARBON__PLAINTEXT_TCP= \
CARBONHOUND_CARBON__PLAINTEXT_UDP= CARBONHOUND_CARBON__PICKLE_TCP= RUST_LOG=warn \
CARBONHOUND_QUERY__MAX_MEMORY=$budget \
  "$bin" serve --config "$dir/carbonhound.toml" > /tmp/memory-probe-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/version" >/dev/null && break; sleep 0.1; done
hwm() { awk '/VmHWM/{printf "%.0f MiB", $2/1024}' "/proc/$server/status"; }

six="target=bench.*.*&target=bench.*.*&target=bench.*.*&target=bench.*.*&target=bench.*.*&target=bench.*.*"
one="target=bench.*.*"
ask() { # ask QUERY: status bytes seconds
  curl -s -o /dev/null -w '%{http_code} %{size_download} B %{time_total} s' \
    "http://127.0.0.1:$port/render?$1&from=-1h&format=json"
}
echo "budget $budget; VmHWM after start: $(hwm)"
echo "six targets (120,000 series):         $(ask "$six");  VmHWM $(hwm)"
pids=(); for i in 1 2 3; do ask "$six" > "/tmp/memory-probe.$i" & pids+=($!); done; wait "${pids[@]}"
echo "six targets, three at once:           $(for i in 1 2 3; do cat /tmp/memory-probe.$i; echo -n '; '; done)  VmHWM $(hwm)"
echo "one target (20,000 series):           $(ask "$one");  VmHWM $(hwm)"
pids=(); for i in 1 2 3; do ask "$one" > "/tmp/memory-probe.$i" & pids+=($!); done; wait "${pids[@]}"
echo "one target, three at once:            $(for i in 1 2 3; do cat /tmp/memory-probe.$i; echo -n '; '; done)  VmHWM $(hwm)"
