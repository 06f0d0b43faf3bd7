"""``microctlike demo``: the end-to-end demo on a held-out simulated vertebra."""

from .options import SEED

HELP = "Run the end-to-end demo: simulate a held-out vertebra, generate, place VOIs, measure, write a report."


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    parser.add_argument("--model", default=None, help="generator checkpoint; default: the bundled generator")
    parser.add_argument("--seed", type=SEED, default=None, help="seed of the simulated vertebra (default: the held-out demo seed)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--preset", default="small", choices=("small", "full"), help="simulated block size")
    parser.add_argument("--force", action="store_true", help="write into a non-empty folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys

    from ..evaluate.demo import DEMO_SEED, run_demo
    from ..progress import tqdm_progress
    from ..evaluate.report import dumps

    def log(message):
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    with tqdm_progress("generating", unit="slice", disable=args.quiet) as progress:
        report = run_demo(args.out, seed=DEMO_SEED if args.seed is None else args.seed, model_path=args.model,
                          device=args.device, preset=args.preset, force=args.force, progress=progress, log=log)
    if args.json:
        print(dumps(report))
    else:
        for label, entries in report["measurements"].items():
            cells = "  ".join(f"{e['voi_name']}: BV/TV {e['bv_tv']:.3f} Tb.Th {e['tb_th_mm']:.3f} Tb.Sp {e['tb_sp_mm']:.3f}"
                              for e in entries)
            print(f"{label:<16} {cells}")
        ssim = report["ssim_voi_boxes"]
        print("SSIM vs micro-CT: " + ", ".join(f"{k} {sum(v.values()) / len(v):.3f}" for k, v in ssim.items()))
    return 0
