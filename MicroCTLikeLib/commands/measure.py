"""``microctlike measure``: BV/TV, Tb.Th and Tb.Sp of a volume, BoneJ-exact, in a VOI.

Examples::

    microctlike measure microct.nrrd --voi standard --json
    microctlike measure stack.nrrd --voi whole                 # the whole stack, as BoneJ
    microctlike measure mdct.nrrd --voi cylinder:12.5,20,-3,15,5 --tb-sp-policy outside_bone

``cylinder:R,A,S,DIAMETER,HEIGHT[,aR,aA,aS]`` takes the centre in RAS mm (what Slicer shows),
the size in mm and optionally the axis in RAS (default: the volume's k axis).
"""

from __future__ import annotations

import argparse
import json
import sys

from .options import float_in

HELP = "Measure BV/TV, Tb.Th and Tb.Sp (BoneJ-exact) in the whole stack, the standard VOIs or a cylinder."

THRESHOLD_METHODS = ("isodata", "ij_isodata", "default", "otsu")
POLICIES = ("margin", "clear_outside", "outside_bone")
RESULT_KEYS = ("bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm")


def parse_voi(text: str):
    """``whole``, ``standard`` or ``cylinder:R,A,S,D,H[,aR,aA,aS]`` -> ("kind", numbers or None)."""
    value = text.strip()
    if value in ("whole", "standard"):
        return (value, None)
    if value.startswith("cylinder:"):
        try:
            numbers = [float(v) for v in value[len("cylinder:"):].split(",")]
        except ValueError:
            numbers = []
        if len(numbers) in (5, 8) and all(n == n and abs(n) != float("inf") for n in numbers):
            if numbers[3] > 0 and numbers[4] > 0:
                return ("cylinder", numbers)
    raise argparse.ArgumentTypeError(
        f"invalid VOI {text!r}: use 'whole', 'standard' or 'cylinder:R,A,S,DIAMETER,HEIGHT[,aR,aA,aS]' "
        "(RAS centre in mm, positive diameter and height in mm, optional RAS axis)"
    )


