"""MRML glue shared by the Slicer module and other MRML front-ends (e.g. a trame-slicer web app).

Everything here works on a real MRML scene (testable outside Slicer with the ``slicer-core``
wheel) and never imports qt, ctk or ``slicer.app``; ``slicer``/``vtk`` are imported inside
the functions, so importing the package without slicer-core is harmless.

- :mod:`.nodes`     volume nodes <-> :class:`~MicroCTLikeLib.volume.Volume` (RAS <-> LPS)
- :mod:`.vois`      the two cylindrical VOIs as ROI nodes of fixed size, their cylinder models,
                    standard placement, :class:`~.vois.VOIFollower` (models follow a dragged ROI)
- :mod:`.tables`    measuring volume nodes in ROIs, the one metrics table node, CSV export
- :mod:`.gui_state` button states derived from the parameter state
- :mod:`.process`   a child process with streamed progress lines and cancel of its whole tree
- :mod:`.worker`    the generation worker (input node -> temporary NRRD -> child -> new output
                    node) and the region it generates (the VOIs plus a margin)
"""

from .gui_state import action_states
from .nodes import LPS_TO_RAS, node_from_volume, volume_from_node
from .tables import (
    export_table_csv,
    find_metrics_table,
    mark_table_stale,
    measure_volumes_in_rois,
    metrics_table_node,
    place_in_study,
    table_is_stale,
    table_rows,
    warm_up_measurement,
)
from .vois import (
    STANDARD_ROI_SIZE_MM,
    VOI_ROLES,
    VOIFollower,
    cylinder_from_roi,
    cylinder_model_node,
    cylinder_model_of,
    enforce_roi_size,
    find_voi_roi,
    place_standard_vois,
    roi_node_from_cylinder,
    set_voi_roi,
    voi_roi_nodes,
    vois_region_lps,
)
from .worker import (
    cleanup_generation_worker,
    estimate_generation_memory,
    finish_generation_worker,
    generation_region,
    generation_report_text,
    parse_generation_summary,
    start_generation_worker,
)

__all__ = [
    "LPS_TO_RAS", "STANDARD_ROI_SIZE_MM", "VOIFollower", "VOI_ROLES", "action_states", "cleanup_generation_worker",
    "cylinder_from_roi", "cylinder_model_node", "cylinder_model_of", "enforce_roi_size", "estimate_generation_memory",
    "export_table_csv", "find_metrics_table", "find_voi_roi", "finish_generation_worker", "generation_region",
    "generation_report_text", "mark_table_stale", "measure_volumes_in_rois", "metrics_table_node", "node_from_volume",
    "parse_generation_summary", "place_in_study", "place_standard_vois", "roi_node_from_cylinder", "set_voi_roi",
    "start_generation_worker", "table_is_stale", "table_rows", "voi_roi_nodes", "vois_region_lps", "volume_from_node",
    "warm_up_measurement",
]
