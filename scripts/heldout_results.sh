#!/usr/bin/env bash
# The held-out evaluation behind docs/results.md: every table there is written by this script
# (amp-eval's metrics.json → `amp-eval compare`), none is typed by hand.
#
#   DAVIS=../shared/data/davis2016-train FOLD1=runs/u2p-fold1/best JOBS=2 OMP_NUM_THREADS=1 \
#       scripts/heldout_results.sh
#
# Sequences: the six DAVIS-2016 train sequences held out from training (VAL_SEQUENCES in
# amp_ros/training/folds.py). Models: the shipped ones (amp_ros/models/<name>), recorded by name
# in each metrics.json (no machine paths: test_no_machine_paths scans docs/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DAVIS=${DAVIS:-../shared/data/davis2016-train}
OUT=${OUT:-out/results}
# Every evaluation's metrics.json is also kept in STORE as LABEL.json (committed: docs/metrics,
# with the SHA-256 of the checkpoint's weights), and a stored run is taken from there instead of
# evaluated again unless its checkpoint is here with other weights (scripts/metrics_store.py), so
# the tables can be rendered, and a new fold pooled with the others, on any clone.
STORE=${STORE:-docs/metrics}
fold_sequences() {  # fold_sequences NAME: a cross-validation fold's six (amp_ros/training/folds.py)
  .venv/bin/python -c "import sys; from amp_ros.training.folds import FOLDS
if sys.argv[1] not in FOLDS: sys.exit(1)
print(','.join(FOLDS[sys.argv[1]]))" "$1"
}
SEQUENCES=${SEQUENCES:-$(fold_sequences A)}
MODELS=${MODELS:-$(.venv/bin/python -c "from amp_ros.models import shipped_models; print(' '.join(shipped_models()))")}
EVAL=(.venv/bin/python -m amp_ros.ros.eval_cli)  # amp-eval, with --via ros
JOBS=${JOBS:-1}  # evaluations run side by side (each one thread with OMP_NUM_THREADS=1)
# Fold 1 of the cross-validation: the default recipe trained with these six held out instead
# (FOLD1 = that run's checkpoint folder; its rows are skipped when FOLD1 is empty).
FOLD1=${FOLD1:-}
FOLD1_SEQUENCES=${FOLD1_SEQUENCES:-$(fold_sequences 1)}
# More folds of the same recipe, "NAME|CHECKPOINT[|SEQUENCES]" entries separated by ";" (table
# "cross_validation": every fold on its own six, and all their sequences pooled); SEQUENCES,
# comma-separated, defaults to fold NAME's in amp_ros/training/folds.py.
FOLDS=${FOLDS:-}
# TABLES: compute only these tables (names of the template's {{placeholders}}, separated by
# spaces); every other one keeps the committed docs/results.md's (kept_or below). A recipes or
# trunk table is computed with its other fold's. Empty: all of them.
TABLES=${TABLES:-}
export DAVIS OUT STORE
mkdir -p "$OUT"

want() { [ -z "$TABLES" ] || [[ " $TABLES " == *" $1 "* ]]; }  # want TABLE: compute it?
for table in $TABLES; do
  grep -qF "{{$table}}" docs/results.template.md || { echo "TABLES: no {{$table}} in docs/results.template.md" >&2; exit 2; }
  case $table in  # a table named in TABLES needs its checkpoints
    folds|settings_fold_1|input_settings_fold_1) needs=FOLD1 ;;
    cross_validation|settings_cross_validation) needs=FOLDS ;; episodic) needs=EPISODIC ;; imprint_check) needs=IMPRINT ;;
    recipes_*) needs=RECIPES ;; trunk_*) needs=TRUNK ;; *) needs= ;;
  esac
  [ -z "$needs" ] || [ -n "${!needs:-}" ] || { echo "TABLES: $table needs $needs" >&2; exit 2; }
