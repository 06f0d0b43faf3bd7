"""Button states of the module panel, derived from the parameter state only."""

from __future__ import annotations

from typing import Dict


def action_states(*, has_input: bool, has_vois: bool, generating: bool, measuring: bool = False,
                  has_table: bool = False, table_stale: bool = False) -> Dict[str, tuple]:
    """Enabled flag, tooltip and label of each module button, derived from the parameter state.

    Returns ``{button_name: (enabled, tooltip, text)}``; the widget only copies these.
    """
    busy = generating or measuring
    if generating:
        generate = (True, "Stop the running generation (its process tree is killed; nothing is written).", "Cancel")
    elif measuring:
        generate = (False, "Wait for the measurement to finish.", "Generate")
    elif has_input:
        generate = (True, "Generate the micro-CT-like volume from the selected MDCT volume into a new volume.",
                    "Generate")
    else:
        generate = (False, "Select an MDCT volume first.", "Generate")
    place = (
        (has_input and not busy),
        "Find the vertebral body and place (or move back) the two standardized VOIs." if has_input
        else "Select an MDCT volume first.",
        "Place standard VOIs",
    )
    if not has_input:
        measure = (False, "Select an MDCT volume first.", "Measure")
    elif not has_vois:
        measure = (False, "Place the standard VOIs (or select ROI nodes) first.", "Measure")
    else:
        measure = (not busy, "Measure BV/TV, Tb.Th and Tb.Sp in the VOIs.",
                   "Measure (VOIs moved)" if table_stale else "Measure")
    export = (has_table and not busy, "Save the metrics table as a CSV file." if has_table else "Measure first.",
              "Export CSV")
    return {"generateButton": generate, "placeStandardVOIsButton": place, "measureButton": measure,
            "exportCsvButton": export}
