"""Reports: the side-by-side figure with the VOIs, and JSON / Markdown / HTML writers.

matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np

from .similarity import sample_on_grid
from ..volume import Volume

#: Rows of the metrics table: (label, key, format).
METRIC_COLUMNS = (("BV/TV", "bv_tv", "{:.3f}"), ("Tb.Th (mm)", "tb_th_mm", "{:.3f}"), ("Tb.Sp (mm)", "tb_sp_mm", "{:.3f}"))


def _plane(centre_lps: np.ndarray, u_lps: np.ndarray, v_lps: np.ndarray, half_size_mm: Tuple[float, float],
           pixel_mm: float) -> Volume:
    """A one-slice reference grid: rows along ``v``, columns along ``u``, centred on ``centre``."""
    n_u = int(round(2 * half_size_mm[0] / pixel_mm))
    n_v = int(round(2 * half_size_mm[1] / pixel_mm))
    w = np.cross(u_lps, v_lps)
    direction = np.stack([u_lps, v_lps, w], axis=1)
    origin = centre_lps - u_lps * half_size_mm[0] - v_lps * half_size_mm[1] + (u_lps + v_lps) * pixel_mm / 2
    return Volume(np.zeros((1, n_v, n_u), np.float32), spacing_xyz_mm=(pixel_mm, pixel_mm, 1.0),
                  origin_lps_mm=tuple(origin), direction_lps=direction)


def comparison_figure(path, panels: Sequence[Tuple[str, Volume, Sequence[float]]], vois: Sequence, *,
                      title: str = "", half_size_mm: float = 12.0, pixel_mm: float = 0.04) -> Path:
    """Save a PNG: one column per volume; row 1 the axial plane through the first VOI's centre,
    row 2 the sagittal plane through both VOIs' centres; the VOIs drawn on every panel.

    ``panels`` = (label, volume, display window); ``vois`` = CylinderVOI objects (axis ~ z).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    centres = np.array([v.centre_lps_mm for v in vois])
    axial_centre = centres[0]
    sagittal_centre = centres.mean(axis=0)
    axial = _plane(axial_centre, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (half_size_mm, half_size_mm), pixel_mm)
    # sagittal: columns along y (anterior -> posterior), rows along -z (superior at the top)
    sagittal = _plane(sagittal_centre, np.array([0, 1.0, 0]), np.array([0, 0, -1.0]), (half_size_mm, 8.0), pixel_mm)
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7.4), facecolor="black",
                             gridspec_kw={"height_ratios": [half_size_mm, 8.0]})
    axes = np.atleast_2d(axes)
    for column, (label, volume, window) in enumerate(panels):
        for row, (plane, centre) in enumerate(((axial, axial_centre), (sagittal, sagittal_centre))):
            ax = axes[row, column]
            image = sample_on_grid(volume, plane, antialias=False)[0]
            half_v = plane.shape_zyx[1] * pixel_mm / 2
            ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest",
                      extent=(-half_size_mm, half_size_mm, half_v, -half_v))
            for voi in vois:
                offset = np.asarray(voi.centre_lps_mm) - centre
                if row == 0:
                    if abs(offset[2]) <= voi.height_mm / 2 + 1e-6:
                        ax.add_patch(Circle((offset[0], offset[1]), voi.diameter_mm / 2, fill=False, color="gold", lw=1.2))
                else:
                    ax.add_patch(Rectangle((offset[1] - voi.diameter_mm / 2, -offset[2] - voi.height_mm / 2),
                                           voi.diameter_mm, voi.height_mm, fill=False, color="gold", lw=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, color="white", fontsize=11)
        axes[0, 0].set_ylabel("axial (superior VOI)\nanterior at top", color="white", fontsize=9)
        axes[1, 0].set_ylabel("sagittal\nsuperior at top, anterior left", color="white", fontsize=9)
    if title:
        fig.suptitle(title, color="white", fontsize=12)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, facecolor="black")
    plt.close(fig)
    return path


def metrics_table_rows(measurements: Mapping[str, Sequence[Mapping[str, Any]]]) -> List[List[str]]:
    """Table cells: one row per (volume, VOI) with BV/TV, Tb.Th, Tb.Sp and how it was measured."""
    rows = []
    for volume_label, entries in measurements.items():
        for entry in entries:
            cells = [volume_label, str(entry.get("voi_name", ""))]
            cells += [fmt.format(entry[key]) if entry.get(key) is not None else "n/a" for _, key, fmt in METRIC_COLUMNS]
            threshold = entry.get("threshold")
            cells.append(f"{entry.get('threshold_method')} {'' if threshold is None else threshold}".strip())
            rows.append(cells)
    return rows


TABLE_HEADER = ["Volume", "VOI"] + [label for label, _, _ in METRIC_COLUMNS] + ["Threshold"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_json(data: Any, path) -> Path:
    """Atomic JSON write (NaN written as null)."""
    from ..outputs import write_json_atomic

    return write_json_atomic(_jsonable(data), path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_markdown_and_html(directory, *, title: str, intro: str, figure_name: str,
                            tables: Sequence[Tuple[str, Sequence[str], Sequence[Sequence[str]]]],
                            notes: Sequence[str]) -> Tuple[Path, Path]:
    """``report.md`` and ``report.html`` in ``directory`` (figure referenced by relative path)."""
    directory = Path(directory)
    md = [f"# {title}", "", intro, "", f"![figure]({figure_name})", ""]
    for caption, header, rows in tables:
        md += [f"## {caption}", "", markdown_table(header, rows), ""]
    md += ["## Notes", ""] + [f"- {n}" for n in notes]
    (directory / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
             f'<img src="{html.escape(figure_name)}" style="max-width:100%">']
    for caption, header, rows in tables:
        parts += [f"<h2>{html.escape(caption)}</h2>", html_table(header, rows)]
    parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul>"]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #999;padding:3px 8px;text-align:right}th{background:#eee}")
    (directory / "report.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n", encoding="utf-8")
    return directory / "report.md", directory / "report.html"


def dumps(data: Any) -> str:
    return json.dumps(_jsonable(data), indent=2)
