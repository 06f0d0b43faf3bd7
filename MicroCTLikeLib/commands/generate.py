"""``microctlike generate``: MDCT volume in, micro-CT-like volume out."""

HELP = "Generate a micro-CT-like volume from an MDCT volume with a trained (or the bundled) generator."


def add_arguments(parser) -> None:
    parser.add_argument("mdct", help="MDCT volume in HU (.nrrd, .nii.gz, .mha or a DICOM folder)")
    parser.add_argument("--out", required=True, help="output volume (.nrrd, .nii.gz, .mha)")
    parser.add_argument("--model", default=None, help="generator checkpoint (.pt); default: the bundled generator")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    parser.add_argument("--region", default="whole",
                        help="whole | standard-vois | L0,P0,S0,L1,P1,S1 (an LPS box in mm); default whole")
    parser.add_argument("--mode", default="auto", choices=("auto", "whole", "tiles"),
                        help="whole slices, exact tiles, or auto (whole; tiles after CUDA out-of-memory)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast on CUDA")
    parser.add_argument("--batch-size", type=int, default=None, help="slices per batch (default 8 on CUDA, 1 on CPU)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--progress-lines", action="store_true",
                        help="print 'PROGRESS i/n' lines instead of a bar (for the Slicer module's worker)")
    parser.add_argument("--json", action="store_true", help="print the generation report as JSON")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..errors import InvalidParameterError
    from ..inference import bundled_model_path, generate_from_checkpoint, parse_region
    from ..progress import tqdm_progress
    from ..process_runner import print_progress
    from ..volume import read_volume, write_volume

    out = Path(args.out)
    if out.exists() and not args.force:
        raise InvalidParameterError(f"{out} exists; pass --force to overwrite it")
    model = Path(args.model) if args.model else bundled_model_path()
    if not model.is_file():
        raise InvalidParameterError(
            f"{model}: generator checkpoint not found" + ("" if args.model else " (the bundled model is missing from this install)")
        )
    mdct = read_volume(args.mdct)
    region = parse_region(args.region)
    kwargs = dict(region=region, device=args.device, mode=args.mode, precision=args.precision, batch_size=args.batch_size)
    if args.progress_lines:
        volume, report = generate_from_checkpoint(mdct, model, progress=print_progress, **kwargs)
    else:
        with tqdm_progress("generating", unit="slice") as progress:
            volume, report = generate_from_checkpoint(mdct, model, progress=progress, **kwargs)
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
