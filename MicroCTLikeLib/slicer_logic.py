"""Former home of the MRML glue, kept so existing imports work: see :mod:`MicroCTLikeLib.mrml`."""

from .mrml import (
    LPS_TO_RAS,
    action_states,
    cleanup_generation_worker,
    cylinder_from_roi,
    cylinder_model_node,
    finish_generation_worker,
    measure_volumes_in_rois,
    metrics_table_node,
    node_from_volume,
    place_standard_vois,
    roi_node_from_cylinder,
    start_generation_worker,
    volume_from_node,
)

__all__ = [
    "LPS_TO_RAS", "action_states", "cleanup_generation_worker", "cylinder_from_roi", "cylinder_model_node",
    "finish_generation_worker", "measure_volumes_in_rois", "metrics_table_node", "node_from_volume",
    "place_standard_vois", "roi_node_from_cylinder", "start_generation_worker", "volume_from_node",
]
