#!/bin/sh
# Builds genclip-engine (release) and compares it with PyTorch on each config given
# (default: tiny mid); see docs/benchmarks.md. Set GENCLIP_ENGINE to a built binary (for
# example the bundle's) to skip the build. Extra options go after `--`, e.g.
#   tools/bench.sh mid -- --threads 1 --runs 5
set -eu
cd "$(dirname "$0")/.."
configs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do configs="$configs $1"; shift; done
[ $# -gt 0 ] && shift
engine="${GENCLIP_ENGINE:-}"
if [ -z "$engine" ]; then
    cargo build --release --bin genclip-engine
    engine=target/release/genclip-engine
fi
echo "load before: $(cat /proc/loadavg)"
for config in ${configs:-tiny mid}; do
    .venv/bin/python tools/bench_reference.py --config "$config" --ours "$engine" "$@"
done
echo "load after: $(cat /proc/loadavg)"
