#!/usr/bin/env bash
# Train one recipe on several cross-validation folds side by side, on a GPU machine that gets a
# size-limited copy of the repository (the workplace's device tool: an H200, 16 cores, no
# ../shared), from a pack of the training data (amp_ros/training/pack.py). Here first:
#
#   .venv/bin/python -m amp_ros.training.pack --out .device/pack --max-side 320 \
#       --data ../shared/data/davis2016-train ../shared/data/ucsd-bgs ../shared/data/sbi2015-subset
#
# then, on the device, from the repository root (each part of the pack travels in its own call,
# `carry` naming .device/pack/pack.json and that part, .cache/weights/u2netp.onnx too for U²-Netp;
# a warm machine keeps what earlier calls carried, so make the calls back to back, the last
# one running this script):
#
#   FOLDS="A 1 2 3 4" TRAIN="--appearance u2netp --width 0.25 --blocks 2,2,2 --max-side 320 \
#       --epochs 4 --steps-per-epoch 400 --batch-size 8 --motion flow-minus-camera" \
#       scripts/device_train.sh
#
# Every fold runs `amp-train --fold F --device cuda` in its own process (the sampling is one CPU
# thread per process); FINETUNE, if set, is a second amp-train per fold started from the first's
# best checkpoint (--init). Each fold's last best/ checkpoint, its log.json files and console log
# come back as $OUT/fold<F>.tar (the device tool returns at most 8 files). DEVICE=cpu runs the
# same here.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-.device/pack}
FOLDS=${FOLDS:-A 1 2 3 4}
TRAIN=${TRAIN:?set TRAIN to the amp-train options shared by every fold}
FINETUNE=${FINETUNE:-}
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-2}  # torch threads per fold
PYTHON=${PYTHON:-python3}
OUT=${OUT:-out/device}
WORK=${WORK:-/tmp/amp-device}

[ -f "$PACK/pack.json" ] || { echo "device_train.sh: no $PACK/pack.json (see the comment at the top)" >&2; exit 2; }
mkdir -p "$WORK/data" "$OUT"
for part in "$PACK"/part*/; do cp -r "$part". "$WORK/data/"; done
mapfile -t data < <("$PYTHON" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["datasets"]))' "$PACK/pack.json")
data=("${data[@]/#/$WORK/data/}")
for folder in "${data[@]}"; do
  [ -d "$folder" ] || { echo "device_train.sh: $folder is missing: has every part of $PACK travelled?" >&2; exit 2; }
done
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=$THREADS

train_fold() {  # train_fold FOLD: the fold's amp-train run(s), its console output in WORK
  local fold=$1 runs=$WORK/runs
  # shellcheck disable=SC2086  # TRAIN and FINETUNE are words
  "$PYTHON" -m amp_ros.training.train --data "${data[@]}" --fold "$fold" --device "$DEVICE" \
      --threads "$THREADS" --cache "$WORK/cache" --out "$runs/fold$fold" --resume $TRAIN
  [ -z "$FINETUNE" ] || "$PYTHON" -m amp_ros.training.train --data "${data[@]}" --fold "$fold" \
      --device "$DEVICE" --threads "$THREADS" --cache "$WORK/cache" --out "$runs/fold$fold-finetune" \
      --init "$runs/fold$fold/best" --resume $FINETUNE
}

pids=()
for fold in $FOLDS; do
  train_fold "$fold" > "$WORK/fold$fold.log" 2>&1 &
  pids+=($!)
done
status=0 failed=" "
folds=($FOLDS)
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { status=1; failed+="${folds[$i]} "; }; done
for fold in $FOLDS; do
  # the last stage's best checkpoint (one ≈10 MB checkpoint per file: the tool returns ≤ 16 MiB
  # a file) and every stage's log
  members=()
  for item in "runs/fold$fold" "runs/fold$fold-finetune"; do
    [ ! -f "$WORK/$item/log.json" ] || members+=("$item/log.json")
    [ ! -d "$WORK/$item/best" ] || best=$item/best
  done
  [ -z "${best:-}" ] || members+=("$best")
  best=
  tar -cf "$OUT/fold$fold.tar" -C "$WORK" "${members[@]}" "fold$fold.log"
  if [[ $failed == *" $fold "* ]]; then
    echo "fold $fold FAILED: $(tail -n 1 "$WORK/fold$fold.log")"
  else
    echo "fold $fold: $(grep -h EPOCH "$WORK/fold$fold.log" | tail -n 1)"
  fi
done
exit $status
