"""MicroCTLike in the browser: a trame-slicer front-end on Slicer's own MRML (optional extra ``web``).

``microctlike web`` starts :mod:`.launcher`, a small front server that checks the access
token and gives every browser tab its own session process (:mod:`.session`: one MRML
scene, three slice views, the panel). The MRML work itself (volume <-> node, ROI <-> VOI,
cylinders, metrics, the generation worker) is the library's MRML glue shared with the
Slicer module; nothing here copies it. :mod:`.security` holds the checks every request
and upload passes (stdlib only, testable without trame).

Importing this package imports nothing heavy; trame, VTK and slicer-core are imported by
the session process only.
"""
