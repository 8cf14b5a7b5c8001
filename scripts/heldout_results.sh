#!/usr/bin/env bash
# The held-out evaluation behind docs/results.md: every table there is written by this script
# (amp-eval's metrics.json → `amp-eval compare`), none is typed by hand.
#
#   DAVIS=../shared/data/davis2016-train scripts/heldout_results.sh
#
# Sequences: the six DAVIS-2016 train sequences held out from training (VAL_SEQUENCES in
# amp_ros/training/train.py). Models: the shipped ones (amp_ros/models/<name>), recorded by name
# in each metrics.json (no machine paths: test_no_machine_paths scans docs/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DAVIS=${DAVIS:-../shared/data/davis2016-train}
OUT=${OUT:-out/results}
SEQUENCES=${SEQUENCES:-bus,car-turn,dance-jump,hike,mallard-fly,stroller}
MODELS=${MODELS:-$(.venv/bin/python -c "from amp_ros.models import shipped_models; print(' '.join(shipped_models()))")}
EVAL=(.venv/bin/python -m amp_ros.ros.eval_cli)  # amp-eval, with --via ros

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
first=${ABLATE:-$(.venv/bin/python -c "from amp_ros.models import default_model_name; print(default_model_name())")}
run "$first-no-adapt" --checkpoint "$first" --no-adapt
run "$first-no-crf" --checkpoint "$first" --no-crf
run "$first-trunk-level-only" --checkpoint "$first" --levels 2
run "$first-via-ros" --checkpoint "$first" --via ros
ablation_runs=("$first=$OUT/$first" "α=0 (no self-adaptation)=$OUT/$first-no-adapt"
               "no CRF=$OUT/$first-no-crf" "one head level (trunk)=$OUT/$first-trunk-level-only"
               "through the ROS node=$OUT/$first-via-ros")
# Teaching: the semi-supervised protocol (a class taught from the first frames' ground truth).
run "$first-teach-1shot" --checkpoint "$first" --teach-first-frame
run "$first-teach-1shot-no-adapt" --checkpoint "$first" --teach-first-frame --no-adapt
run "$first-teach-1shot-no-crf" --checkpoint "$first" --teach-first-frame --no-crf
run "$first-teach-5shot" --checkpoint "$first" --teach-first-frame --shots 5
run "$first-teach-1shot-via-ros" --checkpoint "$first" --teach-first-frame --via ros
run "$first-teach-1shot-one-background" --checkpoint "$first" --teach-first-frame \
    --set taught_background_grid=1
run "$first-teach-1shot-no-search-window" --checkpoint "$first" --teach-first-frame \
    --set taught_search_radius=0
teach_runs=("1 shot=$OUT/$first-teach-1shot"
            "1 shot, no adaptation of the taught class=$OUT/$first-teach-1shot-no-adapt"
            "1 shot, no CRF=$OUT/$first-teach-1shot-no-crf"
            "1 shot, one background proxy (grid 1)=$OUT/$first-teach-1shot-one-background"
            "1 shot, no search window=$OUT/$first-teach-1shot-no-search-window"
            "5 shots=$OUT/$first-teach-5shot"
            "1 shot through the ROS node (/amp/teach)=$OUT/$first-teach-1shot-via-ros")
# The taught classes' self-adaptation rate, cross-validated on these sequences.
run "$first-teach-1shot-alpha-0.001" --checkpoint "$first" --teach-first-frame --set taught_alpha=0.001
run "$first-teach-1shot-alpha-0.01" --checkpoint "$first" --teach-first-frame --set taught_alpha=0.01
alpha_runs=("taught_alpha 0=$OUT/$first-teach-1shot-no-adapt"
            "taught_alpha 0.001=$OUT/$first-teach-1shot-alpha-0.001"
            "taught_alpha 0.003 (default)=$OUT/$first-teach-1shot"
            "taught_alpha 0.01=$OUT/$first-teach-1shot-alpha-0.01")
# The episodic fine-tune of the default model (amp-train --init … --episodes 4), if given.
episodic_runs=()
if [ -n "${EPISODIC:-}" ]; then
  run episodic --checkpoint "$EPISODIC"
  run episodic-teach-1shot --checkpoint "$EPISODIC" --teach-first-frame
  episodic_runs=("$first, unsupervised=$OUT/$first" "$first, 1 shot=$OUT/$first-teach-1shot"
                 "episodic fine-tune, unsupervised=$OUT/episodic"
                 "episodic fine-tune, 1 shot=$OUT/episodic-teach-1shot")
fi
mkdir -p "$OUT/tables"
"${EVAL[@]}" compare "${main_runs[@]}" --out "$OUT/tables/models.md"
"${EVAL[@]}" compare "${ablation_runs[@]}" --out "$OUT/tables/ablation.md"
"${EVAL[@]}" compare "${teach_runs[@]}" --out "$OUT/tables/teach.md"
"${EVAL[@]}" compare "${alpha_runs[@]}" --out "$OUT/tables/teach_alpha.md"
if [ ${#episodic_runs[@]} -gt 0 ]; then
  "${EVAL[@]}" compare "${episodic_runs[@]}" --out "$OUT/tables/episodic.md"
else
  echo "(not run: set EPISODIC to the fine-tuned checkpoint folder)" > "$OUT/tables/episodic.md"
fi
.venv/bin/python -m amp_ros.benchmark --checkpoint "$first" > "$OUT/tables/benchmark.md"

# docs/results.md = docs/results.template.md with each {{name}} replaced by OUT/tables/name.md
# (and {{imprint_check}} by the imprint-check JSON files named in IMPRINT, if any).
.venv/bin/python - "$OUT/tables" ${IMPRINT:-} <<'PY'
import json, re, sys
from pathlib import Path
from amp_ros.atomic_write import atomic_write
tables, imprint = Path(sys.argv[1]), sys.argv[2:]
text = Path("docs/results.template.md").read_text()
def table(match):
    name = match.group(1)
    if name == "imprint_check":
        rows = []
        for path in imprint:
            d = json.loads(Path(path).read_text())
            for level, c in d["cosine"].items():
                rows.append(f"| `{d['checkpoint']}` | {level} | {c['object_proxy_vs_object_head']:.3f} | "
                            f"{c['background_proxy_vs_background_head']:.3f} | "
                            f"{c['object_head_vs_background_head']:.3f} | {c['object_proxy_vs_background_proxy']:.3f} |")
            rows.append(f"| `{d['checkpoint']}` | val J: learned heads {d['val_j']['learned_heads']:.3f}, "
                        f"imprinted heads {d['val_j']['imprinted_heads']:.3f} | | | | |")
        head = ("| checkpoint | level | cos(object proxy, object head) | cos(bg proxy, bg head) | "
                "cos(object head, bg head) | cos(object proxy, bg proxy) |\n|---|---|---:|---:|---:|---:|\n")
        return head + "\n".join(rows) + f"\n\nSources: {', '.join(f'`{p}`' for p in imprint)}" if rows else "(not run)"
    return (tables / f"{name}.md").read_text().strip()
atomic_write("docs/results.md", re.sub(r"\{\{(\w+)\}\}", table, text))
print("wrote docs/results.md")
PY