done
queue=() queued=" "
checkpoint_of() {  # checkpoint_of [amp-eval davis options...]: the --checkpoint value
  local previous=
  for arg in "$@"; do [ "$previous" != --checkpoint ] || echo "$arg"; previous=$arg; done
}
run() {  # run LABEL SEQUENCES [amp-eval davis options...]: queued unless finished, stored or queued
  [ -f "$OUT/$1/metrics.json" ] || [ ! -f "$STORE/$1.json" ] ||
    .venv/bin/python scripts/metrics_store.py restore "$STORE" "$OUT" "$1" "$(checkpoint_of "$@")" ||
    true
  if [ ! -f "$OUT/$1/metrics.json" ] && [[ $queued != *" $1 "* ]]; then
    queue+=("$*") queued+="$1 "
  fi
}

main_runs=()
for model in $MODELS; do
  ! want models || run "$model" "$SEQUENCES" --checkpoint "$model"
  main_runs+=("$model=$OUT/$model")
done
first=${ABLATE:-$(.venv/bin/python -c "from amp_ros.models import default_model_name; print(default_model_name())")}
# The default model on fold A: a row of the ablation, folds and both cross-validation tables.
! want ablation && ! want folds && ! want cross_validation && ! want settings_cross_validation ||
  run "$first" "$SEQUENCES" --checkpoint "$first"
# The ablation's runs, "SUFFIX|amp-eval options|row label" (run label: the model's, then -SUFFIX).
ABLATION=("no-adapt|--no-adapt|α=0 (no self-adaptation)" "no-crf|--no-crf|no CRF"
          "trunk-level-only|--levels 2|one head level (trunk)" "no-motion|--no-motion|no motion (zero flow)"
          "via-ros|--via ros|through the ROS node")
ablation_runs=("$first=$OUT/$first")
for entry in "${ABLATION[@]}"; do
  IFS='|' read -r suffix options label <<< "$entry"
  # shellcheck disable=SC2086  # the options are words
  ! want ablation || run "$first-$suffix" "$SEQUENCES" --checkpoint "$first" $options
  ablation_runs+=("$label=$OUT/$first-$suffix")
done
# Run-time settings, cross-validated on both folds (the same rows for each fold). The fold-1
# model runs at the default model's processing size, like the default model.
side=$(.venv/bin/python -c "from amp_ros.checkpoint import load_checkpoint; from amp_ros.models import resolve_checkpoint; print(load_checkpoint(resolve_checkpoint('$first')).input.max_side)")
# "LABEL|amp-eval options" entries: the previous frame's mask carried along the flow (0.2 by
# default, chosen on fold A and confirmed on fold 1; off, lighter, heavier), faster self-adaptation (α,
# 0.001 by default) and the CRF's iterations (its cost grows with them; 5 by default, the AMP
# authors' 12 and fewer). Its kernels and the processing size were chosen on both folds with the
# previous default model (docs/results.md says where).
SETTINGS=("no-propagation|--set propagation=0" "propagation-0.15|--set propagation=0.15"
          "propagation-0.3|--set propagation=0.3"
          "propagation-0.5|--set propagation=0.5"
          "alpha-0.003|--set alpha=0.003" "alpha-0.01|--set alpha=0.01"
          "crf-12-iterations|--set crf_iterations=12" "crf-3-iterations|--set crf_iterations=3"
          "network-all-in-torch|--set onnx=false")
# A second table of the same kind: the DIS flow's preset (medium by default, what the models were
# trained with) and the thresholds of the self-adaptation's pseudo-labels (object pixels above
# 0.8, background beyond 0.1 of the diagonal from them, by default).
INPUT_SETTINGS=("dis-fast|--set dis_preset=fast" "dis-ultrafast|--set dis_preset=ultrafast"
                "foreground-threshold-0.7|--set foreground_threshold=0.7"
                "foreground-threshold-0.9|--set foreground_threshold=0.9"
                "background-distance-0.05|--set background_distance=0.05"
                "background-distance-0.2|--set background_distance=0.2")
