"""The floor under an upload's rate: a slow or abandoned import cannot hold a slot.

After a grace period of one window, every window of `window_seconds` must bring at least
`bytes_per_second * window_seconds` bytes. `deadline()` tells when the upload falls
below that if nothing more arrives, so the reader waits no longer than that for its next
chunk: a client that trickles bytes is cut off as surely as one that sends none.
"""

from __future__ import annotations

import math
from collections import deque

# Arrivals closer together than window / this are kept as one sample (the later bytes
# counted at the earlier time: at most that much stricter), so a window holds a bounded
# number of samples whatever the chunk sizes.
SAMPLES_PER_WINDOW = 64


class RateFloor:
    def __init__(self, bytes_per_second: float, window_seconds: float, *, now: float) -> None:
        self.bytes_per_second = bytes_per_second
        self.window_seconds = window_seconds
        self._need = bytes_per_second * window_seconds
        self._started = now
        self._total = 0
        # (time, bytes received by then), oldest first; the first at or before the
        # window's start, so the bytes received before the window are known.
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])

    def received(self, size: int, *, now: float) -> None:
        self._total += size
        last_time, _ = self._samples[-1]
        if len(self._samples) > 1 and now - last_time < self.window_seconds / SAMPLES_PER_WINDOW:
            self._samples[-1] = (last_time, self._total)
        else:
            self._samples.append((now, self._total))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window_seconds:
            self._samples.popleft()

    def deadline(self) -> float:
        """The time at which, with no more bytes, the last window would hold fewer bytes
        than the floor asks for (infinity for a floor of 0)."""
        enough_before = self._total - self._need  # bytes before the window may be at most
        for time, received in self._samples:
            if received > enough_before:
                return max(time, self._started) + self.window_seconds
        return math.inf
