"""The end-to-end demo: simulate a held-out vertebra, generate, place the VOIs, measure, report.

Every step is the library's public API, so the demo is also the shortest example of how
the pieces fit together:

1. :func:`MicroCTLikeLib.simulate.simulate_specimen` with a seed outside the bundled
   generator's training cohort (held out);
2. :func:`MicroCTLikeLib.evaluate.evaluate_case`: standard VOIs placed on the MDCT,
   generation around them, BoneJ-exact metrics of MDCT, micro-CT-like, the true micro-CT
   and the binary truth, SSIM against the micro-CT inside the VOIs' boxes;
3. report.json, report.md, report.html and figure.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict


from ..errors import InvalidParameterError

#: Seed of the demo vertebra: not a case of the bundled generator's training cohort
#: (those are derived from cohort seed 2026 by simulate.cohort.case_seed).
DEMO_SEED = 20231716


def run_demo(out_dir, *, seed: int = DEMO_SEED, model_path=None, device: str = "auto", preset: str = "small",
             force: bool = False, progress=None, cancel=None, log=print) -> Dict[str, Any]:
    """Run the demo into ``out_dir`` and return the report dict (also written as report.json)."""
    from .specimen import evaluate_case
    from ..inference import bundled_model_path, resolve_device
    from .report import TABLE_HEADER, comparison_figure, metrics_table_rows, write_json, write_markdown_and_html
    from ..simulate import simulate_specimen
    from ..outputs import check_output_dir
    from ..train.checkpoint import load_inference_model
    from ..volume import write_volume

    model_path = Path(model_path) if model_path else bundled_model_path()
    out = check_output_dir(out_dir, force=force, inputs=[model_path])
    if not model_path.is_file():
        raise InvalidParameterError(f"{model_path}: generator checkpoint not found")
    timings: Dict[str, float] = {}
    started = time.perf_counter()
    # the generator loads (and is checked) before anything is simulated or written
    log(f"loading {model_path.name} ...")
    generator, metadata = load_inference_model(model_path, device=resolve_device(device))

    log(f"simulating held-out vertebra (seed {seed}, preset {preset}) ...")
    t = time.perf_counter()
    specimen = simulate_specimen(seed, preset=preset)
    timings["simulate_s"] = time.perf_counter() - t
    write_volume(specimen.mdct, out / "mdct.nrrd")
    write_volume(specimen.microct, out / "microct.nrrd")

    log(f"placing the standard VOIs on the MDCT, generating around them with {model_path.name}, measuring ...")
    t = time.perf_counter()
    outcome = evaluate_case(specimen.mdct, specimen.microct, generator, metadata, truth_binary=specimen.truth_binary,
                            device=device, progress=progress, cancel=cancel)
    timings["generate_and_measure_s"] = time.perf_counter() - t
    like, placement, generation = outcome["like"], outcome["placement"], outcome["generation"]
    measurements, ssim = outcome["measurements"], outcome["ssim"]
    vois = placement.vois
    write_volume(like, out / "microct_like.nrrd")
    norm = metadata["normalisation"]

    figure = comparison_figure(
        out / "figure.png",
        [("MDCT", specimen.mdct, norm["mdct_window_hu"]), ("micro-CT-like (generated)", like, norm["microct_window"]),
         ("micro-CT (truth)", specimen.microct, norm["microct_window"])],
        vois, title=f"Held-out simulated vertebra (seed {seed})",
    )
    timings["total_s"] = time.perf_counter() - started
    report = {
        "seed": seed, "preset": preset, "model": str(model_path), "model_metadata": {
            "name": metadata.get("model", {}).get("name"), "step": metadata.get("step"),
            "normalisation": norm, "training_data": metadata.get("training_data")},
        "generation": generation.to_dict(), "placement": placement.to_dict(), "measurements": measurements,
        "ssim_voi_boxes": ssim, "warnings": outcome["warnings"], "truth": {k: specimen.truth.get(k) for k in ("targets", "achieved_bv_tv") if k in specimen.truth},
        "timings_s": {k: round(v, 2) for k, v in timings.items()}, "figure": figure.name,
    }
    write_json(report, out / "report.json")
    ssim_rows = [[label] + [f"{values[v.name]:.3f}" for v in vois] for label, values in ssim.items()]
    write_markdown_and_html(
        out, title="MicroCTLike demo", figure_name=figure.name,
        intro=(f"A simulated vertebra the bundled generator never saw (seed {seed}): MDCT in, micro-CT-like out, "
               "standard VOIs placed automatically on the MDCT, metrics measured BoneJ-exactly on every volume."),
        tables=[("Metrics per VOI", TABLE_HEADER, metrics_table_rows(measurements)),
                ("SSIM against the true micro-CT (inside the VOI boxes, 8-bit, sigma 1.5)", ["Volume"] + [v.name for v in vois],
                 ssim_rows)],
        notes=[f"Generation: {generation.n_slices} slices on {generation.device} ({generation.mode}) in "
               f"{generation.seconds:.1f} s.",
               *outcome["warnings"],
               "The bundled generator is trained on simulated data only and is not validated on patients.",
               f"Total time {timings['total_s']:.0f} s."],
    )
    log(f"wrote {out / 'report.html'}")
    return report
