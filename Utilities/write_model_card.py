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
    ("bundled_4000", "the bundled recipe, same run (shipped 2026-12-01)"),
    ("spectrum", "bundled recipe + spectrum term (spectrum_w 1)"),
    ("spectrum_lowpass", "bundled recipe + spectrum term + paired L1 low-passed to the MDCT's band (paired_sigma_px 2.5)"),
    ("context", "bundled recipe + 2.5-D input: 2 context slices on each side, 0.3 mm apart (context_slices 2)"),
    ("zadv", "bundled recipe + z-adversarial term on 3-slice stacks 0.2 mm apart (z_adv_w 1)"),
    ("fine", "bundled recipe on the micro-CT's 0.052 mm grid instead of 0.104 mm (target_spacing_mm 0.052)"),
    ("views_all", "the shipped generator, generated in three orthogonal views averaged (`--views all`, inference only)"),
)
#: variants of Utilities/ablate_generator.sh whose rows are absent until they are run
NOT_RUN_NOTE = ("Variants without a row have not been run (CPU time): "
                "'+ forward NCC' alone, '+ forward NCC + level skip' without the paired term and the "
                "2.5-D input (`context`); `VARIANTS=\"forward skip context\" bash Utilities/ablate_generator.sh` "
                "adds them.")


def _agreement_rows(summary, key, labels):
    rows = []
    for label in labels:
        table = summary.get(key, {}).get(label)
        if table is None:
            continue
        cells = [f"{table[m]['r2']:.2f} / {table[m]['icc_a1']:.2f} / {table[m]['bias_percent']:+.0f} %" for m, _ in METRICS]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def ablation_row(evaluation: dict) -> dict:
    """The numbers of one variant's held-out evaluation that the ablation table shows."""
    s = evaluation["summary"]
    agree = s["agreement_vs_micro-CT"]["micro-CT-like"]
    return {"steps": evaluation.get("model_step"), "ssim_like": s["ssim_mean"]["micro-CT-like"],
            "ssim_mdct": s["ssim_mean"]["MDCT"], "above_fraction": s["ssim_like_above_mdct_fraction"],
            "r2": [agree[m]["r2"] for m, _ in METRICS], "icc_a1": [agree[m]["icc_a1"] for m, _ in METRICS]}


def update_record(record_path: Path, directory: Path, measured: str) -> dict:
    """Merge the ablation folder's evaluations into the tracked record (JSON, one entry per variant).

    The record keeps rows of variants measured in earlier sessions, whose run folders are gone;
    a variant evaluated again replaces its row.
    """
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for name, _ in VARIANTS:
        path, failed = directory / f"{name}.json", directory / f"{name}.failed"
        if failed.is_file():
            record[name] = {"failed": failed.read_text().strip(), "measured": measured}
        elif path.is_file():
            record[name] = {**ablation_row(json.loads(path.read_text())), "measured": measured}
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return record


def ablation_table(record: dict) -> list:
    lines = ["| variant | steps | SSIM like / MDCT | like > MDCT | R^2 BV/TV, Tb.Th, Tb.Sp vs micro-CT | "
             "ICC(A,1) BV/TV, Tb.Th, Tb.Sp | measured |", "|---|---|---|---|---|---|---|"]
    for name, title in VARIANTS:
        row = record.get(name)
        if row is None:
            continue
        if "failed" in row:
            lines.append(f"| {title} | - | {row['failed']} | | | | {row['measured']} |")
            continue
        lines.append(
            f"| {title} | {row['steps']} | {row['ssim_like']:.3f} / {row['ssim_mdct']:.3f} | "
            f"{100 * row['above_fraction']:.0f} % | " + ", ".join(f"{v:.2f}" for v in row["r2"]) + " | "
            + ", ".join(f"{v:.2f}" for v in row["icc_a1"]) + f" | {row['measured']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("evaluation")
    parser.add_argument("out")
    parser.add_argument("--ablation", default=None, help="folder of the ablation's <variant>.json evaluations")
    parser.add_argument("--record", default=None,
                        help="tracked JSON record of the ablation rows (earlier sessions' rows kept; default: "
                             "ablation_record.json beside OUT_MD)")
    parser.add_argument("--measured", default=None, help="date written beside the rows measured now (default today)")
    parser.add_argument("--selection", default=None, help="one sentence: how the shipped variant and step were chosen")
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
        "- The reference FUNIT losses (hinge GAN, R1, L1 reconstruction, feature matching) plus options of ours, "
        "each named in the checkpoint's config and off in the reference model `funit`:",
        f"  - `forward_w` {model.get('forward_w')}: forward-model consistency, 1 - NCC between the translation blurred by "
        f"the MDCT's PSF (Gaussian sigma {model.get('forward_sigma_px')} px = 0.6 mm FWHM) and the MDCT;",
        f"  - `gen_level_skip` {model.get('gen_level_skip')}: the MDCT itself reaches the generator's last layer, so its "
        "local density level survives the instance normalisations (which divide out the mean and contrast of a crop "
        "lying wholly inside cancellous bone: the reference generator's output is the same for a sparse and a dense crop);",
        f"  - `paired_w` {model.get('paired_w')}: L1 to the micro-CT of the same place, registered by the simulator's "
        "geometry (the class code of each translation comes from another sample's micro-CT)"
        + (f", both images blurred by a Gaussian of `paired_sigma_px` {model.get('paired_sigma_px')} px (the band the "
           "MDCT resolves: its pixel-wise optimum below that scale is a blur);"
           if model.get("paired_sigma_px") else ";"),
        *([f"  - `spectrum_w` {model.get('spectrum_w')}: L1 between the radial log power spectra of the translation and "
           "of its registered micro-CT crop (Hann window, 16 bins): the texture's scale and sharpness, whatever the "
           "place of each trabecula;"] if model.get("spectrum_w") else []),
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
        from datetime import date

        record_path = Path(args.record) if args.record else Path(args.out).with_name("ablation_record.json")
        record = update_record(record_path, Path(args.ablation), args.measured or date.today().isoformat())
        lines += ["", "## Ablation", "",
                  "Each variant trained from the same seed on the same 24 specimens at the same CPU width (except the "
                  "previous bundled generator, listed as it shipped), evaluated on the same 16 held-out specimens with "
                  "the same recipe (the MDCT's SSIM differs between rows because each model's training windows map the "
                  "MDCT and micro-CT to 8 bits). Rows measured in earlier sessions are kept in "
                  f"`{record_path.name}` (their run folders are not shipped):", ""]
        lines += ablation_table(record)
        if any(n not in record for n in ("forward", "skip")):
            lines += ["", NOT_RUN_NOTE]
    if args.selection:
        lines += ["", "## Selection", "", args.selection]
    lines += [
        "",
        "## Limitations",
        "",
        "- The simulator's MDCT forward model and micro-CT image model are estimates (documented, study values and estimates marked, "
        "in `MicroCTLikeLib/simulate/parameters.py`); real scanners, patients and reconstruction kernels differ. "
        "Retrain on real data before any use.",
        "- The paired term needs registered MDCT / micro-CT; the simulator gives them. Real cohorts need registration "
        "(or slice pairing) first; without pairs, the level skip and the forward term remain.",
        "- Reduced widths and a short CPU run: far from the study's default-width FUNIT trained on a GPU.",
        f"- Evaluated on {summary['n_specimens']} simulated specimens.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
