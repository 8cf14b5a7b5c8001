"""The errors amp_ros raises: one base class, a few specific ones, each with a clear message."""

from __future__ import annotations


class AmpError(Exception):
    """Base class of every error amp_ros raises on purpose."""


class InputError(AmpError, ValueError):
    """A frame, flow field or mask has the wrong shape, dtype, encoding or values."""


class EmptyMaskError(InputError):
    """A mask selects no pixel, so no proxy can be computed from it."""


class UnknownClassError(AmpError, KeyError):
    """A class name that the classifier does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown class"


class CheckpointError(AmpError):
    """A checkpoint is missing, corrupt, or its config and tensors disagree."""


class StateError(AmpError):
    """A saved state file (taught classes) cannot be read or written."""
