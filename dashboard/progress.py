"""The one adapter from the engine's progress events (``xai_core.progress.Progress``) to ``st.progress``.

``progress_bar(text, describe)`` draws a bar and returns it with the ``ProgressFn`` that moves it; ``describe``
turns an event into (fraction, text), or None to leave the bar as it is. ``as_shown`` (the default) shows
the event's own fraction and message; ``training_text`` the epoch, loss and validation score of a training.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from xai_core.progress import Progress, ProgressFn

Describe = Callable[[Progress], tuple[float, str] | None]


def as_shown(e: Progress) -> tuple[float, str]:
    """The event's fraction and message."""
    return e.fraction, e.message


def training_text(e: Progress) -> tuple[float, str] | None:
    """``epoch k/n · loss · validation`` of a training's epoch event; None when training starts."""
    if not e.done:
        return None
    return e.fraction, (f"epoch {e.done}/{e.total} · loss {e.stats.get('train_loss', float('nan')):.3f} · "
                        f"validation {e.stats.get('val_score', float('nan')):.3f}")


def follow(bar: Any, describe: Describe = as_shown) -> ProgressFn:
    """The callback that moves ``bar`` (an ``st.progress``) to ``describe(event)``, clipped to [0, 1]."""

    def update(e: Progress) -> None:
        shown = describe(e)
        if shown is not None:
            bar.progress(min(max(float(shown[0]), 0.0), 1.0), text=shown[1])

    return update


def progress_bar(text: str, describe: Describe = as_shown) -> tuple[Any, ProgressFn]:
    """A progress bar showing ``text`` and the engine callback that moves it (see ``follow``)."""
    bar = st.progress(0.0, text=text)
    return bar, follow(bar, describe)
