"""The one base class of the errors tc3d reports to a user.

Every error that tc3d raises on purpose derives from :class:`TC3DError`, whose ``str()`` is one
line a user can act on ("runs/x/best.pt: model file not found"). The command line prints it as
``tc3d: error: <line>`` and exits 1; the web page returns it as ``{"error": "<line>"}``; the
Python API lets it propagate. Errors of other libraries that tc3d wraps are reduced to one line
by :func:`first_line`, so no front end ever shows a multi-line message or a traceback by
accident.
"""

from __future__ import annotations


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of a message, or the exception's type name when it has none."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


class TC3DError(Exception):
    """An error a user can act on; ``str(e)`` is its first line."""

    def __str__(self) -> str:
        return first_line(super().__str__()) or type(self).__name__
