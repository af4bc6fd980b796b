#!/usr/bin/env bash
# The federation benchmark of issue #12 (item 4): the render workload of examples/render-bench.sh
# against one node holding the 20,000-metric loadgen set, and against a node federating three
# shards of the same set (`[cluster] servers` = the other two; hosts hNNN go to shard NNN mod 3),
# all on this machine, measured in the same run, alternating.
#
# Usage: examples/federation-bench.sh KEPT_LOADGEN_DIR [SECONDS_PER_RUN] [RUNS]
# KEPT_LOADGEN_DIR: what `cargo run --release --example loadgen -- --keep` left (younger than
# 6 hours). Prints per request the median over RUNS of wrk's p50 and req/s for each setup and
# the federated/single ratio of the p50.
set -euo pipefail
dir=${1:?usage: examples/federation-bench.sh KEPT_LOADGEN_DIR [SECONDS] [RUNS]}
secs=${2:-5}
runs=${3:-3}
bin=${SERVER:-target/release/carbonhound}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# Three shards of the whisper tree, as hard links (read only here).
for n in 0 1 2; do mkdir -p "$work/n$n/data/whisper/bench"; done
for h in "$dir"/data/whisper/bench/h*; do
  i=$((10#$(basename "$h" | tr -dc 0-9) % 3))
  cp -al "$h" "$work/n$i/data/whisper/bench/"
done

start() { # start PORT DATA_DIR [CLUSTER_SERVERS]
  CARBONHOUND_HTTP__LISTEN=127.0.0.1:$1 CARBONHOUND_DATA_DIR=$2 CARBONHOUND_CARBON__PLAINTEXT_TCP= \
  CARBONHOUND_CARBON__PLAINTEXT_UDP= CARBONHOUND_CARBON__PICKLE_TCP= CARBONHOUND_CACHE__WAL=false \
  CARBONHOUND_CLUSTER__SERVERS=${3:-} RUST_LOG=warn \
    "$bin" serve --config "$dir/carbonhound.toml" > "$work/server-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/version" >/dev/null && return; sleep 0.1; done
  echo "server on $1 did not start: $(cat "$work/server-$1.log")" >&2; exit 1
}
single=18091; fed=18092
start $single "$dir/data"
start 18093 "$work/n1/data"
start 18094 "$work/n2/data"
start $fed "$work/n0/data" "127.0.0.1:18093,127.0.0.1:18094"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}'; }
measure() { # measure PORT PATH -> "p50_ms req_s"
  local out
  out=$(wrk -t2 -c8 -d"${secs}s" --latency "http://127.0.0.1:$1$2")
  echo "$out" | grep -q "Non-2xx" && { echo "non-2xx answers for $2 on $1" >&2; exit 1; }
  echo "$(echo "$out" | awk '$1=="50%"{print $2}' | to_ms) $(echo "$out" | awk '/^Requests\/sec/{print $2}')"
}
for path in \
  "/render?target=bench.h001.m01&from=-1h&format=json" \
  "/render?target=sumSeries(bench.h00*.m*)&from=-1h&format=json" \
  "/metrics/find?query=bench.*" \
  "/metrics/expand?query=bench.h0*.*&leavesOnly=1"; do
  # The same answer from both (the federated one merged from three shards).
  cmp -s <(curl -s "http://127.0.0.1:$single$path") <(curl -s "http://127.0.0.1:$fed$path") ||
    { echo "answers differ for $path" >&2; exit 1; }
  sp=(); sr=(); fp=(); fr=()
  for _ in $(seq "$runs"); do
    read -r p r < <(measure $single "$path"); sp+=("$p"); sr+=("$r")
    read -r p r < <(measure $fed "$path"); fp+=("$p"); fr+=("$r")
  done
  s50=$(printf '%s\n' "${sp[@]}" | median); f50=$(printf '%s\n' "${fp[@]}" | median)
  printf '%-62s single p50 %7.3f ms %7.0f req/s | federated p50 %7.3f ms %7.0f req/s | ratio %.2f\n' \
    "$path" "$s50" "$(printf '%s\n' "${sr[@]}" | median)" "$f50" "$(printf '%s\n' "${fr[@]}" | median)" \
    "$(awk -v a="$f50" -v b="$s50" 'BEGIN{print a/b}')"
done
