"""The ``JobQueue`` protocol: one interface, two backends (embedded SQLite, Kafka)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from console.errors import UsageError
from console.model import Job


@dataclass
class Delivery:
    """One job handed to a worker, with what the backend needs to ack or release it."""

    job: Job
    token: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


class JobQueue(Protocol):
    """A durable queue of jobs.

    Delivery is at-least-once: a job is delivered again unless it is :meth:`ack`-ed, which
    a worker does only after the job's verdict is durably recorded.  Workers make repeated
    deliveries harmless by checking the job's recorded verdict first.
    """

    kind: str

    async def start(self) -> None:
        """Connect / recover; must be called before any other method."""
        ...

    async def put(self, jobs: Sequence[Job]) -> None:
        """Queue jobs."""
        ...

    async def get(self) -> Delivery | None:
        """The next job, waiting for one; None when the queue is closed (or drained)."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The job's verdict is recorded: never deliver it again."""
        ...

    async def release(self, delivery: Delivery) -> None:
        """The job was abandoned before its verdict: deliver it again later."""
        ...

    async def close(self) -> None:
        """Stop delivering; pending :meth:`get` calls return None."""
        ...


@dataclass(frozen=True)
class QueueUrl:
    """A parsed ``--queue`` value: ``embedded`` or ``kafka://HOST:PORT[,HOST:PORT][?prefix=P]``.

    ``prefix`` is prepended to every topic and consumer-group name, so several
    installations (or tests) can share one cluster.
    """

    kind: str
    bootstrap: str = ""
    prefix: str = ""

    @property
    def text(self) -> str:
        """The URL as a user would write it."""
        if self.kind == "embedded":
            return "embedded"
        query = f"?prefix={self.prefix}" if self.prefix else ""
        return f"kafka://{self.bootstrap}{query}"


def parse_queue_url(value: str | None) -> QueueUrl:
    """Parse a ``--queue`` value.

    Raises:
        UsageError: the value is neither ``embedded`` nor a ``kafka://HOST:PORT`` URL.
    """
    text = (value or "embedded").strip()
    if text in ("embedded", "sqlite", ""):
        return QueueUrl("embedded")
    parts = urlsplit(text)
    if parts.scheme != "kafka":
        raise UsageError(f"--queue: expected 'embedded' or kafka://HOST:PORT, got {text!r}")
    if not parts.netloc or parts.path not in ("", "/"):
        raise UsageError(f"--queue: expected kafka://HOST:PORT, got {text!r}")
    for host_port in parts.netloc.split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--queue: bad broker address {host_port!r} (want HOST:PORT)")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"prefix"})
    if unknown:
        raise UsageError(f"--queue: unknown option {unknown[0]!r} (known: prefix)")
    prefix = query.get("prefix", [""])[-1]
    return QueueUrl("kafka", bootstrap=parts.netloc, prefix=prefix)
