"""Following one container's log through the API, surviving dropped streams.

The log is requested with ``follow`` and ``timestamps``.  When the stream drops, it is
requested again with ``sinceTime`` set to the second of the last line seen; the API server
then sends again every line of that second (``sinceTime`` has second precision), and
exactly those lines — the ones already delivered, in the same order — are skipped.  So no
line is lost and none is delivered twice, however often the stream is cut.  When the
container has ended, one last non-following read collects whatever a cut stream missed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from console.sandbox.kube_api import KubeApi, KubeApiError

log = logging.getLogger(__name__)
IDLE_TIMEOUT = 30.0  # a followed log silent this long is requested again
RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 2.0
NO_PROGRESS_DELAY = 0.4
FINAL_READS = 50
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# (unix time of the line, its text)
LineSink = Callable[[float, str], None]


def parse_timestamp(stamp: str) -> float:
    """``2026-11-28T01:02:03.123456789Z`` → unix time (nanoseconds cut to microseconds)."""
    text = stamp.rstrip("Z")
    if "." in text:
        whole, fraction = text.split(".", 1)
        text = f"{whole}.{fraction[:6]}"
    try:
        return datetime.fromisoformat(text + "+00:00").timestamp()
    except ValueError:
        return time.time()


class LogFollower:
    """Follows ``container`` of ``pod`` on a thread until it has ended and been read.

    Args:
        api: the API connection.
        namespace, pod, container: what to follow.
        sink: called with each new line, in order, from the follower's thread.
        ended: whether the container has terminated (from the pod watch).
        on_done: called once when the whole log has been delivered (or the follower gave up).
    """

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        pod: str,
        container: str,
        sink: LineSink,
        ended: Callable[[], bool],
        on_done: Callable[[], None],
    ) -> None:
        self.api = api
        self.path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        self.container = container
        self.sink = sink
        self.ended = ended
        self.on_done = on_done
        self.stopped = threading.Event()
        self.reconnects = 0
        self.lines = 0
        self._second: str | None = None  # "YYYY-MM-DDTHH:MM:SS" of the last line delivered
        self._at_second: list[str] = []  # full timestamps delivered within that second
        self._response: list[Any] = []  # the open stream, to cut it short on finish()
        self._thread = threading.Thread(
            target=self._run, name=f"log-{pod}-{container}", daemon=True
        )

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def stop(self) -> None:
        """Stop at the next line or timeout (the thread is a daemon: nothing waits on it)."""
        self.stopped.set()

    def finish(self, within: float) -> None:
        """Stop following and read once more what has not been delivered yet (blocking):
        called before the pod is deleted, so nothing the app printed is lost."""
        self.stopped.set()
        for response in self._response:
            shutdown = getattr(response, "shutdown", None) or response.close
            with contextlib.suppress(Exception):
                shutdown()
        self._thread.join(within)
        if self._thread.is_alive():
            return  # still blocked: what it holds is delivered when it returns
        # A read cut short ends like a complete one: read again until nothing new comes.
        for _ in range(FINAL_READS):
            before = self.lines
            try:
                self._read(follow=False)
            except Exception:  # noqa: BLE001 - the pod may be gone already
                return
            if self.lines == before:
                return

    def _query(self, follow: bool) -> list[tuple[str, str]]:
        query = [("container", self.container), ("timestamps", "true")]
        if follow:
            query.append(("follow", "true"))
        if self._second is not None:
            query.append(("sinceTime", self._second + "Z"))
        return query

    def _read(self, follow: bool) -> None:
        """One request: deliver the lines not delivered yet."""
        skip = list(self._at_second)
        skipping = False  # the pieces of a skipped overlong line are skipped with it
        lines = self.api.stream(
            self.path, self._query(follow), idle_timeout=IDLE_TIMEOUT, holder=self._response
        )
        for raw in lines:
            if self.stopped.is_set() and follow:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            stamp, _, text = line.partition(" ")
            if not _STAMP.match(stamp):
                # A piece of an overlong line (cut by the stream reader): no timestamp of
                # its own, and never a resume point.
                if not skipping:
                    self.lines += 1
                    self.sink(time.time(), line)
                continue
            skipping = False
            if skip:
                if skip[0] == stamp:
                    skip.pop(0)
                    skipping = True
                    continue
                skip = []  # the server sent something else: nothing more to skip
            second = stamp[:19]
            if second != self._second:
                self._second, self._at_second = second, []
            self._at_second.append(stamp)
            self.lines += 1
            self.sink(parse_timestamp(stamp), text)

    def _run(self) -> None:
        import urllib3

        delay = RETRY_DELAY
        try:
            while not self.stopped.is_set():
                finished = self.ended()
                before = self.lines
                try:
                    self._read(follow=not finished)
                except (KubeApiError, urllib3.exceptions.HTTPError, OSError) as exc:
                    if isinstance(exc, KubeApiError) and exc.status == 404:
                        return  # the pod is gone: nothing more will come
                    log.debug("log stream of %s failed: %s", self.container, exc)
                    self.stopped.wait(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)
                    self.reconnects += 1
                    continue
                if finished:
                    return  # a complete read after the end: every line is in
                self.reconnects += 1  # the followed stream ended: cut, or the container ended
                if self.lines == before:
                    # Nothing new: the container has probably ended and the watch has not
                    # said so yet; ask again shortly rather than in a tight loop.
                    self.stopped.wait(delay)
                    delay = min(delay * 2, NO_PROGRESS_DELAY)
                else:
                    delay = RETRY_DELAY
        finally:
            self.on_done()
