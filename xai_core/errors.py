"""User-facing errors: one line that names the problem and the fix.

The CLI prints ``XaiError`` messages without a traceback; the dashboard shows them in the page.
"""
from __future__ import annotations

from collections.abc import Iterable


class XaiError(Exception):
    """An error caused by the user's choice or input, with a message that says how to fix it."""


class UnknownChoice(XaiError, KeyError):
    """A name that is not in a registry.

    Also a ``KeyError``. The message lists the valid choices: ``unknown KIND 'NAME'; valid choices: a, b``.

    Parameters
    ----------
    kind : str
        What was looked up (``method``, ``metric``, ``dataset`` ...).
    name : str
        The name given.
    valid : iterable of str
        The valid names (kept sorted in ``valid``).
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} '{name}'; valid choices: {', '.join(self.valid)}")

    def __str__(self) -> str:
        """The message as given (``KeyError`` would quote it)."""
        return self.args[0]


class NotApplicable(XaiError):
    """A valid choice that does not apply here (e.g. GradCAM on a model without convolutions)."""
