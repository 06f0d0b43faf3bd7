"""MRML glue shared by the Slicer module and other MRML front-ends (e.g. a trame-slicer web app).

Everything here works on a real MRML scene (testable outside Slicer with the ``slicer-core``
wheel) and never imports qt, ctk or ``slicer.app``; ``slicer``/``vtk`` are imported inside
the functions, so importing the package without slicer-core is harmless.

- :mod:`.nodes`     volume nodes <-> :class:`~MicroCTLikeLib.volume.Volume` (RAS <-> LPS)
- :mod:`.vois`      cylindrical VOIs <-> ROI nodes, cylinder models, standard placement
- :mod:`.tables`    measuring volume nodes in ROIs, the metrics table node
- :mod:`.gui_state` button states derived from the parameter state
- :mod:`.process`   a child process with streamed progress lines and cancel
- :mod:`.worker`    the generation worker (input node -> temporary NRRD -> child -> output node)
"""

from .gui_state import action_states
from .nodes import LPS_TO_RAS, node_from_volume, volume_from_node
from .tables import measure_volumes_in_rois, metrics_table_node
from .vois import cylinder_from_roi, cylinder_model_node, place_standard_vois, roi_node_from_cylinder
from .worker import cleanup_generation_worker, finish_generation_worker, start_generation_worker

__all__ = [
    "LPS_TO_RAS", "action_states", "cleanup_generation_worker", "cylinder_from_roi", "cylinder_model_node",
    "finish_generation_worker", "measure_volumes_in_rois", "metrics_table_node", "node_from_volume",
    "place_standard_vois", "roi_node_from_cylinder", "start_generation_worker", "volume_from_node",
]
