"""A small exception hierarchy: every error a user can cause is a `MasError`.

The CLI prints a `MasError` as one line and exits non-zero; anything else is a bug
and shows a traceback only with `--debug`.
"""

from __future__ import annotations


class MasError(Exception):
    """Base class for errors caused by input (files, arguments, servers), not by bugs."""


class ScenarioError(MasError):
    """A scenario file is missing, malformed or invalid; `problems` lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None, source: str = "") -> None:
        super().__init__(message)
        self.problems = problems or [message]
        self.source = source


class UnknownNameError(MasError):
    """A registry name (game, policy, topology) is not known."""


class StoreError(MasError):
    """A run directory or its database is missing, corrupt or of another schema."""


class MissingExtraError(MasError):
    """An optional dependency is not installed; the message names the extra."""


class PluginError(MasError):
    """An installed plugin (an entry point of mas.games, mas.policies, mas.backends or
    mas.metrics) clashes with another name or does not load."""
