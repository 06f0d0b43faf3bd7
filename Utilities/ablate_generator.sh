#!/usr/bin/env bash
# Ablation of the bundled generator's options at one training budget (STEPS, default 1000),
# every variant evaluated on the same 16 held-out specimens with the same measurement recipe.
# Variants (all CPU widths of configs/bundled_funit_cpu.yaml, same seed and data):
#   reference   the reference FUNIT losses and normalisation (all our options off)
#   forward     + forward-model NCC term (the previous bundled recipe)
#   skip        + level skip (the MDCT reaches the last layer)
#   no_norm     forward + no normalisation in the generator instead of the skip
#   bundled     + paired L1 = configs/bundled_funit_cpu.yaml (its run's checkpoint at STEPS is used)
#   spectrum          bundled + radial log power spectrum term (spectrum_w 1)
#   spectrum_lowpass  spectrum + paired L1 on the MDCT's band (paired_sigma_px 2.5)
#   context           bundled + 2.5-D input, 2 slices each side 0.3 mm apart = configs/bundled_funit_cpu_context.yaml
#   zadv              bundled + z-adversarial term on 3-slice stacks 0.2 mm apart = configs/bundled_funit_cpu_zadv.yaml
#   fine              bundled on the micro-CT's 0.052 mm grid instead of 0.104 mm = configs/bundled_funit_cpu_fine.yaml
# and, without training, the shipped generator with the three orthogonal views averaged at
# generation (views_all: evaluate --views all; run when VIEWS=1, 14 min on 2 cores).
# Needs the cohorts of Utilities/train_bundled_model.sh. Results: $RUNS/ablation/<variant>.json
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-1000}
RUNS=${RUNS:-runs}
THREADS=${THREADS:-1}
. .venv/bin/activate
mkdir -p "$RUNS/ablation"
off="--set model_overrides.paired_w=0 --set model_overrides.gen_level_skip=false"
declare -A OPTIONS=(
  [reference]="$off --set model_overrides.forward_w=0"
  [forward]="$off"
  [skip]="--set model_overrides.paired_w=0"
  [no_norm]="$off --set model_overrides.gen_norm=none"
  [spectrum]="--set model_overrides.spectrum_w=1.0"
  [spectrum_lowpass]="--set model_overrides.spectrum_w=1.0 --set model_overrides.paired_sigma_px=2.5"
  [context]="--set model_overrides.context_slices=2 --set model_overrides.context_step_mm=0.3"
  [zadv]="--set model_overrides.z_adv_w=1.0 --set model_overrides.z_adv_step_mm=0.2"
  [fine]="--set target_spacing_mm=0.052 --set model_overrides.forward_sigma_px=4.9"
)
for variant in ${VARIANTS:-reference forward skip no_norm spectrum spectrum_lowpass context zadv fine}; do
  run="$RUNS/ablation/$variant"
  if [ ! -f "$run/checkpoints/step_$(printf %07d "$STEPS").pt" ]; then
    # shellcheck disable=SC2086
    microctlike train --config configs/bundled_funit_cpu.yaml --data "$RUNS/cohort_train_2027" --out "$run" \
      --steps "$STEPS" --quiet --force --set cpu_threads="$THREADS" ${OPTIONS[$variant]} || { echo "$variant: training failed" > "$run.failed"; continue; }
  fi
  microctlike evaluate --model "$run/checkpoints/last.pt" --data "$RUNS/heldout_31337" --split all --device cpu \
    --recipe gold --reference-cache "$RUNS/heldout_31337/reference_cache" --out "$RUNS/ablation/$variant.json" > "$run.txt"
done
step_ckpt="$RUNS/bundled_funit/checkpoints/step_$(printf %07d "$STEPS").pt"
if [ -f "$step_ckpt" ]; then
  microctlike evaluate --model "$step_ckpt" --data "$RUNS/heldout_31337" --split all --device cpu \
    --recipe gold --reference-cache "$RUNS/heldout_31337/reference_cache" --out "$RUNS/ablation/bundled.json" > "$RUNS/ablation/bundled.txt"
fi
if [ "${VIEWS:-0}" = 1 ]; then
  microctlike evaluate --model MicroCTLike/Resources/Models/microctlike_generator.pt --data "$RUNS/heldout_31337" \
    --split all --device cpu --recipe gold --reference-cache "$RUNS/heldout_31337/reference_cache" --views all \
    --out "$RUNS/ablation/views_all.json" > "$RUNS/ablation/views_all.txt"
fi
