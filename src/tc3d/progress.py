"""The one progress protocol: how long work tells its caller how far it has come.

Library functions that take a while accept ``progress: Progress | None`` and call it as
``progress(done, total)`` or ``progress(done, total, {"loss": 0.41})`` (``info``: a few
figures worth showing beside the bar; ``{"stage": name}`` starts a named phase). They never
print: the command line adapts this to a rich progress bar on stderr, the web page to a
percentage, tests to a list.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, info: dict | None = None) -> None: ...


def report(progress: Progress | None, done: int, total: int, info: dict | None = None) -> None:
    """Call ``progress`` when there is one (a shorthand for the optional argument)."""
    if progress is not None:
        progress(done, total, info)