options_of() {  # options_of SUFFIX: the amp-eval options of the ablation's or a settings table's run
  local entry name options
  for entry in "${ABLATION[@]}" "${SETTINGS[@]}" "${INPUT_SETTINGS[@]}"; do
    IFS='|' read -r name options _ <<< "$entry"
    [ "$name" != "$1" ] || { echo "$options"; return 0; }
  done
  echo "heldout_results.sh: no run options named $1" >&2
  return 2
}
settings_rows() {  # settings_rows PREFIX ENTRIES (SETTINGS or INPUT_SETTINGS) → compare specs
  local -n entries=$2
  echo "default ($side px, propagation 0.2, α 0.001, CRF as shipped)=$OUT/$1"
  [ "$2" != SETTINGS ] || echo "α=0=$OUT/$1-no-adapt"
  for entry in "${entries[@]}"; do echo "${entry%%|*}=$OUT/$1-${entry%%|*}"; done
}
queue_settings() {  # queue_settings PREFIX SEQUENCES [options for every row...]
  local prefix=$1 sequences=$2; shift 2
  run "$prefix" "$sequences" "$@"
  # shellcheck disable=SC2046  # the options are words
  run "$prefix-no-adapt" "$sequences" "$@" $(options_of no-adapt)
  for entry in "${SETTINGS[@]}" "${INPUT_SETTINGS[@]}"; do
    # shellcheck disable=SC2086  # the options are words
    run "$prefix-${entry%%|*}" "$sequences" "$@" ${entry#*|}
  done
}
! want settings_fold_a && ! want input_settings_fold_a || queue_settings "$first" "$SEQUENCES" --checkpoint "$first"
if [ -n "$FOLD1" ]; then
  ! want settings_fold_1 && ! want input_settings_fold_1 ||
    queue_settings fold1 "$FOLD1_SEQUENCES" --checkpoint "$FOLD1" --max-side "$side"
  ! want folds && ! want cross_validation && ! want settings_cross_validation ||
    run fold1 "$FOLD1_SEQUENCES" --checkpoint "$FOLD1" --max-side "$side"
  ! want folds || run fold1-teach-1shot "$FOLD1_SEQUENCES" --checkpoint "$FOLD1" --max-side "$side" --teach-first-frame
fi
# The cross-validation over every fold given: fold A (the default model), fold 1 and FOLDS;
# cv_prefixes holds each fold's run label, in that order (its settings rows add a suffix).
fold_runs=() cv_prefixes=()
declare -A fold_sequences=([$first]=$SEQUENCES [fold1]=$FOLD1_SEQUENCES) \
    fold_options=([$first]="--checkpoint $first" [fold1]="--checkpoint $FOLD1 --max-side $side")
if [ -n "$FOLDS" ] && { want cross_validation || want settings_cross_validation; }; then
  fold_runs+=("fold A ($first)=$OUT/$first") cv_prefixes+=("$first")
  [ -z "$FOLD1" ] || fold_runs+=("fold 1=$OUT/fold1") cv_prefixes+=(fold1)
  names=" A 1 "
  IFS=';' read -ra fold_entries <<< "$FOLDS"
  for entry in "${fold_entries[@]}"; do
    [ -n "$entry" ] || continue
    IFS='|' read -r name checkpoint sequences <<< "$entry"
    [ -n "$sequences" ] || sequences=$(fold_sequences "$name") || true  # empty for an unknown fold
    if ! [[ $name =~ ^[A-Za-z0-9-]+$ ]] || [[ $names == *" $name "* ]] || [ -z "$checkpoint" ] ||
       [ -z "$sequences" ]; then
      echo "FOLDS: expected NAME|CHECKPOINT[|SEQUENCES] with a new NAME (not A, 1 or a repeat; without SEQUENCES, a fold of amp_ros/training/folds.py), got '$entry'" >&2
      exit 2
    fi
    names+="$name "
    run "fold$name" "$sequences" --checkpoint "$checkpoint" --max-side "$side"
    fold_runs+=("fold $name=$OUT/fold$name") cv_prefixes+=("fold$name")
    fold_sequences[fold$name]=$sequences fold_options[fold$name]="--checkpoint $checkpoint --max-side $side"
  done
fi
# The run-time settings that matter most, each over every fold (table settings_cross_validation:
# one pooled row per setting): "LABEL|SUFFIX" entries, SUFFIX an ABLATION or SETTINGS run's (its
# options and its fold-A and fold-1 runs are those).
CV_SETTINGS=("α=0 (no self-adaptation)|no-adapt" "no propagation|no-propagation"
             "propagation 0.3|propagation-0.3" "no CRF|no-crf")
cv_rows=()
if [ ${#cv_prefixes[@]} -gt 0 ] && want settings_cross_validation; then
  cv_dirs=("${cv_prefixes[@]/#/$OUT/}")
  folders=$(printf '%s,' "${cv_dirs[@]}")
  cv_rows+=("default (propagation 0.2, α 0.001, CRF)=${folders%,}")
  for entry in "${CV_SETTINGS[@]}"; do
    IFS='|' read -r label suffix <<< "$entry"
    options=$(options_of "$suffix")
    for prefix in "${cv_prefixes[@]}"; do
      # shellcheck disable=SC2086  # the options are words
      run "$prefix-$suffix" "${fold_sequences[$prefix]}" ${fold_options[$prefix]} $options
    done
    folders=$(printf '%s,' "${cv_dirs[@]/%/-$suffix}")
    cv_rows+=("$label=${folders%,}")
  done
fi
# Teaching: the semi-supervised protocol (a class taught from the first frames' ground truth).
if want teach || want folds; then
  run "$first-teach-1shot" "$SEQUENCES" --checkpoint "$first" --teach-first-frame
fi
! want teach || run "$first-teach-1shot-taught-alpha-0" "$SEQUENCES" --checkpoint "$first" \
    --teach-first-frame --set taught_alpha=0
teach_runs=("$first, 1 shot=$OUT/$first-teach-1shot"
            "$first, 1 shot, taught_alpha 0=$OUT/$first-teach-1shot-taught-alpha-0")
if want teach || want episodic; then
  run efficientnet-lite0-teach-1shot "$SEQUENCES" --checkpoint efficientnet-lite0 --teach-first-frame
fi
teach_runs+=("efficientnet-lite0, 1 shot=$OUT/efficientnet-lite0-teach-1shot")
# The episodic fine-tune of the efficientnet-lite0 model (amp-train --init … --episodes 4), if given.
episodic_runs=()
if [ -n "${EPISODIC:-}" ] && want episodic; then
  run efficientnet-lite0 "$SEQUENCES" --checkpoint efficientnet-lite0
  run episodic "$SEQUENCES" --checkpoint "$EPISODIC"
  run episodic-teach-1shot "$SEQUENCES" --checkpoint "$EPISODIC" --teach-first-frame
  episodic_runs=("efficientnet-lite0, unsupervised=$OUT/efficientnet-lite0"
                 "efficientnet-lite0, 1 shot=$OUT/efficientnet-lite0-teach-1shot"
                 "episodic fine-tune, unsupervised=$OUT/episodic"
                 "episodic fine-tune, 1 shot=$OUT/episodic-teach-1shot")
fi
# Training recipes compared on both folds: RECIPES (table "recipes") and TRUNK (table "trunk":
# the salient-object encoder frozen or trained) each hold
# "LABEL|FOLD_A_CHECKPOINT|FOLD_1_CHECKPOINT[|amp-eval options]" entries separated by ";" (each
# checkpoint scored on its own fold's six, at its own size unless the options say otherwise).
declare -A recipe_rows=()
queue_recipes() {  # queue_recipes TABLE ENTRIES
  local table=$1 entry label ck_a ck_1 extra slug entries
  IFS=';' read -ra entries <<< "$2"
  for entry in "${entries[@]}"; do
    [ -n "$entry" ] || continue
    IFS='|' read -r label ck_a ck_1 extra <<< "$entry"
    want "${table}_fold_a" || want "${table}_fold_1" || continue
    slug=recipe-$(echo "$label" | tr -c 'a-zA-Z0-9\n' '-' | tr -s '-' | sed 's/^-//; s/-$//')
    # shellcheck disable=SC2086  # the options are words
    run "$slug-A" "$SEQUENCES" --checkpoint "$ck_a" ${extra:-}
    # shellcheck disable=SC2086
    run "$slug-1" "$FOLD1_SEQUENCES" --checkpoint "$ck_1" ${extra:-}
    recipe_rows[${table}_fold_a]+="$label=$OUT/$slug-A"$'\n'
    recipe_rows[${table}_fold_1]+="$label=$OUT/$slug-1"$'\n'
  done
}
queue_recipes recipes "${RECIPES:-}"
queue_recipes trunk "${TRUNK:-}"
# Every queued evaluation, JOBS at a time (one line each: LABEL SEQUENCES OPTIONS...);
# DRY=1 lists them and stops.
if [ -n "${DRY:-}" ]; then printf '%s\n' "${queue[@]}"; exit 0; fi
if [ ${#queue[@]} -gt 0 ]; then
  printf '%s\n' "${queue[@]}" | xargs -P "$JOBS" -L 1 bash -c \
    'label=$1 sequences=$2; shift 2; '"${EVAL[*]}"' davis --root "$DAVIS" --sequences "$sequences" --out "$OUT/$label" --quiet "$@" > "$OUT/$label.log" 2>&1 || { echo "FAILED: $label (see $OUT/$label.log)"; exit 255; }' _ ||
    failed=1
  for entry in "${queue[@]}"; do  # what finished goes into the store, also when another failed
    read -ra words <<< "$entry"
    [ ! -f "$OUT/${words[0]}/metrics.json" ] ||
      .venv/bin/python scripts/metrics_store.py save "$STORE" "$OUT" "${words[0]}" "$(checkpoint_of "${words[@]}")"
  done
  [ -z "${failed:-}" ] || exit 1
fi
mkdir -p "$OUT/tables"
! want models || "${EVAL[@]}" compare "${main_runs[@]}" --out "$OUT/tables/models.md"
! want ablation || "${EVAL[@]}" compare "${ablation_runs[@]}" --out "$OUT/tables/ablation.md"
! want teach || "${EVAL[@]}" compare "${teach_runs[@]}" --out "$OUT/tables/teach.md"
for entries in SETTINGS INPUT_SETTINGS; do
  table=${entries,,}  # settings, input_settings
  mapfile -t rows < <(settings_rows "$first" $entries)
  ! want "${table}_fold_a" || "${EVAL[@]}" compare "${rows[@]}" --out "$OUT/tables/${table}_fold_a.md"
  if [ -n "$FOLD1" ] && want "${table}_fold_1"; then
    mapfile -t rows < <(settings_rows fold1 $entries)
    "${EVAL[@]}" compare "${rows[@]}" --out "$OUT/tables/${table}_fold_1.md"
  fi
done
if [ -n "$FOLD1" ] && want folds; then
  "${EVAL[@]}" compare "fold A ($first)=$OUT/$first" "fold 1=$OUT/fold1" \
      "fold A, 1 shot=$OUT/$first-teach-1shot" "fold 1, 1 shot=$OUT/fold1-teach-1shot" \
      --out "$OUT/tables/folds.md"
fi
if [ ${#fold_runs[@]} -gt 0 ] && want cross_validation; then
  "${EVAL[@]}" compare "${fold_runs[@]}" --pooled "all ${#fold_runs[@]} folds" \
      --out "$OUT/tables/cross_validation.md"
fi
# Sections whose checkpoints are not given keep the tables of an earlier run (kept_or TABLE
# MESSAGE): OUT's where it has them (not for a table TABLES leaves out), like the cached
# evaluations above, else the committed
# docs/results.md's, cut out between the lines that surround {{TABLE}} in the template; MESSAGE
# where neither has one.
kept_or() {
  ! want "$1" || [ ! -f "$OUT/tables/$1.md" ] || return 0
  .venv/bin/python - "$1" "$2" "$OUT/tables/$1.md" <<'PY'
import sys
from pathlib import Path
name, message, out = sys.argv[1:]
before, _, after = Path("docs/results.template.md").read_text().partition("{{%s}}" % name)
doc = Path("docs/results.md").read_text() if Path("docs/results.md").is_file() else ""
head = before.rstrip().splitlines()[-1] if before.strip() else ""
tail = after.lstrip().splitlines()[0] if after.strip() else ""
start = -1
if head and "{{" not in head:  # the head line's k-th occurrence, as in the template
    for _ in range(("\n" + before).count("\n" + head + "\n")):
        start = doc.find("\n" + head + "\n", start + 1)
end = doc.find("\n" + tail + "\n", start + 1) if start >= 0 and tail and "{{" not in tail else -1
table = doc[start + len(head) + 2:end].strip() if end >= 0 else ""
Path(out).write_text((table or message) + "\n")
print(f"{name}: {'kept from docs/results.md' if table else message}")
PY
}
if [ -z "$FOLD1" ]; then
  kept_or settings_fold_1 "(not run: set FOLD1 to the fold-1 checkpoint folder)"
  kept_or input_settings_fold_1 "(not run: set FOLD1 to the fold-1 checkpoint folder)"
  kept_or folds "(not run: set FOLD1 to the fold-1 checkpoint folder)"
fi
for table in recipes_fold_a recipes_fold_1 trunk_fold_a trunk_fold_1; do
  if [ -n "${recipe_rows[$table]:-}" ]; then
    mapfile -t rows <<< "${recipe_rows[$table]%$'\n'}"
    "${EVAL[@]}" compare "${rows[@]}" --out "$OUT/tables/$table.md"
  else
    prefix=${table%_fold_*}
    kept_or "$table" "(not run: set ${prefix^^})"
  fi
done
if [ ${#episodic_runs[@]} -gt 0 ]; then
  "${EVAL[@]}" compare "${episodic_runs[@]}" --out "$OUT/tables/episodic.md"
else
  kept_or episodic "(not run: set EPISODIC to the fine-tuned checkpoint folder)"
fi

imprint=; ! want imprint_check || imprint=${IMPRINT:-}
[ -n "$imprint" ] || kept_or imprint_check "(not run)"
if [ ${#cv_rows[@]} -gt 0 ]; then
  "${EVAL[@]}" compare "${cv_rows[@]}" --out "$OUT/tables/settings_cross_validation.md"
fi
kept_or cross_validation "(not run: set FOLDS to more folds' checkpoints)"
kept_or settings_cross_validation "(not run: set FOLDS to more folds' checkpoints)"
# Tables left out by TABLES keep the committed ones too.
for table in $(grep -o '{{[a-z_0-9]*}}' docs/results.template.md | tr -d '{}'); do
  want "$table" || kept_or "$table" "(not run)"
done

# docs/results.md = docs/results.template.md with each {{name}} replaced by OUT/tables/name.md
# (and {{imprint_check}} by the imprint-check JSON files named in IMPRINT, if any).
.venv/bin/python - "$OUT/tables" $imprint <<'PY'
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
        kept = tables / "imprint_check.md"  # without IMPRINT, kept_or has written it
        if rows:
            kept.write_text(head + "\n".join(rows) + f"\n\nSources: {', '.join(f'`{p}`' for p in imprint)}\n")
        return kept.read_text().strip()
    return (tables / f"{name}.md").read_text().strip()
atomic_write("docs/results.md", re.sub(r"\{\{(\w+)\}\}", table, text))
print("wrote docs/results.md")
PY
