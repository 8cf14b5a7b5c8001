#!/usr/bin/env bash
# The measurements behind docs/benchmarks.md: every table there is written from the --json files
# of the amp-bench runs below (scripts/benchmarks_doc.py fills docs/benchmarks.template.md).
#
#   scripts/benchmarks.sh                        # on a quiet machine: nothing else running
#   FRAMES=5 ROS_FRAMES=20 SOAK_FRAMES=50 OUT=out/bench-smoke DOC=out/bench-smoke/benchmarks.md \
#       scripts/benchmarks.sh                    # a smoke test of the whole chain (minutes)
#
# Resumable: a case whose OUT/<case>.json exists is skipped (delete it to measure again). Cases:
# offline on the CPU at 854×480 and 1920×1080 (default, no CRF, one taught class; at 854×480 also
# the pydensecrf CRF, the AMP authors' 12 CRF iterations, one torch thread, and the network all
# in torch, without onnxruntime); through the
# node at 30 Hz at both sizes; the soak (SOAK_FRAMES through the node at 30 Hz, 854×480); the
# option model u2net offline and through the node at 854×480 (when `make weights-u2net` has
# fetched its trunk); and, when torch sees a GPU, the same offline and node cases with
# --device cuda. Threads: torch's
# default (every core) unless OMP_NUM_THREADS is set; the node inherits it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/benchmarks}
FRAMES=${FRAMES:-100}            # offline frames per case (the clip's 30, cycled)
ROS_FRAMES=${ROS_FRAMES:-600}    # frames published per node case (20 s at 30 Hz)
SOAK_FRAMES=${SOAK_FRAMES:-10000}
RATE=${RATE:-30}
WARMUP=${WARMUP:-$(( FRAMES > 10 ? 5 : 1 ))}
CHECKPOINT=${CHECKPOINT:-$(.venv/bin/python -c "from amp_ros.models import default_model_name; print(default_model_name())")}
BENCH=.venv/bin/amp-bench
mkdir -p "$OUT"

run_model() {  # run_model MODEL CASE [amp-bench options...]
  local model=$1 case=$2; shift 2
  if [ -f "$OUT/$case.json" ]; then
    echo "== $case: kept ($OUT/$case.json)"
  else
    echo "== $case: $BENCH --checkpoint $model $*"
    "$BENCH" --checkpoint "$model" "$@" --json "$OUT/$case.json"
  fi
}
run() { run_model "$CHECKPOINT" "$@"; }  # run CASE [amp-bench options...]: the CHECKPOINT model

for size in 854x480 1920x1080; do
  common=(--device cpu --size "$size" --frames "$FRAMES" --warmup "$WARMUP")
  run "cpu-$size-default" "${common[@]}"
  run "cpu-$size-no-crf" "${common[@]}" --config crf=false
  run "cpu-$size-taught" "${common[@]}" --teach
done
# the CRF's two implementations, and the AMP authors' 12 iterations (default 5; J: docs/results.md)
common=(--device cpu --size 854x480 --frames "$FRAMES" --warmup "$WARMUP")
run "cpu-854x480-pydensecrf" "${common[@]}" --config crf_backend=pydensecrf
run "cpu-854x480-crf-12" "${common[@]}" --config crf_iterations=12
# one torch thread, as the node runs by default on 2 cores: the CRF's lattice is then built in a
# worker thread on the other core while the network runs (with every core computing, it is not)
run "cpu-854x480-threads-1" "${common[@]}" --threads 1
# the network all in torch: without the ONNX parts on onnxruntime (the onnx setting)
run "cpu-854x480-torch-network" "${common[@]}" --config onnx=false
run "cpu-854x480-threads-1-torch-network" "${common[@]}" --threads 1 --config onnx=false
for size in 854x480 1920x1080; do
  run "ros-$size" --device cpu --via ros --size "$size" --rate "$RATE" --frames "$ROS_FRAMES" --warmup "$WARMUP"
done
# the node's torch threads: the default (one fewer than the cores) against every core
run "ros-854x480-threads-2" --device cpu --via ros --size 854x480 --rate "$RATE" --frames "$ROS_FRAMES" \
    --warmup "$WARMUP" --threads 2
run "ros-854x480-torch-network" --device cpu --via ros --size 854x480 --rate "$RATE" --frames "$ROS_FRAMES" \
    --warmup "$WARMUP" --config onnx=false
# through the node at 1080p, the torch CRF against pydensecrf (docs/benchmarks.md says why)
run "ros-1920x1080-pydensecrf" --device cpu --via ros --size 1920x1080 --rate "$RATE" \
    --frames "$ROS_FRAMES" --warmup "$WARMUP" --config crf_backend=pydensecrf
run "soak-854x480" --device cpu --via ros --size 854x480 --rate "$RATE" --frames "$SOAK_FRAMES" \
    --warmup "$WARMUP"
# the option model u2net (the full U²-Net as the appearance stream; J: docs/results.md)
if .venv/bin/python -c "from amp_ros.u2net_weights import weights_path; weights_path('u2net')" 2>/dev/null; then
  run_model u2net "cpu-854x480-u2net" --device cpu --size 854x480 --frames "$FRAMES" --warmup "$WARMUP"
  run_model u2net "ros-854x480-u2net" --device cpu --via ros --size 854x480 --rate "$RATE" \
      --frames "$ROS_FRAMES" --warmup "$WARMUP"
  # its U²-Net trunk runs in torch, not onnxruntime: the node's torch threads matter more
  run_model u2net "ros-854x480-u2net-threads-2" --device cpu --via ros --size 854x480 --rate "$RATE" \
      --frames "$ROS_FRAMES" --warmup "$WARMUP" --threads 2
else
  echo "== u2net: its trunk's weights are not here (make weights-u2net); its rows are left out"
fi

if .venv/bin/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  for size in 854x480 1920x1080; do
    common=(--device cuda --size "$size" --frames "$FRAMES" --warmup "$WARMUP")
    run "gpu-$size-default" "${common[@]}"
    run "gpu-$size-no-crf" "${common[@]}" --config crf=false
    run "gpu-ros-$size" --device cuda --via ros --size "$size" --rate "$RATE" --frames "$ROS_FRAMES" \
        --warmup "$WARMUP"
  done
else
  echo "== gpu: torch sees no CUDA device; docs/benchmarks.md says so"
fi

.venv/bin/python scripts/benchmarks_doc.py "$OUT" --out "${DOC:-docs/benchmarks.md}"
