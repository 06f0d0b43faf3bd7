#!/usr/bin/env bash
# Reproduce the bundled generator (MicroCTLike/Resources/Models/microctlike_generator.pt):
# simulate the training cohort, train the CPU-width FUNIT, evaluate it on held-out specimens.
#   bash Utilities/train_bundled_model.sh      (4400 steps: about 35 min on 2 idle CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-4400}
RUNS=${RUNS:-runs}
. .venv/bin/activate
# 12 specimens, seed 2026: 8 train / 4 test by specimen (cohort.json)
[ -f "$RUNS/cohort_2026/cohort.json" ] || microctlike simulate --cases 12 --seed 2026 --preset small --out "$RUNS/cohort_2026" --quiet
if [ -f "$RUNS/bundled_funit/checkpoints/last.pt" ]; then
  microctlike train --out "$RUNS/bundled_funit" --steps "$STEPS" --resume --quiet
else
  microctlike train --config configs/bundled_funit_cpu.yaml --data "$RUNS/cohort_2026" --out "$RUNS/bundled_funit" --steps "$STEPS" --quiet
fi
# held-out: the cohort's 4 test specimens (never trained on)
microctlike evaluate --model "$RUNS/bundled_funit/checkpoints/last.pt" --data "$RUNS/cohort_2026" --split test \
  --device cpu --out "$RUNS/bundled_funit/evaluation_test.json"
mkdir -p MicroCTLike/Resources/Models
# ship the inference part only (metadata + EMA generator with its class code): a few MB
python -c "from MicroCTLikeLib.train.checkpoint import export_inference_checkpoint as e; \
e('$RUNS/bundled_funit/checkpoints/last.pt', 'MicroCTLike/Resources/Models/microctlike_generator.pt')"
python Utilities/write_model_card.py MicroCTLike/Resources/Models/microctlike_generator.pt \
  "$RUNS/bundled_funit/evaluation_test.json" MicroCTLike/Resources/Models/MODEL_CARD.md
