"""The export stage's errors; each message says what is wrong and how to fix it."""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export step could not complete (converter failed, files missing)."""


class UnsupportedAdapter(ValueError):
    """The adapter uses a PEFT feature that the streaming merge does not handle."""


class NotEnoughResources(ExportError):
    """Not enough free disk or RAM for the export; the message names what is needed and what is available."""


class ParityFailed(ExportError):
    """The exported model does not compute what the merged model computes; the files are kept, marked failed."""


class HubUnavailable(ExportError):
    """The Hugging Face Hub cannot be reached, or no token was given."""


class UnsupportedFormat(ValueError):
    """A GGUF format name labkit does not write; the message names the setting and the formats it does write."""
