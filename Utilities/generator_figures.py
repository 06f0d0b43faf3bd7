"""Figures of the bundled generator on held-out specimens (README and model card).

``python Utilities/generator_figures.py EVALUATION_JSON COHORT_DIR OUT_DIR [--model PT]``

* ``sparse_dense.png``: axial plane through the superior VOI of the held-out specimens with the
  lowest and the highest micro-CT BV/TV: MDCT, micro-CT-like, micro-CT (the output must look
  different when the bone does);
* ``bvtv_scatter.png``: BV/TV of the micro-CT-like volume and of the MDCT against the micro-CT's,
  one point per VOI, with the identity line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation")
    parser.add_argument("cohort")
    parser.add_argument("out")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from MicroCTLikeLib.inference import bundled_model_path, generate_volume
    from MicroCTLikeLib.report import comparison_figure
    from MicroCTLikeLib.train.checkpoint import load_inference_model
    from MicroCTLikeLib.voi import place_standard_vois
    from MicroCTLikeLib.volume import read_volume

    evaluation = json.loads(Path(args.evaluation).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = evaluation["cases"]
    key = "bv_tv"
    points = {label: [e[key] for c in cases for e in c["measurements"][label]] for label in ("MDCT", "micro-CT-like", "micro-CT")}
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 0.45], [0, 0.45], color="grey", lw=1, label="identity")
    ax.scatter(points["micro-CT"], points["MDCT"], s=18, color="tab:orange", label="MDCT")
    ax.scatter(points["micro-CT"], points["micro-CT-like"], s=18, color="tab:blue", label="micro-CT-like")
    agreement = evaluation["summary"]["agreement_vs_micro-CT"]
    ax.set_xlabel("micro-CT BV/TV")
    ax.set_ylabel("BV/TV")
    ax.set_title(f"{len(points['micro-CT'])} held-out VOIs: R^2 like {agreement['micro-CT-like'][key]['r2']:.2f}, "
                 f"MDCT {agreement['MDCT'][key]['r2']:.2f}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "bvtv_scatter.png", dpi=130)
    plt.close(fig)

    by_case = sorted(cases, key=lambda c: np.mean([e[key] for e in c["measurements"]["micro-CT"]]))
    model = Path(args.model) if args.model else bundled_model_path()
    generator, metadata = load_inference_model(model, device=torch.device("cpu"))
    norm = metadata["normalisation"]
    for tag, word, case in (("sparse", "sparsest", by_case[0]), ("dense", "densest", by_case[-1])):
        folder = Path(args.cohort) / case["case"]
        mdct, microct = read_volume(folder / "mdct.nrrd"), read_volume(folder / "microct.nrrd")
        like, _ = generate_volume(mdct, generator, metadata, region="standard-vois", device="cpu")
        vois = place_standard_vois(mdct).vois
        bv = {label: np.mean([e[key] for e in case["measurements"][label]]) for label in ("MDCT", "micro-CT-like", "micro-CT")}
        comparison_figure(out / f"{tag}.png", [
            (f"MDCT (BV/TV {bv['MDCT']:.3f})", mdct, norm["mdct_window_hu"]),
            (f"micro-CT-like ({bv['micro-CT-like']:.3f})", like, norm["microct_window"]),
            (f"micro-CT ({bv['micro-CT']:.3f})", microct, norm["microct_window"]),
        ], vois, title=f"held-out {case['case']} ({word} of {len(cases)} by micro-CT BV/TV)", half_size_mm=8.5)
    print(f"wrote {out}/bvtv_scatter.png, sparse.png, dense.png")


if __name__ == "__main__":
    main()