def parse_threshold(text: str):
    """An ImageJ method name or a fixed 8-bit level 0..254 (bone = value > level)."""
    value = text.strip().lower()
    if value in THRESHOLD_METHODS:
        return value
    try:
        level = int(value)
    except ValueError:
        level = -1
    if 0 <= level <= 254:
        return level
    raise argparse.ArgumentTypeError(
        f"invalid threshold {text!r}: use one of {', '.join(THRESHOLD_METHODS)} or an 8-bit level 0-254"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volume", metavar="VOLUME", help="volume file (.nrrd, .nii.gz, .mha) or DICOM folder")
    parser.add_argument("--voi", type=parse_voi, default=("standard", None), metavar="VOI",
                        help="whole | standard (default: the study's two 15 x 5 mm VOIs, found automatically) | "
                             "cylinder:R,A,S,DIAMETER,HEIGHT[,aR,aA,aS] (RAS mm, as in Slicer)")
    parser.add_argument("--threshold", type=parse_threshold, default="isodata", metavar="METHOD|LEVEL",
                        help="isodata (default, ImageJ 1.53t) | ij_isodata | default | otsu | 8-bit level; "
                             "histogram of the VOI; a 0/255 volume is read as bone >= 128")
    parser.add_argument("--tb-sp-policy", choices=POLICIES, default="margin",
                        help="how the VOI meets the Tb.Sp map (default margin: maps on the VOI plus a margin, "
                             "averaged inside the cylinder); clear_outside / outside_bone are BoneJ-literal")
    parser.add_argument("--margin-mm", type=float_in(0.0, 20.0), default=None, metavar="MM",
                        help="margin of the 'margin' policy, 0..20 mm (default 1.5 mm)")
    parser.add_argument("--offset-mm", type=float_in(0.0, 100.0, low_open=True), default=None, metavar="MM",
                        help="standard VOIs: distance of each VOI's outer face from mid-height, at least half the "
                             "height (default = height, 5 mm)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--maps-out", metavar="DIR", default=None,
                        help="also write the Tb.Th / Tb.Sp maps (mm, NRRD) and VOI masks into DIR")
    parser.add_argument("--force", action="store_true", help="replace maps an earlier run wrote into --maps-out")
    parser.add_argument("--strict", action="store_true",
                        help="make the measurement-honesty warnings (histogram not bimodal, implausible bone "
                             "fraction) errors (exit 1)")


def map_names(kind: str):
    """Stems of the map files ``--maps-out`` gets for a ``--voi`` kind."""
    return {"whole": ("whole",), "cylinder": ("cylinder",), "standard": ("superior", "inferior")}[kind]


def _check_maps_out(args) -> None:
    """Every map file is checked (input, existing without --force, writable) before measuring."""
    from pathlib import Path

    from ..outputs import check_output_dir, check_output_file

    out = Path(args.maps_out)
    check_output_dir(out, force=True, inputs=[args.volume], option="--maps-out")
    kind = args.voi[0]
    for stem in map_names(kind):
        for key in ("tb_th_mm", "tb_sp_mm") + (("voi_mask",) if kind != "whole" else ()):
            check_output_file(out / f"{stem}_{key}.nrrd", force=args.force, inputs=[args.volume], option="--maps-out")


def run(args: argparse.Namespace) -> int:
    import warnings

    from ..errors import MeasurementQualityError

    if args.maps_out:
        _check_maps_out(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output, rows = _measure(args)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for message in messages:  # once each, without the source line of a raw Python warning
        print(f"microctlike: warning: {message}", file=sys.stderr)
    quality = [f"{name}: {text}" for name, entry in rows for text in entry.get("quality_warnings", [])]
    if args.strict and quality:
        raise MeasurementQualityError(f"{args.volume}: {quality[0]} (--strict)")
    if args.json:
        import numpy as np

        output["warnings"] = messages
        json.dump(_jsonable(output, np), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(args.volume, rows)
    return 0


def _measure(args: argparse.Namespace):
    import numpy as np

    from ..errors import InvalidParameterError
    from ..morphometry import DEFAULT_MARGIN_MM, measure_trabecular
    from ..morphometry.conversion import default_display_range
    from ..measurement import measure_in_voi, voi_crop
    from ..volume import read_volume
    from ..voi import CylinderVOI, cylinder_mask, place_standard_vois, ras_to_lps

    volume = read_volume(args.volume)
    kind, numbers = args.voi
    margin_mm = DEFAULT_MARGIN_MM if args.margin_mm is None else float(args.margin_mm)
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise InvalidParameterError(f"--margin-mm must be a finite number >= 0, got {args.margin_mm}")
    # One display range for the whole stack (ImageJ's), also when a VOI is measured on a crop.
    display_range = default_display_range(volume.array)
    common = dict(threshold=args.threshold, display_range=display_range, return_maps=bool(args.maps_out))

    def measure_voi(voi):
        result = measure_in_voi(volume, voi, tb_sp_policy=args.tb_sp_policy, margin_mm=margin_mm, **common)
        if args.maps_out:  # the maps lie on the crop measure_in_voi measured
            sub = voi_crop(volume, voi, margin_mm=margin_mm)
            _write_maps(args.maps_out, voi.name or "cylinder", sub, result, cylinder_mask(sub, voi))
        return _entry(result, voi.to_dict())

    output = {"volume": str(args.volume), "spacing_xyz_mm": list(volume.spacing_xyz_mm)}
    if kind == "whole":
        result = measure_trabecular(volume.array, spacing_xyz_mm=volume.spacing_xyz_mm, voi_mask=None, **common)
        _write_maps(args.maps_out, "whole", volume, result, None)
        output.update(_entry(result, {"shape": "whole", "shape_zyx": list(volume.shape_zyx)}))
        rows = [("whole", output)]
    elif kind == "cylinder":
        r, a, s, diameter, height = numbers[:5]
        axis_lps = ras_to_lps(numbers[5:8]) if len(numbers) == 8 else volume.direction_lps[:, 2]
        voi = CylinderVOI(tuple(ras_to_lps([r, a, s])), tuple(axis_lps), diameter, height, name="cylinder")
        output.update(measure_voi(voi))
        rows = [("cylinder", output)]
    else:
        kwargs = {} if args.offset_mm is None else {"offset_mm": args.offset_mm}
        placement = place_standard_vois(volume, **kwargs)
        entries = [dict(name=voi.name, **measure_voi(voi)) for voi in placement.vois]
        output.update(vois=entries, placement=placement.body.to_dict(), placement_parameters=placement.parameters)
        rows = [(e["name"], e) for e in entries]
    return output, rows


def _entry(result, voi_description) -> dict:
    entry = result.as_dict()
    entry["voi"] = voi_description
    return entry


def _write_maps(directory, name, volume, result, mask) -> None:
    if not directory:
        return
    from pathlib import Path

    import numpy as np

    from ..volume import write_volume

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    # 0 where no value entered the statistics (BoneJ's NaN), so viewers and read_volume accept the maps.
    for key, quantity in (("tb_th", "Tb.Th"), ("tb_sp", "Tb.Sp")):
        values = np.nan_to_num(getattr(result, f"{key}_map_mm"), nan=0.0).astype(np.float32)
        write_volume(volume.with_array(values, units="mm", quantity=quantity), out / f"{name}_{key}_mm.nrrd")
    if mask is not None:
        write_volume(volume.with_array(mask.astype(np.uint8)), out / f"{name}_voi_mask.nrrd")


def _jsonable(value, np):
    if isinstance(value, dict):
        return {k: _jsonable(v, np) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, np) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None  # NaN (e.g. no marrow) is not JSON
    return value


def _print_table(path, rows) -> None:
    print(f"{path}")
    header = f"{'VOI':<10} {'BV/TV':>7} {'Tb.Th mm':>9} {'(SD)':>7} {'Tb.Sp mm':>9} {'(SD)':>7} {'thr':>5}  policy"
    print(header)
    print("-" * len(header))
    for name, r in rows:
        thr = "-" if r["threshold"] is None else str(r["threshold"])
        print(f"{name:<10} {r['bv_tv']:>7.4f} {r['tb_th_mm']:>9.4f} {r['tb_th_sd_mm']:>7.4f} {r['tb_sp_mm']:>9.4f} "
              f"{r['tb_sp_sd_mm']:>7.4f} {thr:>5}  {r['tb_sp_policy']} ({r['threshold_method']})")
