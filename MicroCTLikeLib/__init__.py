"""MicroCTLikeLib: micro-CT-like volumes from clinical CT and BoneJ-exact bone morphometry.

Pure Python; importable without 3D Slicer. torch is imported only by the model, training
and inference sub-packages, so measuring a volume never pays torch's import.
"""

__version__ = "0.1.0"

from .errors import MicroCTLikeError  # noqa: F401
