#!/usr/bin/env bash
# Train the three comparators of the study (StarGAN, CycleGAN, pix2pixHD) at the reduced CPU
# widths of the `small` preset, each for a fixed number of steps (default 3000), on the train
# split of a cohort, one after the other on one torch thread each (the other core stays free).
# Measured 2026-12-04 on 2 cores beside another training run, 3000 steps: StarGAN 835 s,
# CycleGAN 1235 s, pix2pixHD 205 s (about 38 minutes for the three).
# A run that already has checkpoints/last.pt is resumed to STEPS (a finished one is kept).
#
#   bash Utilities/train_comparators.sh runs/cohort_4242 runs [STEPS]
set -euo pipefail
COHORT=${1:?cohort folder}
RUNS=${2:?folder for the runs}
STEPS=${3:-3000}
MICROCTLIKE=${MICROCTLIKE:-microctlike}
for model in stargan cyclegan pix2pixhd; do
  out="$RUNS/${model}_small"
  resume=()
  if [ -f "$out/checkpoints/last.pt" ]; then resume=(--resume); fi
  start=$(date +%s)
  nice -n 5 "$MICROCTLIKE" train --model "$model" --preset small --data "$COHORT" --out "$out" \
      --steps "$STEPS" --seed 0 --set cpu_threads=1 --set sample_every=1000 "${resume[@]}" --quiet \
      >> "$RUNS/${model}_small.log" 2>&1  # appended: a resume keeps the earlier log
  echo "$model: $STEPS steps in $(( $(date +%s) - start )) s: $out/checkpoints/last.pt"
done
