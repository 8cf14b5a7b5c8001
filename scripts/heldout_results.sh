#!/usr/bin/env bash
# The held-out evaluation behind docs/results.md: every table there is written by this script
# (amp-eval's metrics.json → `amp-eval compare`), none is typed by hand.
#
#   DAVIS=../shared/data/davis2016-train scripts/heldout_results.sh
#
# Sequences: the six DAVIS-2016 train sequences held out from training (VAL_SEQUENCES in
# amp_ros/training/train.py). Models: the shipped ones (amp_ros/models/<name>).
set -euo pipefail
cd "$(dirname "$0")/.."
DAVIS=${DAVIS:-../shared/data/davis2016-train}
OUT=${OUT:-out/results}
SEQUENCES=${SEQUENCES:-bus,car-turn,dance-jump,hike,mallard-fly,stroller}
MODELS=${MODELS:-$(.venv/bin/python -c "from amp_ros.models import shipped_models; print(' '.join(shipped_models()))")}
EVAL=(.venv/bin/python -m amp_ros.evaluation.cli)

run() {  # run LABEL [amp-eval davis options...]
  local label=$1; shift
  if [ ! -f "$OUT/$label/metrics.json" ]; then  # resumable: finished runs are kept
    "${EVAL[@]}" davis --root "$DAVIS" --sequences "$SEQUENCES" --out "$OUT/$label" --quiet "$@"
  fi
}

main_runs=() ablation_runs=()
for model in $MODELS; do
  run "$model" --checkpoint "$model"
  main_runs+=("$model=$OUT/$model")
done
first=${MODELS%% *}
run "$first-no-adapt" --checkpoint "$first" --no-adapt
run "$first-no-crf" --checkpoint "$first" --no-crf
run "$first-trunk-level-only" --checkpoint "$first" --levels 2
run "$first-via-ros" --checkpoint "$first" --via ros
ablation_runs=("$first=$OUT/$first" "α=0 (no self-adaptation)=$OUT/$first-no-adapt"
               "no CRF=$OUT/$first-no-crf" "one head level (trunk)=$OUT/$first-trunk-level-only"
               "through the ROS node=$OUT/$first-via-ros")
mkdir -p docs/results
"${EVAL[@]}" compare "${main_runs[@]}" --out docs/results/models.md
"${EVAL[@]}" compare "${ablation_runs[@]}" --out docs/results/ablation.md
echo "wrote docs/results/models.md and docs/results/ablation.md"
