"""Following a running fit for a view: the newest free values, handed on at
most a few times a second.

The fit's thread offers values with every chunk (:meth:`FitFollower.offer`);
the follower keeps only the newest and calls ``show(theta)`` when the last
call is at least ``1 / max_per_second`` seconds ago. :meth:`FitFollower.flush`
shows what is left (when the run stops or ends). No widgets and no physics:
the view decides what ``theta`` means and how to draw it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

__all__ = ["FitFollower"]


class FitFollower:
    """Throttled hand-over of a fit's newest free values to ``show``.

    Args:
        show: called with ``theta`` (free values, 1-d array), in the thread
            that offered them or the one that flushes.
        max_per_second: at most this many calls of ``show`` a second.

    Attributes:
        pending: the newest values not shown yet (None if none).
    """

    def __init__(self, show: Callable[[np.ndarray], None], max_per_second: float = 3.0):
        self.show = show
        self.max_per_second = float(max_per_second)
        self.pending: np.ndarray | None = None
        self._last_shown = 0.0
        self._lock = threading.Lock()

    def offer(self, theta) -> bool:
        """Keep ``theta`` as the newest values and show them if the last
        show is long enough ago; returns whether they were shown."""
        with self._lock:
            self.pending = np.asarray(theta, dtype=float)
            now = time.monotonic()
            if now - self._last_shown < 1.0 / self.max_per_second:
                return False
            self._last_shown = now
        self.flush()
        return True

    def flush(self) -> None:
        """Show the pending values, if any."""
        with self._lock:
            theta, self.pending = self.pending, None
        if theta is not None:
            self.show(theta)

    def clear(self) -> None:
        """Forget the pending values and the time of the last show (a new
        run's first values are shown at once)."""
        with self._lock:
            self.pending = None
            self._last_shown = 0.0
