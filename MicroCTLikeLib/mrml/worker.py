"""The generation worker: the input node to a temporary NRRD, ``microctlike generate`` in a child process, the result into a new node.

The region the child generates is decided here, from the VOIs the user has
(:func:`generation_region`: the ROIs' cylinders plus a margin, as an LPS box), or the
whole volume after :func:`estimate_generation_memory` has said what that costs. The
input node is only read; the output goes to a new node (or a chosen one that is not the
input), placed beside the input in the subject hierarchy. The child's JSON summary tells
the device it used and the time it took (:func:`parse_generation_summary`).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InvalidParameterError
from .nodes import node_from_volume, volume_from_node
from .vois import vois_region_lps

#: Margin (mm) around the VOIs' cylinders that the generator covers: the measurement's
#: margin (1.5 mm) plus its crop (two voxels) and the generator's context, rounded up.
REGION_MARGIN_MM = 4.0
#: Attribute marking a node written by the generation worker (the output selector shows only these).
OUTPUT_ATTRIBUTE = "MicroCTLike.Output"
#: In-plane pixel size assumed for a memory estimate when the checkpoint is not read (the bundled model's).
DEFAULT_TARGET_SPACING_MM = 0.104
#: Bytes per output voxel the worker holds at its peak (resampled MDCT, normalised input,
#: translation and output, all float32) and that Slicer holds for the loaded result.
WORKER_BYTES_PER_VOXEL = 16
SLICER_BYTES_PER_VOXEL = 8

RegionBox = Tuple[Sequence[float], Sequence[float]]


def generation_region(roi_nodes: Sequence, *, margin_mm: float = REGION_MARGIN_MM) -> RegionBox:
    """The LPS box to generate: the cylinders of ``roi_nodes`` (as they are now) plus ``margin_mm``."""
    low, high = vois_region_lps(roi_nodes, margin_mm=margin_mm)
    return (tuple(float(v) for v in low), tuple(float(v) for v in high))


def region_argument(region: Union[str, RegionBox, None]) -> str:
    """The worker's ``--region`` text for ``"whole"`` or an LPS box."""
    if region in (None, "", "whole"):
        return "whole"
    if isinstance(region, str):
        raise InvalidParameterError(f"unknown region {region!r}: give 'whole' or an LPS box from generation_region()")
    low, high = region
    return ",".join(f"{float(v):.4f}" for v in (*low, *high))


def estimate_generation_memory(volume_node, *, region: Union[str, RegionBox, None] = "whole",
                               target_spacing_mm: float = DEFAULT_TARGET_SPACING_MM) -> Dict[str, Any]:
    """Expected size of a generation: output voxels, worker peak bytes, bytes in Slicer, and a message.

    The output has in-plane pixels of ``target_spacing_mm`` over the region's field of view
    and the input's slices, in float32.
    """
    import vtk

    if volume_node is None or volume_node.GetImageData() is None:
        raise InvalidParameterError("select an MDCT volume with image data first")
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    spacing = np.linalg.norm(np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)]), axis=0)
    extent_xyz = np.asarray(volume_node.GetImageData().GetDimensions(), dtype=float) * spacing
    if region not in (None, "", "whole"):  # a box: at most its size along each axis (geometry only, no copy)
        low, high = (np.asarray(v, dtype=float) for v in region)
        extent_xyz = np.minimum(extent_xyz, np.abs(high - low))
    nx = max(1, int(round(extent_xyz[0] / target_spacing_mm)))
    ny = max(1, int(round(extent_xyz[1] / target_spacing_mm)))
    nz = max(1, int(round(extent_xyz[2] / spacing[2])))
    voxels = nx * ny * nz
    worker, in_slicer = voxels * WORKER_BYTES_PER_VOXEL, voxels * SLICER_BYTES_PER_VOXEL
    message = (f"{nx} x {ny} x {nz} voxels at {target_spacing_mm:g} mm in-plane: about {worker / 2**30:.1f} GiB "
               f"in the worker and {in_slicer / 2**30:.1f} GiB in Slicer for the result")
    return {"shape_xyz": (nx, ny, nz), "voxels": voxels, "worker_bytes": worker, "slicer_bytes": in_slicer,
            "message": message}


def checkpoint_target_spacing_mm(model_path) -> float:
    """In-plane pixel size a checkpoint generates at (reads its metadata; torch is imported)."""
    from ..train.checkpoint import load_checkpoint

    payload = load_checkpoint(model_path)
    return float((payload.get("normalisation") or {}).get("target_spacing_mm", DEFAULT_TARGET_SPACING_MM))


