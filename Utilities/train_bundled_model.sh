#!/usr/bin/env bash
# Reproduce the bundled generator (MicroCTLike/Resources/Models/microctlike_generator.pt):
# simulate the training cohort and a separate held-out cohort, train the CPU-width FUNIT with
# our options (configs/bundled_funit_cpu.yaml), evaluate it on the held-out specimens only,
# export it and write its model card.
#   bash Utilities/train_bundled_model.sh      (STEPS=4000: the shipped run took 59 min on one CPU thread
#   while a second job shared the 2 cores; simulation ~25 min; held-out evaluation ~15 min)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-4000}
RUNS=${RUNS:-runs}
. .venv/bin/activate
# 24 training specimens (seed 2027) and 16 held-out specimens (seed 31337): two cohorts, so no
# held-out specimen can reach training whatever split a command uses
[ -f "$RUNS/cohort_train_2027/cohort.json" ] || microctlike simulate --cases 24 --seed 2027 --preset small --out "$RUNS/cohort_train_2027" --quiet --no-montage
[ -f "$RUNS/heldout_31337/cohort.json" ] || microctlike simulate --cases 16 --seed 31337 --preset small --out "$RUNS/heldout_31337" --quiet --no-montage
if [ -f "$RUNS/bundled_funit/checkpoints/last.pt" ]; then
  microctlike train --out "$RUNS/bundled_funit" --steps "$STEPS" --resume --quiet
else
  microctlike train --config configs/bundled_funit_cpu.yaml --data "$RUNS/cohort_train_2027" --out "$RUNS/bundled_funit" --steps "$STEPS" --quiet
fi
microctlike evaluate --model "$RUNS/bundled_funit/checkpoints/last.pt" --data "$RUNS/heldout_31337" --split all \
  --device cpu --recipe gold --reference-cache "$RUNS/heldout_31337/reference_cache" --out "$RUNS/bundled_funit/evaluation_heldout.json"
mkdir -p MicroCTLike/Resources/Models
# ship the inference part only (metadata + EMA generator with its class code): a few MB
python -c "from MicroCTLikeLib.train.checkpoint import export_inference_checkpoint as e; \
e('$RUNS/bundled_funit/checkpoints/last.pt', 'MicroCTLike/Resources/Models/microctlike_generator.pt')"
python Utilities/write_model_card.py MicroCTLike/Resources/Models/microctlike_generator.pt \
  "$RUNS/bundled_funit/evaluation_heldout.json" MicroCTLike/Resources/Models/MODEL_CARD.md --ablation "$RUNS/ablation"
