"""The study report of a cohort evaluation: tables (CSV, Markdown), figures, one HTML file.

``write_study_report(results, out_dir)`` writes into ``out_dir``:

* ``results.json`` — the raw per-case results, the models, the similarity and measurement recipes;
* ``report.json`` — every table (numbers unrounded) and the figure names;
* ``tables/<name>.csv`` and ``report.md`` — Tables 1-4, the headline R²/ICC table,
  per-specimen SSIM and the assumption checks;
* ``figures/*.png`` — box plots of SSIM/FID per method, regression scatter and
  Bland-Altman plots per metric and method, a slice of every method beside micro-CT;
* ``report.html`` — one self-contained page (figures embedded).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Dict, List, Mapping

from .report import write_json
from .tables import all_tables, format_cell, markdown, write_csv


def write_study_report(results: Mapping[str, Any], out_dir, *, figures: bool = True,
                       command: str = "") -> Dict[str, Any]:
    """Write the report files; returns {"tables": [...], "figures": [...], "paths": {...}}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    built = all_tables(results)
    tables = built["tables"]
    recipe_note = measurement_recipe_text(results)
    for table in tables:  # the caption of every table of BoneJ metrics names the recipe
        if table["name"].startswith(METRIC_TABLES):
            table["notes"] = list(table.get("notes", [])) + [recipe_note]
    for table in tables:
        write_csv(table, out / "tables" / f"{table['name']}.csv")
    figure_list: List[Dict[str, str]] = []
    if figures:
        from .figures import study_figures

        figure_list = study_figures(results, built["data"], out / "figures")
    write_json(results, out / "results.json")
    summary = {"cohort": results["cohort"], "split": results["split"], "models": results["models"],
               "similarity_recipe": results["similarity_recipe"],
               "measurement_recipe": results.get("measurement_recipe", "study"),
               "measurement": results.get("measurement", {"threshold": "isodata", "voxel_mm": None}),
               "fid_status": results["fid_status"],
               "n_specimens": len(built["data"]["cases"]), "n_vois": len(built["data"]["units"]),
               "tables": [{k: t[k] for k in ("name", "title", "columns", "rows", "notes")} for t in tables],
               "figures": figure_list, "timings_s": results.get("timings_s"), "command": command,
               "warnings": _warnings(results)}
    write_json(summary, out / "report.json")
    md = _markdown(summary, tables, figure_list)
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "report.html").write_text(_html(summary, tables, figure_list, out), encoding="utf-8")
    return {"tables": tables, "figures": figure_list, "summary": summary,
            "paths": {"html": out / "report.html", "markdown": out / "report.md", "json": out / "report.json"}}


#: names (prefixes) of the tables whose numbers are BoneJ metrics measured with the recipe
METRIC_TABLES = ("table3_metrics", "table4_agreement", "headline", "checks")


def measurement_recipe_text(results: Mapping[str, Any]) -> str:
    """One sentence naming the measurement recipe of every volume (the study's IsoData when unnamed)."""
    recipe = results.get("measurement_recipe", "study")
    if recipe == "gold":
        how = "every volume resampled to a common 0.052 mm grid, marrow/bone midpoint threshold"
    else:
        how = "ImageJ IsoData threshold on each volume's own voxels"
    return f"Measurement recipe: {recipe} ({how}); the same for every volume."


def _warnings(results) -> List[str]:
    notes: List[str] = []
    for case in results["cases"]:
        notes += case["reference"].get("warnings", [])
        for record in case["models"].values():
            notes += record.get("warnings", [])
    return list(dict.fromkeys(notes))


def _intro(summary) -> List[str]:
    models = ", ".join(f"{name} ({info.get('architecture')}, {info.get('preset')} width, step {info.get('step')})"
                       for name, info in summary["models"].items())
    recipe = summary["similarity_recipe"]
    return [
        f"Cohort `{summary['cohort']}`, split `{summary['split']}`: {summary['n_specimens']} specimens, "
        f"{summary['n_vois']} standard VOIs. Models: {models}.",
        f"SSIM: {recipe['ssim']}; 8-bit through MDCT window {recipe['mdct_window_hu']} HU and micro-CT window "
        f"{[round(v, 1) for v in recipe['microct_window']]} for every micro-CT-valued image. Overall = "
        f"{recipe['overall']}; cancellous = {recipe['cancellous']}.",
        summary["fid_status"],
        "Metrics: BoneJ-exact BV/TV, Tb.Th, Tb.Sp (Tb.Sp policy margin) in the standard VOIs placed "
        "automatically on the MDCT; unit of analysis the VOI (metrics) or the specimen (similarity), never the "
        "slice. " + measurement_recipe_text(summary),
    ]


def _markdown(summary, tables, figures) -> str:
    parts = ["# MicroCTLike cohort evaluation", ""] + [f"- {line}" for line in _intro(summary)] + [""]
    if summary.get("command"):
        parts += ["Command:", "", "```", summary["command"], "```", ""]
    for table in tables:
        parts.append(markdown(table))
    if figures:
        parts += ["## Figures", ""] + [f"![{f['title']}]({f['path']})" for f in figures] + [""]
    if summary["warnings"]:
        parts += ["## Measurement notes", ""] + [f"- {w}" for w in summary["warnings"]] + [""]
    return "\n".join(parts) + "\n"


def _html_table(table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table["columns"])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_cell(c))}</td>" for c in row) + "</tr>"
                   for row in table["rows"])
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in table.get("notes", []))
    return (f"<h2>{html.escape(table['title'])}</h2><div class='scroll'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>{notes}")


def _html(summary, tables, figures, out: Path) -> str:
    parts = ["<h1>MicroCTLike cohort evaluation</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in _intro(summary)]
    parts.append("</ul>")
    if summary.get("command"):
        parts.append(f"<pre>{html.escape(summary['command'])}</pre>")
    for table in tables:
        parts.append(_html_table(table))
    if figures:
        parts.append("<h2>Figures</h2>")
    for figure in figures:
        data = base64.b64encode((out / figure["path"]).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(figure['title'])}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(figure['title'])}</figcaption></figure>")
    if summary["warnings"]:
        parts.append("<h2>Measurement notes</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>"
                                                               for w in summary["warnings"]) + "</ul>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #bbb;padding:3px 7px;"
             "text-align:right}td:first-child,td:nth-child(2){text-align:left}th{background:#eee}"
             ".scroll{overflow-x:auto}.note{font-size:12px;color:#555;margin:4px 0}img{max-width:100%}"
             "figure{margin:1.5em 0}figcaption{font-size:13px;color:#444}"
             # the command line wraps inside the page instead of running off it
             "pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:6px 8px;font-size:13px}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>MicroCTLike cohort evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
