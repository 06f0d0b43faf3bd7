#!/usr/bin/env bash
# Train the three comparators of the study (StarGAN, CycleGAN, pix2pixHD) at the reduced CPU
# widths of the `small` preset, each for a fixed wall-time budget (default 540 s), on the train
# split of a cohort; the three run side by side, one torch thread each, at low priority.
# A run that already has checkpoints/last.pt is kept (delete it to retrain).
#
#   bash Utilities/train_comparators.sh runs/cohort_4242 runs [BUDGET_S]
set -euo pipefail
COHORT=${1:?cohort folder}
RUNS=${2:?folder for the runs}
BUDGET=${3:-540}
MICROCTLIKE=${MICROCTLIKE:-microctlike}
pids=()
for model in stargan cyclegan pix2pixhd; do
  out="$RUNS/${model}_small"
  if [ -f "$out/checkpoints/last.pt" ]; then
    echo "$model: $out/checkpoints/last.pt exists, kept"
    continue
  fi
  # SIGINT at the budget: the trainer writes a checkpoint of the finished steps and stops
  ( nice -n 15 timeout -s INT "$BUDGET" "$MICROCTLIKE" train --model "$model" --preset small --data "$COHORT" \
      --out "$out" --steps 1000000 --seed 0 --set cpu_threads=1 --set checkpoint_every=100 \
      --set sample_every=100000 --quiet > "$RUNS/${model}_small.log" 2>&1 || true
    echo "$model: $(tail -n 1 "$RUNS/${model}_small.log")" ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
