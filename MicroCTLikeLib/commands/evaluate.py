"""``microctlike evaluate``: the study's evaluation of one or more generators on a cohort."""

from .options import views_option

HELP = ("Evaluate generators on a cohort's held-out specimens: SSIM/FID overall and cancellous, BoneJ-exact "
        "metrics in the standard VOIs, R², ICC, Tables 1-4, figures and an HTML report.")


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cohort", help="cohort folder (cohort.json + <case>/mdct.nrrd, microct.nrrd[, truth.nrrd]): "
                                         "the study report (Tables 1-4, figures, HTML) into --out")
    source.add_argument("--data", help="cohort folder, single-generator summary (the earlier form: --model, --recipe, "
                                       "--reference-cache, --out FILE.json)")
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME=CHECKPOINT",
                        help="generators to compare, e.g. funit=bundled stargan=runs/s/checkpoints/last.pt "
                             "(default: funit=bundled)")
    parser.add_argument("--model", default=None, help="one generator checkpoint (older form of --models funit=PATH)")
    parser.add_argument("--out", default=None, help="report folder (per-case cache, tables, figures, report.html; "
                                                    "a rerun into it skips the cached cases); with --data: a JSON file")
    parser.add_argument("--recipe", default=None, choices=("gold", "study"),
                        help="measurement recipe for every volume: gold = common 0.052 mm grid + marrow/bone "
                             "midpoint threshold, study = IsoData on each volume's own voxels (default: study "
                             "with --cohort, gold with --data); the report names it")
    parser.add_argument("--views", type=views_option, default="axial", metavar="VIEWS",
                        help="(--data) slice orientations the generator translates: axial (default), "
                             "axial+coronal+sagittal or all")
    parser.add_argument("--reference-cache", default=None, metavar="DIR",
                        help="with --data: keep the generator-independent measurements (MDCT, micro-CT, truth) here")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"))
    parser.add_argument("--cases", nargs="*", default=None, help="evaluate these case ids instead of a split")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--region", default="standard-vois", choices=("standard-vois", "whole"),
                        help="what is generated and compared as 'overall' (default: around both standard VOIs)")
    parser.add_argument("--pairing", default="geometry", choices=("geometry", "sift"),
                        help="which micro-CT slices a generated slice is compared with: the same physical position "
                             "(registered cohorts, the simulator) or SIFT+DTW slice pairing")
    parser.add_argument("--fid-weights", default=None, metavar="PATH",
                        help="FID Inception weights (pt_inception-2015-12-05 state dict); default "
                             "$MICROCTLIKE_FID_WEIGHTS; without them FID is left out")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--json", action="store_true", help="print report.json to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file (never an input)")


def run(args) -> int:
    import os
    import shlex
    import sys

    from ..evaluate.cohort import evaluate_study, parse_model_specs
    from ..evaluate.report import dumps
    from ..evaluate.study import write_study_report
    from ..evaluate.tables import format_cell
    from ..errors import InvalidParameterError
    from ..progress import tqdm_progress

    if args.data:
        return _run_single(args)
    if not args.out:
        raise InvalidParameterError("--cohort needs --out REPORT_DIR")
    specs = list(args.models or [])
    if args.model:
        specs.append(f"funit={args.model}" if not specs else args.model)
    models = parse_model_specs(specs or ["funit=bundled"])
    recipe = args.recipe or "study"  # the study's IsoData, what --cohort has always measured
    fid_weights = args.fid_weights or os.environ.get("MICROCTLIKE_FID_WEIGHTS") or None

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    if args.quiet:
        progress = None
        results = evaluate_study(args.cohort, models, args.out, split=args.split, cases=args.cases, device=args.device,
                                 region=args.region, fid_weights=fid_weights, pairing=args.pairing, recipe=recipe,
                                 log=log)
    else:
        with tqdm_progress("evaluating", unit="step") as progress:
            results = evaluate_study(args.cohort, models, args.out, split=args.split, cases=args.cases,
                                     device=args.device, region=args.region, fid_weights=fid_weights,
                                     pairing=args.pairing, recipe=recipe, progress=progress, log=log)
    words = ["microctlike", "evaluate", "--cohort", args.cohort, "--models", *[f"{k}={v}" for k, v in models.items()],
             "--out", args.out]
    words += ["--cases", *args.cases] if args.cases else ["--split", args.split]
    words += ["--region", args.region] if args.region != "standard-vois" else []
    words += ["--pairing", args.pairing] if args.pairing != "geometry" else []
    words += ["--recipe", recipe]
    words += ["--fid-weights", fid_weights] if fid_weights else []
    written = write_study_report(results, args.out, figures=not args.no_figures,
                                 command=" ".join(shlex.quote(str(w)) for w in words))
    summary = written["summary"]
    for message in summary["warnings"]:
        log(f"microctlike: note: {message}")
    if args.json:
        print(dumps(summary))
        return 0
    print(f"{summary['n_specimens']} specimens, {summary['n_vois']} VOIs ({results['split']}); "
          f"measurement recipe {recipe}; report: {written['paths']['html']}")
    print(results["fid_status"])
    tables = {t["name"]: t for t in written["tables"]}
    ssim = tables["table1_similarity"]
    print("SSIM vs micro-CT, mean ± SD over specimens: " + "; ".join(
        f"{column} overall {ssim['rows'][0][i]}, cancellous {ssim['rows'][2][i]}"
        for i, column in enumerate(ssim["columns"]) if i > 0))
    head = tables["headline"]
    print("  ".join(f"{c:>14}" for c in head["columns"]))
    for row in head["rows"]:
        print("  ".join(f"{format_cell(c):>14}" for c in row))
    return 0


def _run_single(args) -> int:
    """The earlier single-generator summary (``--data``)."""
    import sys
    from pathlib import Path

    from ..errors import InvalidParameterError
    from ..evaluate.specimen import evaluate_cohort
    from ..inference import bundled_model_path
    from ..outputs import check_output_file
    from ..progress import tqdm_progress
    from ..evaluate.report import dumps, write_json

    recipe = args.recipe or "gold"
    model = Path(args.model) if args.model else bundled_model_path()
    if args.out:  # before any work: never an input (cohort.json, a case file, the model), --force to replace
        check_output_file(args.out, force=args.force, inputs=[args.data, model], suffixes=(".json",))
    if not model.is_file():
        raise InvalidParameterError(f"{model}: generator checkpoint not found")
    with tqdm_progress("evaluating", unit="specimen", disable=args.quiet) as progress:
        results = evaluate_cohort(model, args.data, split=args.split, cases=args.cases, device=args.device,
                                  recipe=recipe, reference_cache_dir=args.reference_cache, progress=progress,
                                  views=args.views)
    if args.out:
        write_json(results, args.out)
    for message in dict.fromkeys(w for case in results["cases"] for w in case.get("warnings", [])):
        print(f"microctlike: note: {message}", file=sys.stderr)
    if args.json:
        print(dumps(results))
        return 0
    summary = results["summary"]
    print(f"{summary['n_specimens']} specimens, {summary['n_vois']} VOIs ({args.split}); model step {results['model_step']}; "
          f"measurement recipe {recipe}")
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
