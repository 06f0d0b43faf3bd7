"""Cylindrical volumes of interest: geometry, voxel masks and the study's standard placement.

* :class:`CylinderVOI` - a cylinder in LPS mm (15 mm x 5 mm by default), with the
  object-to-world matrix that drives a Slicer ROI node.
* :func:`cylinder_mask` / :func:`cylinder_occupancy` - its voxels in any volume geometry.
* :func:`place_standard_vois` - the two standardized VOIs of the study's Figure 5, found
  automatically in an MDCT or micro-CT volume of a vertebral body.
"""

from .cylinder import (  # noqa: F401
    STANDARD_DIAMETER_MM,
    STANDARD_HEIGHT_MM,
    CylinderVOI,
    lps_to_ras,
    ras_to_lps,
)
from .mask import (  # noqa: F401
    check_voi_inside,
    crop_to_voi,
    crop_volume,
    cylinder_mask,
    cylinder_occupancy,
    voi_index_bounds,
    voi_slices,
)
from .placement import BodyDetection, StandardPlacement, detect_vertebral_body, place_standard_vois  # noqa: F401
