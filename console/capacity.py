"""How many runs may start now: free slots and machine headroom (psutil memory and CPU).

A job starts only when a slot is free and the machine has headroom.  Headroom is only
demanded for an *additional* job: when nothing of ours is running a job always starts,
so a machine busy with other work slows the queue down but never stalls it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from console.settings import QueueSettings


@dataclass(frozen=True)
class Headroom:
    """A reading of the machine: available memory and recent CPU use."""

    free_memory_mb: float
    cpu_percent: float


def psutil_headroom() -> Headroom:
    """Read available memory and CPU use since the previous reading (non-blocking)."""
    import psutil  # deferred: only workers need it

    memory = psutil.virtual_memory().available / (1024 * 1024)
    return Headroom(free_memory_mb=memory, cpu_percent=psutil.cpu_percent(interval=None))


class Capacity:
    """Slots plus headroom.  Use :meth:`acquire` / :meth:`release` around each job.

    ``probe`` reads the machine (psutil by default; tests inject their own).  Readings are
    cached for ``probe_interval`` seconds so a busy queue does not scan the machine for
    every job.
    """

    def __init__(
        self,
        slots: int,
        *,
        min_free_memory_mb: float = 0.0,
        max_cpu_percent: float = 100.0,
        probe: Callable[[], Headroom] | None = None,
        probe_interval: float = 0.5,
        recheck: float = 0.25,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.min_free_memory_mb = min_free_memory_mb
        self.max_cpu_percent = max_cpu_percent
        self._probe = probe or psutil_headroom
        self._probe_interval = probe_interval
        self._recheck = recheck
        self._reading: Headroom | None = None
        self._read_at = 0.0
        self.running = 0
        self.peak = 0
        self._changed: asyncio.Condition | None = None

    @classmethod
    def from_settings(cls, settings: QueueSettings, slots: int | None = None) -> Capacity:
        """Capacity with the thresholds of ``settings.queue``."""
        return cls(
            slots or settings.slots,
            min_free_memory_mb=settings.min_free_memory_mb,
            max_cpu_percent=settings.max_cpu_percent,
        )

    @property
    def free(self) -> int:
        """Free slots (headroom not considered)."""
        return self.slots - self.running

    def headroom(self) -> Headroom:
        """The latest machine reading (cached for ``probe_interval`` seconds)."""
        now = time.monotonic()
        if self._reading is None or now - self._read_at >= self._probe_interval:
            self._reading = self._probe()
            self._read_at = now
        return self._reading

    def has_headroom(self) -> bool:
        """Whether the machine can take one more job."""
        if self.running == 0:
            return True
        reading = self.headroom()
        return (
            reading.free_memory_mb >= self.min_free_memory_mb
            and reading.cpu_percent <= self.max_cpu_percent
        )

    def can_start(self) -> bool:
        """A slot is free and the machine has headroom."""
        return self.free > 0 and self.has_headroom()

    def try_acquire(self) -> bool:
        """Take a slot now if a job may start; returns whether it did."""
        if not self.can_start():
            return False
        self.running += 1
        self.peak = max(self.peak, self.running)
        return True

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self) -> None:
        """Wait until a job may start and take a slot."""
        changed = self._condition()
        async with changed:
            while not self.try_acquire():
                if self.free > 0:
                    # A slot is free but the machine is busy: look again shortly.
                    try:
                        await asyncio.wait_for(changed.wait(), self._recheck)
                    except TimeoutError:
                        pass
                else:
                    await changed.wait()

    async def release(self) -> None:
        """Give a slot back."""
        if self.running <= 0:
            raise RuntimeError("release() without acquire()")
        self.running -= 1
        changed = self._condition()
        async with changed:
            changed.notify_all()