def start_generation_worker(input_node, *, model_path, device: str = "auto",
                            region: Union[str, RegionBox, None] = "whole",
                            python: Optional[str] = None, on_progress=None, on_log=None,
                            threads: Optional[int] = None):
    """Write the input volume to a temporary NRRD and start ``microctlike generate`` in a child process.

    ``region`` is ``"whole"`` or an LPS box (see :func:`generation_region`). The child
    (PythonSlicer inside Slicer) prints PROGRESS lines; poll the returned
    :class:`~MicroCTLikeLib.mrml.process.ProcessRunner` from a timer, then call
    :func:`finish_generation_worker`. The input node is never modified. ``threads`` limits
    the child's CPU threads (OpenMP/MKL; a tiny model runs fastest on one, and a busy machine
    is not oversubscribed); None leaves torch's default.
    """
    import os
    import tempfile
    from pathlib import Path

    from ..volume import write_volume
    from .process import ProcessRunner, python_module_command

    region_text = region_argument(region)
    work_dir = Path(tempfile.mkdtemp(prefix="microctlike-"))
    try:
        input_path = write_volume(volume_from_node(input_node), work_dir / "mdct.nrrd")
        output_path = work_dir / "microct_like.nrrd"
        command = python_module_command(
            "generate", str(input_path), "--out", str(output_path), "--model", str(model_path),
            "--device", device, f"--region={region_text}", "--progress-lines", "--json", python=python,
        )
        # PythonSlicer does not have the extension's module folder on its path: give it ours.
        env = dict(os.environ)
        library_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (library_parent, env.get("PYTHONPATH", "")) if p)
        env["PYTHONIOENCODING"] = "utf-8"
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(max(1, int(threads)))
        runner = ProcessRunner(command, on_progress=on_progress, on_log=on_log, env=env)
    except BaseException:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    runner.work_dir = work_dir
    runner.output_path = output_path
    runner.input_name = input_node.GetName()
    runner.input_node_id = input_node.GetID()
    runner.region = region_text
    return runner


def parse_generation_summary(log_lines: Sequence[str]) -> Dict[str, Any]:
    """The JSON summary the worker prints last (``--json``): output, model, device, seconds, region, notes.

    Returns {} when there is none (an older worker or a failure before the end).
    """
    lines = list(log_lines)
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].strip() == "{":
            try:
                summary = json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
            return summary if isinstance(summary, dict) else {}
    return {}


def finish_generation_worker(runner, exit_code: int, *, output_node=None, scene=None, input_node=None):
    """Load the worker's output into ``output_node`` (or a new node) and remove the temporary files.

    The input node is never the target (a selection of the input gives a new node). The
    node is tagged with :data:`OUTPUT_ATTRIBUTE`, placed beside the input in the subject
    hierarchy, and gets ``runner.summary`` (device, seconds, ... from the worker).
    """
    from ..volume import read_volume
    from .nodes import _scene
    from .tables import place_in_study

    try:
        runner.check(exit_code)
        scene = _scene(scene)
        if input_node is None and getattr(runner, "input_node_id", None):
            input_node = scene.GetNodeByID(runner.input_node_id)
        if output_node is not None and output_node.GetID() == getattr(runner, "input_node_id", None):
            output_node = None
        volume = read_volume(runner.output_path)
        node = node_from_volume(volume, f"{runner.input_name} micro-CT-like", node=output_node, scene=scene)
        node.SetAttribute(OUTPUT_ATTRIBUTE, "micro-CT-like")
        runner.summary = parse_generation_summary(runner.log_lines)
        runner.summary.setdefault("device", "unknown")
        runner.summary["wall_seconds"] = round(runner.elapsed_s, 1)
        if input_node is not None:
            place_in_study(node, input_node)
        return node
    finally:
        cleanup_generation_worker(runner)


def generation_report_text(summary: Dict[str, Any]) -> str:
    """One line for the log: device used, time, slices and any fallback notes."""
    if not summary:
        return "generation finished (the worker printed no summary)"
    text = (f"generated {summary.get('n_slices', '?')} slices on {summary.get('device', '?')} "
            f"({summary.get('mode', '?')}): {float(summary.get('seconds', float('nan'))):.1f} s in the generator")
    if "wall_seconds" in summary:
        text += f", {float(summary['wall_seconds']):.1f} s in all"
    notes = summary.get("notes") or []
    return text + ("; " + "; ".join(str(n) for n in notes) if notes else "")


def cleanup_generation_worker(runner) -> None:
    """Remove the worker's temporary folder (after success, failure or cancel)."""
    import shutil

    work_dir = getattr(runner, "work_dir", None)
    if work_dir is not None:
        shutil.rmtree(work_dir, ignore_errors=True)
