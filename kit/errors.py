"""The errors `kit` raises on bad input; each message names what is wrong and where."""
from __future__ import annotations


class KitError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits non-zero."""


class DataError(KitError, ValueError):
    """A dataset file is malformed or inconsistent (the message names file and line)."""


class ModelLoadError(KitError, OSError):
    """A model name or path could not be loaded (the message names the model and the options)."""
