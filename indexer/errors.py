"""The project's domain errors: one base class, so the CLI can tell a user's mistake from a bug.

A domain error's message says what is wrong and what to do; ``autocomplete`` prints it and exits
with code 2. Anything else is an internal bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations


class AutocompleteError(Exception):
    """Base of every error whose message is meant for the person running the command."""


class ConfigError(AutocompleteError, ValueError):
    """A configuration section is missing a key, has an unknown one, or a value of the wrong type."""


class LogFormatError(ConfigError):
    """A query log cannot be read as configured: a missing file or column, no usable row, an empty split."""


class ModelFileError(AutocompleteError, ValueError):
    """A model file is missing, truncated, corrupt or of another format version: rebuild the model."""
