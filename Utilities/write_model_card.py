"""Write the bundled generator's model card from its checkpoint, its held-out evaluation and
(optionally) the ablation's evaluations.

``python Utilities/write_model_card.py CHECKPOINT EVALUATION_JSON OUT_MD [--ablation DIR] [--train-minutes M]``
(called by Utilities/train_bundled_model.sh). Every number in the card comes from those files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = (("bv_tv", "BV/TV"), ("tb_th_mm", "Tb.Th"), ("tb_sp_mm", "Tb.Sp"))
#: ablation variants in the order of the table, with what each adds
VARIANTS = (
    ("bundled_before", "previous bundled generator (forward NCC, 8 specimens, 4400 steps)"),
    ("reference", "reference FUNIT (all our options off)"),
    ("forward", "+ forward-model NCC term"),
    ("no_norm", "+ forward NCC, generator without normalisation"),
    ("skip", "+ forward NCC + level skip"),
    ("bundled", "+ forward NCC + level skip + paired L1 (the bundled recipe)"),
    ("bundled_3000", "the bundled recipe, same run, longer"),
    ("bundled_4000", "the bundled recipe, same run: the shipped generator"),
)
#: variants of Utilities/ablate_generator.sh whose rows are absent until they are run
NOT_RUN_NOTE = ("Variants without a row were not run in the session that trained this generator (CPU time): "
                "'+ forward NCC' alone and '+ forward NCC + level skip' without the paired term; "
                "`VARIANTS=\"forward skip\" bash Utilities/ablate_generator.sh` adds them.")


def _agreement_rows(summary, key, labels):
    rows = []
    for label in labels:
        table = summary.get(key, {}).get(label)
        if table is None:
            continue
        cells = [f"{table[m]['r2']:.2f} / {table[m]['icc_a1']:.2f} / {table[m]['bias_percent']:+.0f} %" for m, _ in METRICS]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def ablation_table(directory: Path) -> list:
    lines = ["| variant | steps | SSIM like / MDCT | like > MDCT | R^2 BV/TV, Tb.Th, Tb.Sp vs micro-CT | "
             "ICC(A,1) BV/TV, Tb.Th, Tb.Sp |", "|---|---|---|---|---|---|"]
    for name, title in VARIANTS:
        path = directory / f"{name}.json"
        failed = directory / f"{name}.failed"
        if failed.is_file():
            lines.append(f"| {title} | - | {failed.read_text().strip()} | | | |")
            continue
        if not path.is_file():
            continue
        evaluation = json.loads(path.read_text())
        s = evaluation["summary"]
        agree = s["agreement_vs_micro-CT"]["micro-CT-like"]
        lines.append(
            f"| {title} | {evaluation.get('model_step')} | {s['ssim_mean']['micro-CT-like']:.3f} / {s['ssim_mean']['MDCT']:.3f} | "
            f"{100 * s['ssim_like_above_mdct_fraction']:.0f} % | "
            + ", ".join(f"{agree[m]['r2']:.2f}" for m, _ in METRICS) + " | "
            + ", ".join(f"{agree[m]['icc_a1']:.2f}" for m, _ in METRICS) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("evaluation")
    parser.add_argument("out")
    parser.add_argument("--ablation", default=None, help="folder of the ablation's <variant>.json evaluations")
    parser.add_argument("--train-minutes", type=float, default=None)
    args = parser.parse_args()

    from MicroCTLikeLib.train.checkpoint import checkpoint_metadata, load_checkpoint

    meta = checkpoint_metadata(load_checkpoint(args.checkpoint))
    evaluation = json.loads(Path(args.evaluation).read_text())
    summary = evaluation["summary"]
    model = meta["model"]["config"]
    data = meta.get("training_data") or {}
    config = meta.get("config") or {}
    norm = meta["normalisation"]
    recipe = evaluation.get("measurement", {})
    lines = [
        "# Model card: MicroCTLike bundled generator",
        "",
        "**Trained on simulated data only. Not validated on patients. Not for clinical use.**",
        "",
        "## Architecture",
        "",
        f"- FUNIT (reimplemented from Liu et al., ICCV 2019), K = 1 (micro-CT is the only target class), EMA generator "
        f"(beta {model['ema_beta']}) with the averaged micro-CT class code stored in the checkpoint.",
        f"- **Reduced CPU widths** (not the paper's): generator nf {model['gen_nf']} (reference 64), MLP {model['gen_mlp_dim']} "
        f"(256), discriminator nf {model['dis_nf']} (64), max {model['dis_max_nf']} (1024).",
        f"- Parameters: generator {meta['parameters']['generator']:,}, discriminator {meta['parameters']['discriminator']:,}.",
        "- The reference FUNIT losses (hinge GAN, R1, L1 reconstruction, feature matching) plus three options of ours, "
        "each named in the checkpoint's config and off in the reference model `funit`:",
        f"  - `forward_w` {model.get('forward_w')}: forward-model consistency, 1 - NCC between the translation blurred by "
        f"the MDCT's PSF (Gaussian sigma {model.get('forward_sigma_px')} px = 0.6 mm FWHM) and the MDCT;",
        f"  - `gen_level_skip` {model.get('gen_level_skip')}: the MDCT itself reaches the generator's last layer, so its "
        "local density level survives the instance normalisations (which divide out the mean and contrast of a crop "
        "lying wholly inside cancellous bone: the reference generator's output is the same for a sparse and a dense crop);",
        f"  - `paired_w` {model.get('paired_w')}: L1 to the micro-CT of the same place, registered by the simulator's "
        "geometry (the class code of each translation comes from another sample's micro-CT).",
        f"- Input: MDCT in HU, window {norm['mdct_window_hu']} -> [-1, 1]; output: micro-CT grey values, window "
        f"[{norm['microct_window'][0]:.1f}, {norm['microct_window'][1]:.1f}]; in-plane pixel {norm['target_spacing_mm']} mm.",
        "",
        "## Training",
        "",
        f"- Data: simulated cohort `{Path(str(data.get('cohort', ''))).name}` (`microctlike simulate --cases 24 --seed 2027 "
        f"--preset small`), all {data.get('n_cases', '?')} specimens; {data.get('n_mdct_slices', '?')} MDCT slices with their "
        "registered micro-CT.",
        f"- {meta.get('step')} iterations, batch {config.get('batch_size')}, crops {config.get('crop_px')} px, RMSprop lr "
        f"{model['lr_gen']}, weight decay {model['weight_decay']}, seed {config.get('seed')}, on 1 CPU thread"
        + (f" in {args.train_minutes:.0f} min (a second job shared the 2 cores)." if args.train_minutes else "."),
        "- Reproduce: `bash Utilities/train_bundled_model.sh` (config `configs/bundled_funit_cpu.yaml`); ablation: "
        "`bash Utilities/ablate_generator.sh`.",
        "",
        "## Held-out evaluation",
        "",
        f"A separate cohort never trained on (`microctlike simulate --cases 16 --seed 31337 --preset small`): "
        f"{summary['n_specimens']} specimens, {summary['n_vois']} standard VOIs placed automatically on the MDCT. "
        f"Command: `microctlike evaluate --model MicroCTLike/Resources/Models/microctlike_generator.pt --data "
        f"runs/heldout_31337 --split all --recipe gold`.",
        "",
        f"Measurement recipe `{evaluation.get('recipe', '?')}` for every volume: threshold `{recipe.get('threshold')}`, "
        f"common grid {recipe.get('voxel_mm')} mm (MDCT and micro-CT-like resampled to the micro-CT's voxels), "
        "BoneJ-exact local thickness, Tb.Sp policy margin. SSIM: Wang settings, 8-bit through each modality's window, on "
        "the micro-CT-like grid inside each VOI's bounding box, averaged per specimen (the unit is the specimen, never "
        "the slice).",
        "",
        f"SSIM vs micro-CT: MDCT {summary['ssim_mean']['MDCT']:.3f}, micro-CT-like {summary['ssim_mean']['micro-CT-like']:.3f} "
        f"(ratio {summary['ssim_ratio_like_to_mdct']:.2f}); micro-CT-like above MDCT on "
        f"{100 * summary['ssim_like_above_mdct_fraction']:.0f} % of specimens.",
        "",
        "Agreement over the VOIs (R^2 / ICC(A,1) / mean bias):",
        "",
        "| volume vs micro-CT | BV/TV | Tb.Th | Tb.Sp |",
        "|---|---|---|---|",
        *_agreement_rows(summary, "agreement_vs_micro-CT", ("MDCT", "micro-CT-like")),
        "",
        "| volume vs binary truth | BV/TV | Tb.Th | Tb.Sp |",
        "|---|---|---|---|",
        *_agreement_rows(summary, "agreement_vs_truth", ("MDCT", "micro-CT-like", "micro-CT")),
        "",
        "Mean metrics over the VOIs:",
        "",
        "| volume | BV/TV | Tb.Th (mm) | Tb.Sp (mm) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | " + " | ".join(f"{values[m]:.3f}" for m, _ in METRICS) + " |"
              for label, values in summary["metric_means"].items()]
    lines += ["", "SSIM per specimen (mean of its two VOIs):", "", "| specimen | MDCT | micro-CT-like |", "|---|---|---|"]
    lines += [f"| {p['case']} | {p['MDCT']:.3f} | {p['micro-CT-like']:.3f} |" for p in summary["ssim_per_specimen"]]
    if args.ablation:
        lines += ["", "## Ablation", "",
                  "Each variant trained from the same seed on the same 24 specimens at the same CPU width and budget "
                  "(except the previous bundled generator, listed as it shipped), evaluated on the same 16 held-out "
                  "specimens with the same recipe (the MDCT's SSIM differs between rows because each model's "
                  "training windows map the MDCT and micro-CT to 8 bits):", ""]
        lines += ablation_table(Path(args.ablation))
        missing = [n for n in ("forward", "skip") if not (Path(args.ablation) / f"{n}.json").is_file()]
        if missing:
            lines += ["", NOT_RUN_NOTE]
    lines += [
        "",
        "## Limitations",
        "",
        "- The simulator's MDCT forward model and micro-CT image model are estimates (SCIENCE.md of the project's "
        "shared notes, and `MicroCTLikeLib/simulate/parameters.py`); real scanners, patients and reconstruction "
        "kernels differ. Retrain on real data before any use.",
        "- The paired term needs registered MDCT / micro-CT; the simulator gives them. Real cohorts need registration "
        "(or slice pairing) first; without pairs, the level skip and the forward term remain.",
        "- Reduced widths and a short CPU run: far from the study's default-width FUNIT trained on a GPU.",
        f"- Evaluated on {summary['n_specimens']} simulated specimens.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
