"""In-process pub/sub for engine events, and their JSON wire form.

The same :class:`~console.model.Event` objects travel in-process through an
:class:`EventBus` (embedded mode) or as JSON on the ``verdict.events`` topic (distributed
mode); :func:`encode_event` / :func:`decode_event` are the one wire format for both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydantic import ValidationError

from console.model import Event, EventEnvelope

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], object]


class EventDecodeError(ValueError):
    """A message on the events topic is not a valid event."""


class EventBus:
    """Synchronous in-process publish/subscribe.

    Subscribers are called in subscription order on the publisher's thread.  A subscriber
    that raises is logged and skipped so one faulty listener (say, a display) never stops
    the recording of a verdict — unless it was subscribed with ``critical=True`` (the
    recorder), whose errors propagate to the publisher.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber, *, critical: bool = False) -> Callable[[], None]:
        """Register ``subscriber``; returns a function that unsubscribes it."""
        entry = (subscriber, critical)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber, critical in subscribers:
            try:
                subscriber(event)
            except Exception:
                if critical:
                    raise
                log.exception("event subscriber %r failed on %s", subscriber, event.kind)

    def __call__(self, event: Event) -> None:
        """An ``EventBus`` is itself an ``emit`` callable."""
        self.publish(event)


def encode_event(event: Event) -> bytes:
    """The JSON bytes of ``event`` (wrapped in an :class:`EventEnvelope`)."""
    return EventEnvelope(event=event).model_dump_json().encode("utf-8")


def decode_event(data: bytes | str) -> Event:
    """Parse bytes produced by :func:`encode_event`.

    Raises:
        EventDecodeError: the data is not JSON or not a known event.
    """
    try:
        return EventEnvelope.model_validate_json(data).event
    except (ValidationError, ValueError) as exc:
        raise EventDecodeError(str(exc).splitlines()[0]) from exc
