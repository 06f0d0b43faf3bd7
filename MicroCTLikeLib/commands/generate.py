"""``microctlike generate``: MDCT volume in, micro-CT-like volume out."""

from .options import BATCH_SIZE, views_option

HELP = "Generate a micro-CT-like volume from an MDCT volume with a trained (or the bundled) generator."

#: endings generate writes (one file each, renamed into place atomically)
OUTPUT_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha")


def add_arguments(parser) -> None:
    parser.add_argument("mdct", help="MDCT volume in HU (.nrrd, .nii.gz, .mha or a DICOM folder)")
    parser.add_argument("--out", required=True, help="output volume (.nrrd, .nii, .nii.gz, .mha); never one of the inputs")
    parser.add_argument("--model", default=None, help="generator checkpoint (.pt); default: the bundled generator")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    parser.add_argument("--region", default="whole",
                        help="whole | standard-vois | L0,P0,S0,L1,P1,S1 (an LPS box in mm); default whole")
    parser.add_argument("--mode", default="auto", choices=("auto", "whole", "tiles"),
                        help="whole slices, exact tiles, or auto (whole; tiles after CUDA out-of-memory)")
    parser.add_argument("--views", type=views_option, default="axial", metavar="VIEWS",
                        help="slice orientations translated and averaged: axial (the study's, default), "
                             "axial+coronal+sagittal or all (thinner structure along z; one pass per view)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast on CUDA")
    parser.add_argument("--batch-size", type=BATCH_SIZE, default=None, metavar="N",
                        help="slices per batch, 1..1024 (default 8 on CUDA, 1 on CPU)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file (never an input)")
    parser.add_argument("--progress-lines", action="store_true",
                        help="print 'PROGRESS i/n' lines instead of a bar (for the Slicer module's worker)")
    parser.add_argument("--json", action="store_true", help="print the generation report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..errors import InvalidParameterError
    from ..outputs import check_output_file
    from ..testing_hooks import pause_at
    from ..inference import bundled_model_path, generate_from_checkpoint, parse_region
    from ..progress import tqdm_progress
    from ..process_runner import print_progress
    from ..volume import read_volume, write_volume

    model = Path(args.model) if args.model else bundled_model_path()
    # everything about the output is checked before the model loads and a slice is generated
    out = check_output_file(args.out, force=args.force, inputs=[args.mdct, model], suffixes=OUTPUT_SUFFIXES)
    if not model.is_file():
        raise InvalidParameterError(
            f"{model}: generator checkpoint not found" + ("" if args.model else " (the bundled model is missing from this install)")
        )
    region = parse_region(args.region)
    quiet = args.quiet or args.json

    def say(message: str) -> None:
        if not quiet and not args.progress_lines:
            print(message, file=sys.stderr, flush=True)

    say(f"reading {args.mdct} ...")
    mdct = read_volume(args.mdct)
    say(f"loading {model.name} ...")
    kwargs = dict(region=region, device=args.device, mode=args.mode, precision=args.precision, batch_size=args.batch_size,
                  views=args.views)
    if args.progress_lines:
        volume, report = generate_from_checkpoint(mdct, model, progress=print_progress, **kwargs)
    else:
        with tqdm_progress("generating", unit="slice", disable=quiet) as progress:
            volume, report = generate_from_checkpoint(mdct, model, progress=progress, **kwargs)
    pause_at("generate:write")
    write_volume(volume, out)
    summary = {"output": str(out), "model": str(model), **report.to_dict()}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out}: {report.n_slices} slices of {report.slice_shape[0]}x{report.slice_shape[1]} px at "
              f"{volume.spacing_xyz_mm[0]:g} mm on {report.device} ({report.mode}), {report.slices_per_second:.2f} slices/s")
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0
