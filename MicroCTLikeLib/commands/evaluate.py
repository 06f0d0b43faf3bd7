"""``microctlike evaluate``: a generator against the micro-CT of a cohort's held-out specimens."""

HELP = "Evaluate a generator on a cohort's test specimens: SSIM and BV/TV, Tb.Th, Tb.Sp in the standard VOIs."


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=None, help="generator checkpoint; default: the bundled generator")
    parser.add_argument("--data", required=True, help="cohort folder (cohort.json + <case>/mdct.nrrd, microct.nrrd)")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"))
    parser.add_argument("--cases", nargs="*", default=None, help="evaluate these case ids instead of a split")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--recipe", default="gold", choices=("gold", "study"),
                        help="measurement recipe for every volume: gold = common 0.052 mm grid + marrow/bone midpoint "
                             "threshold (agrees with the simulator's truth), study = IsoData on each volume's own voxels "
                             "(the study's BoneJ recipe)")
    parser.add_argument("--reference-cache", default=None, metavar="DIR",
                        help="keep the generator-independent measurements (MDCT, micro-CT, truth) here and reuse them "
                             "(comparing several generators on one cohort measures those once)")
    parser.add_argument("--out", default=None, help="also write the full results as JSON here")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")


def run(args) -> int:
    import sys
    from pathlib import Path

    from ..errors import InvalidParameterError
    from ..evaluation import evaluate_cohort
    from ..inference import bundled_model_path
    from ..progress import tqdm_progress
    from ..report import dumps, write_json

    model = Path(args.model) if args.model else bundled_model_path()
    if not model.is_file():
        raise InvalidParameterError(f"{model}: generator checkpoint not found")
    with tqdm_progress("evaluating", unit="specimen") as progress:
        results = evaluate_cohort(model, args.data, split=args.split, cases=args.cases, device=args.device,
                                  recipe=args.recipe, reference_cache_dir=args.reference_cache, progress=progress)
    if args.out:
        write_json(results, args.out)
    for message in dict.fromkeys(w for case in results["cases"] for w in case.get("warnings", [])):
        print(f"microctlike: note: {message}", file=sys.stderr)
    if args.json:
        print(dumps(results))
        return 0
    summary = results["summary"]
    print(f"{summary['n_specimens']} specimens, {summary['n_vois']} VOIs ({args.split}); model step {results['model_step']}; "
          f"measurement recipe {args.recipe}")
    print("SSIM vs micro-CT (VOI boxes): " + ", ".join(f"{k} {v:.3f}" for k, v in summary["ssim_mean"].items()))
    for label, means in summary["metric_means"].items():
        print(f"  {label:<16} BV/TV {means['bv_tv']:.3f}  Tb.Th {means['tb_th_mm']:.3f} mm  Tb.Sp {means['tb_sp_mm']:.3f} mm")
    for label, errors in summary["mean_abs_error_vs_micro-CT"].items():
        print(f"  |{label} - micro-CT|: BV/TV {errors['bv_tv']:.3f}  Tb.Th {errors['tb_th_mm']:.3f} mm  "
              f"Tb.Sp {errors['tb_sp_mm']:.3f} mm")
    if "ssim_like_above_mdct_fraction" in summary:
        print(f"SSIM micro-CT-like above MDCT on {100 * summary['ssim_like_above_mdct_fraction']:.0f} % of specimens; "
              f"mean ratio {summary['ssim_ratio_like_to_mdct']:.2f}")
    for key, title in (("agreement_vs_micro-CT", "vs micro-CT"), ("agreement_vs_truth", "vs binary truth")):
        for label, metrics in summary.get(key, {}).items():
            print(f"  {label:<14} {title:<16} " + "  ".join(
                f"{name} R^2 {metrics[m]['r2']:.2f} ICC(A,1) {metrics[m]['icc_a1']:.2f} bias {metrics[m]['bias_percent']:+.0f}%"
                for m, name in (("bv_tv", "BV/TV"), ("tb_th_mm", "Tb.Th"), ("tb_sp_mm", "Tb.Sp"))))
    return 0
