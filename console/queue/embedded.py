"""The embedded queue: jobs live in SQLite (``storage.jobs``) and run in this process.

Queued and in-flight jobs survive a restart: a lease held by a process that is gone is
put back on start.  With ``drain=True`` (``verdict run``) :meth:`get` returns None once
nothing is queued; otherwise it waits for new jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from console.model import Job
from console.queue.base import Delivery
from storage import jobs as job_store
from storage.db import Database

RECOVER_EVERY = 4  # idle polls between looks for leases of processes that died


class EmbeddedQueue:
    """A SQLite-backed job queue (see the module docstring)."""

    kind = "embedded"

    def __init__(
        self,
        db: Database,
        *,
        drain: bool = True,
        owner: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.db = db
        self.drain = drain
        self.owner = owner or job_store.process_owner()
        self.poll_interval = poll_interval
        self.recovered = 0
        self._closed = False
        self._handed_out = False
        self._wakeup = asyncio.Event()

    async def start(self) -> None:
        """Requeue jobs leased by processes that no longer exist, cleaning up their runs."""
        from console.worker import abandon_run

        # Once this queue has handed out jobs, leases in its own name are live ones; before
        # that, one in its name was left by a dead process whose pid this one reuses.
        alive = {self.owner} if self._handed_out else None
        stale = await asyncio.to_thread(
            job_store.recover_stale_leases, self.db, queue=self.kind, alive=alive
        )
        self.recovered += len(stale)
        for record in stale:
            if record.run_id:
                reason = f"abandoned: {record.lease_owner} stopped before a verdict"
                await asyncio.to_thread(abandon_run, self.db, record.run_id, reason)

    async def put(self, jobs: Sequence[Job], *, origin: str = "run") -> None:
        """Queue jobs (ids already known are left alone)."""
        await asyncio.to_thread(job_store.enqueue, self.db, jobs, queue=self.kind, origin=origin)
        self._wakeup.set()

    def wake(self) -> None:
        """Look for queued jobs now (another writer queued some)."""
        self._wakeup.set()

    async def get(self) -> Delivery | None:
        """Lease the oldest queued job."""
        idle_polls = 0
        while not self._closed:
            self._wakeup.clear()
            job = await asyncio.to_thread(
                job_store.lease_next, self.db, self.owner, queue=self.kind
            )
            if job is not None:
                self._handed_out = True
                return Delivery(job)
            if self.drain:
                return None
            idle_polls += 1
            if idle_polls % RECOVER_EVERY == 0:
                # A process that held leases may have died since: its jobs come back.
                await self.start()
            try:
                # Another process may queue jobs too, so look again now and then.
                await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
            except TimeoutError:
                pass
        return None

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to do: the verdict was stored with the job (``storage.jobs.complete``)."""

    async def release(self, delivery: Delivery) -> None:
        """Put the job back at its place in the queue."""
        await asyncio.to_thread(job_store.requeue, self.db, delivery.job.job_id)
        self._wakeup.set()

    async def close(self) -> None:
        """Stop handing out jobs."""
        self._closed = True
        self._wakeup.set()
