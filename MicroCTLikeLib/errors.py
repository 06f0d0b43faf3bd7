"""Exceptions of MicroCTLike.

Every error the library raises on purpose derives from :class:`MicroCTLikeError`, so the
command line can print it without a traceback and exit non-zero, and the Slicer module can
show it in a dialog. Subclasses also derive from the matching built-in (ValueError, ...)
so callers that catch the built-in still work.
"""


class MicroCTLikeError(Exception):
    """Base class of every error MicroCTLike raises deliberately."""


class InvalidVolumeError(MicroCTLikeError, ValueError):
    """A volume (array or file) cannot be used: not 3-D, empty, NaN, bad spacing, unreadable."""


class InvalidParameterError(MicroCTLikeError, ValueError):
    """A parameter is out of its allowed range or inconsistent with the data."""


class VOIError(MicroCTLikeError, ValueError):
    """A volume of interest leaves the volume, holds no voxel, or holds no bone."""


class CheckpointError(MicroCTLikeError, ValueError):
    """A checkpoint is corrupt, of another architecture, or of a newer format."""


class CancelledError(MicroCTLikeError):
    """Long work was cancelled by the user (progress callback asked to stop)."""


class OutputError(InvalidParameterError):
    """An output path cannot be used: it is an input, exists without --force, is not writable, ..."""


class MeasurementQualityError(MicroCTLikeError, ValueError):
    """A measurement's own check failed and strict mode was asked for (histogram not bimodal, ...)."""
