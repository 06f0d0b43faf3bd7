"""Button states of the module panel, derived from the parameter state only."""

from __future__ import annotations

from typing import Dict


def action_states(*, has_input: bool, has_vois: bool, generating: bool) -> Dict[str, tuple]:
    """Enabled flag, tooltip and label of each module button, derived from the parameter state.

    Returns ``{button_name: (enabled, tooltip, text)}``; the widget only copies these.
    """
    if generating:
        generate = (True, "Stop the running generation (nothing is written).", "Cancel")
    elif has_input:
        generate = (True, "Generate the micro-CT-like volume from the selected MDCT volume.", "Generate")
    else:
        generate = (False, "Select an MDCT volume first.", "Generate")
    place = (
        (has_input and not generating),
        "Find the vertebral body and place the two standardized VOIs." if has_input else "Select an MDCT volume first.",
        "Place standard VOIs",
    )
    if not has_input:
        measure = (False, "Select an MDCT volume first.", "Measure")
    elif not has_vois:
        measure = (False, "Place the standard VOIs (or select ROI nodes) first.", "Measure")
    else:
        measure = (not generating, "Measure BV/TV, Tb.Th and Tb.Sp in the VOIs.", "Measure")
    return {"generateButton": generate, "placeStandardVOIsButton": place, "measureButton": measure}


