"""Kubernetes sandbox: one pod per run, verified from inside the pod by the probe agent.

:class:`KubeSandbox` implements the same :class:`~console.sandbox.base.Sandbox` contract as
the local sandbox, so the verification sequence, verdicts and fingerprints are one code
path.  ``prepare`` creates the run's ConfigMap (project + agent); the first ``start``
creates the pod (:mod:`console.sandbox.kube_pod`).  A thread watches the pod (re-listing
after ``410 Gone``), threads follow the containers' logs (:mod:`console.sandbox.kube_logs`),
and everything they learn is handed to the event loop.

How the sequence sees the pod:

- exit status and reason come from the container status: a signal by its number,
  ``OOMKilled`` → :attr:`KubeProcess.oom_killed`, the pod's ``DeadlineExceeded`` → a kill
  classed ``timeout``;
- a pod that cannot run at all (image pull failure, ``CreateContainerConfigError``,
  unschedulable) ends at once with status 125 — the container runtimes' "the container
  could not be run" — and a log line saying why, instead of hanging until a deadline;
- the port comes from the agent's ``ports`` markers (:meth:`KubeProcess.poll_port`), and
  ``GET /`` and the health checks from its ``http`` markers (:meth:`KubeProcess.http_get`,
  the optional seam :class:`~console.sequence.VerificationSequence` uses when a process has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from console.model import CheckSpec
from console.probe_http import HttpAnswer
from console.sandbox import kube_pod
from console.sandbox.base import LineCallback, Phase, PortHit
from console.sandbox.kube_agent import MARKER
from console.sandbox.kube_api import KubeApi, KubeApiError, connect
from console.sandbox.kube_logs import LogFollower
from console.sandbox.kube_status import cannot_run_reason, container_status, init_failure
from console.settings import SandboxSettings

log = logging.getLogger(__name__)
OFFERED_PORT = 8000
CANNOT_RUN = 125  # what container runtimes return when the container itself cannot run
MARKER_SLACK = 5.0  # how much later than its own timeout an agent's answer may arrive
WATCH_SECONDS = 60
FINAL_READ_TIMEOUT = 3.0
DRAIN_TIMEOUT = 5.0  # how long the end of a log may lag behind the container's end
class PodRun:
    """The shared state of one run's pod: its latest status, the agent's findings, and the
    threads that watch and follow it."""

    def __init__(self, api: KubeApi, namespace: str, name: str, run_id: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.run_id = run_id
        self.pod: dict[str, Any] = {}
        self.deleted = False
        self.relists = 0
        self.ports: dict[int, str] = {}  # in the order they appeared
        self.answers: dict[tuple[int, str], deque[HttpAnswer]] = {}
        self.changed = asyncio.Event()
        self.processes: list[KubeProcess] = []
        self.followers: list[LogFollower] = []
        self._loop = asyncio.get_running_loop()
        self._closed = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._agent_followed = False

    # --- the watch (a thread) ------------------------------------------------------------
    def start_watch(self) -> None:
        """Watch the pod from a thread; updates reach :meth:`on_pod` on the loop."""
        self._watch_thread = threading.Thread(
            target=self._watch, name=f"watch-{self.name}", daemon=True
        )
        self._watch_thread.start()

    def _watch(self) -> None:
        import urllib3

        path = f"/api/v1/namespaces/{self.namespace}/pods"
        selector = ("labelSelector", f"{kube_pod.LABEL_RUN}={self.run_id.lower()}")
        version: str | None = None
        delay = 0.1
        while not self._closed.is_set():
            try:
                if version is None:
                    listing = self.api.call("GET", path, query=[selector])
                    version = (listing.get("metadata") or {}).get("resourceVersion")
                    for item in listing.get("items") or []:
                        self._hand_over(item, deleted=False)
                query = [selector, ("watch", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
                query += [("allowWatchBookmarks", "true")]
                if version:
                    query.append(("resourceVersion", version))
                for raw in self.api.stream(path, query, idle_timeout=WATCH_SECONDS + 15):
                    if self._closed.is_set():
                        return
                    if not raw.strip():
                        continue
                    event = json.loads(raw)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:  # our version is too old: list again
                            version = None
                            self.relists += 1
                            break
                        raise KubeApiError(f"watch failed: {obj.get('message', obj)}")
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind != "BOOKMARK":
                        self._hand_over(obj, deleted=kind == "DELETED")
                delay = 0.1
            except KubeApiError as exc:
                if exc.status == 410:
                    version = None
                    self.relists += 1
                    continue
                log.debug("watch of %s failed: %s", self.name, exc)
                self._closed.wait(delay)
                delay = min(delay * 2, 2.0)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                log.debug("watch of %s dropped: %s", self.name, exc)
                self._closed.wait(delay)
                delay = min(delay * 2, 2.0)

    def _hand_over(self, obj: dict[str, Any], *, deleted: bool) -> None:
        if (obj.get("metadata") or {}).get("name") != self.name:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self.on_pod, obj, deleted)

    # --- on the loop ---------------------------------------------------------------------
    def on_pod(self, obj: dict[str, Any], deleted: bool) -> None:
        """A new state of the pod (from the watch)."""
        self.pod = obj
        self.deleted = self.deleted or deleted
        for process in list(self.processes):
            process.update()
        if not self._agent_followed and self._startable(kube_pod.AGENT_CONTAINER):
            self._agent_followed = True
            self.follow(kube_pod.AGENT_CONTAINER, self._agent_line, lambda: None)
        self.changed.set()
        self.changed = asyncio.Event()

    def _startable(self, container: str) -> bool:
        state = (container_status(self.pod, container) or {}).get("state") or {}
        return "running" in state or "terminated" in state

    def terminated(self, container: str) -> bool:
        """Whether ``container`` has ended (or the pod is gone)."""
        state = (container_status(self.pod, container) or {}).get("state") or {}
        phase = (self.pod.get("status") or {}).get("phase")
        return "terminated" in state or self.deleted or phase in ("Failed", "Succeeded")

    def follow(
        self, container: str, sink: Any, on_done: Any, *, from_thread: bool = True
    ) -> LogFollower:
        """Follow a container's log; ``sink(ts, text)`` and ``on_done()`` run on the loop."""

        def to_loop(ts: float, text: str) -> None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(sink, ts, text)

        def done() -> None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(on_done)

        follower = LogFollower(
            self.api,
            self.namespace,
            self.name,
            container,
            to_loop,
            lambda: self.terminated(container),
            done,
        )
        self.followers.append(follower)
        follower.start()
        return follower

    def _agent_line(self, ts: float, text: str) -> None:
        if not text.startswith(MARKER):
            return
        try:
            event = json.loads(text[len(MARKER) :])
        except ValueError:
            return
        if event.get("ev") == "ports":
            current = {int(port): str(address) for port, address in event.get("ports") or []}
            kept = {p: a for p, a in self.ports.items() if p in current}
            kept.update({p: a for p, a in current.items() if p not in kept})
            self.ports = kept
        elif event.get("ev") == "http":
            answer = HttpAnswer(
                event.get("status"), event.get("error"), bool(event.get("timed_out"))
            )
            key = (int(event.get("port", 0)), str(event.get("path", "/")))
            self.answers.setdefault(key, deque()).append(answer)
        self.changed.set()
        self.changed = asyncio.Event()

    async def until_changed(self, within: float) -> None:
        """Wait for the next pod update or agent marker (at most ``within`` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), within)

    def close(self) -> None:
        """Stop the watch and the followers (their threads end on their own)."""
        self._closed.set()
        for follower in self.followers:
            follower.stop()


class KubeProcess:
    """One container of the run's pod, seen as a :class:`RunningProcess`."""

    pid: int | None = None  # no local process: the pod and node say where it runs

    def __init__(self, run: PodRun, container: str, on_line: LineCallback) -> None:
        self.run = run
        self.container = container
        self.on_line = on_line
        self.returncode: int | None = None
        self.oom_killed = False
        self.killed_by_us = False
        self._ended = False
        self._drained = False
        self._following = False
        self._follower: LogFollower | None = None
        self._done = asyncio.Event()
        run.processes.append(self)
        self.update()

    @property
    def pod(self) -> str:
        """The pod's name."""
        return self.run.name

    @property
    def node(self) -> str | None:
        """The node the pod was scheduled on, once known."""
        return (self.run.pod.get("spec") or {}).get("nodeName")

    def _line(self, ts: float, text: str) -> None:
        self.on_line("stdout", text, ts)  # the API merges the container's stdout and stderr

    def _finish(self, code: int, note: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.returncode = code
        if note:
            self.on_line("stderr", f"verdict: {note}", time.time())
        if not self._following:
            self._drained = True
        else:
            # The log is normally complete moments after the end; never wait on it for long.
            asyncio.get_running_loop().call_later(DRAIN_TIMEOUT, self._drain_done)
        self._check_done()

    def _drain_done(self) -> None:
        self._drained = True
        self._check_done()

    def _check_done(self) -> None:
        if self._ended and self._drained:
            self._done.set()

    def update(self) -> None:
        """React to a new pod state: start following, notice the end or a failure."""
        if self._ended:
            return
        run = self.run
        if not self._following and run._startable(self.container):
            self._following = True
            self._follower = run.follow(self.container, self._line, self._drain_done)
        entry = container_status(run.pod, self.container) or {}
        terminated = (entry.get("state") or {}).get("terminated")
        if terminated is not None:
            self.oom_killed = terminated.get("reason") == "OOMKilled"
            sig = terminated.get("signal")
            self._finish(-int(sig) if sig else int(terminated.get("exitCode") or 0))
            return
        status = run.pod.get("status") or {}
        if status.get("reason") == "DeadlineExceeded":
            self.killed_by_us = True  # the pod's own deadline (ours, set at creation)
            self._finish(-signal.SIGKILL, "the pod passed its activeDeadlineSeconds")
            return
        if run.deleted:
            self._finish(-signal.SIGKILL, "the pod was deleted")
            return
        phase = status.get("phase")
        if phase in ("Failed", "Succeeded"):
            # The pod ended before this container ran (an init container failed).
            self._finish(CANNOT_RUN, f"the pod ended ({phase}) before {self.container} ran"
                         + init_failure(run.pod))
            return
        reason = cannot_run_reason(run.pod, self.container)
        if reason is not None:
            self._finish(CANNOT_RUN, reason)

    async def wait(self) -> int:
        """Wait until the container has ended and its whole log has been read."""
        await self._done.wait()
        assert self.returncode is not None
        return self.returncode

    async def poll_port(self) -> PortHit | None:
        """The port the agent last saw listening (the offered one preferred)."""
        ports = self.run.ports
        if not ports:
            return None
        port = OFFERED_PORT if OFFERED_PORT in ports else next(iter(ports))
        others = tuple(p for p in ports if p != port)
        return PortHit(port, ports[port], None, connect_host=self.run.name, others=others)

    async def http_get(
        self, host: str, port: int, path: str = "/", *, request_timeout: float = 10.0
    ) -> HttpAnswer:
        """The agent's next answer for ``GET path`` on ``port`` (it asked from inside)."""
        del host  # the agent always asks on localhost inside the pod
        queue = self.run.answers.setdefault((port, path), deque())
        deadline = time.monotonic() + request_timeout + MARKER_SLACK
        while not queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return HttpAnswer(None, "no answer from the probe agent", timed_out=True)
            await self.run.until_changed(remaining)
        return queue.popleft()

    async def stop(self, grace: float) -> None:
        """End the container: the pod is deleted with ``grace`` seconds to stop.  An
        install container that has ended is left alone (the app follows in the pod)."""
        if self._ended:
            return
        self.killed_by_us = True
        follower = self._follower
        if follower is not None:
            # Read the rest of the log while the pod still exists.
            await asyncio.to_thread(follower.finish, FINAL_READ_TIMEOUT)
        await asyncio.to_thread(_delete_pod, self.run, grace)
        self._drained = True
        self._finish(-signal.SIGTERM)


def _delete_pod(run: PodRun, grace: float) -> None:
    path = f"/api/v1/namespaces/{run.namespace}/pods/{run.name}"
    query = [("gracePeriodSeconds", str(max(int(grace), 0)))]
    try:
        run.api.call("DELETE", path, query=query)
    except KubeApiError as exc:
        if exc.status != 404:
            raise


class KubeSandbox:
    """A run's pod in the sandbox namespace (see the module docstring)."""

    kind = "kube"  # said in ProcessStarted events

    def __init__(
        self,
        run_id: str,
        *,
        settings: SandboxSettings,
        spec: CheckSpec,
        api: KubeApi | None = None,
    ) -> None:
        self.run_id = run_id
        self.port = OFFERED_PORT
        self.settings = settings
        self.spec = spec
        self.namespace = settings.kube_namespace
        self.name = kube_pod.object_name(run_id)
        self.notes: list[str] = []
        self._api = api
        self._run: PodRun | None = None
        self._configmap_made = False
        self._pod_made = False

    @property
    def project_dir(self) -> Path:
        """Where the project lives inside the pod (paths in its traces start here)."""
        return Path(kube_pod.WORK_DIR)

    @property
    def api(self) -> KubeApi:
        """The API connection (made on first use)."""
        if self._api is None:
            self._api = connect(self.settings.kube_context, self.settings.kube_request_timeout)
        return self._api

    def plan(self) -> kube_pod.PodPlan:
        """The run's manifest inputs."""
        spec = self.spec
        assert spec.run is not None
        return kube_pod.PodPlan(
            run_id=self.run_id,
            run=spec.run,
            install=spec.install,
            port=self.port,
            port_env=spec.port_env,
            health=spec.health,
            env=dict(spec.env),
            memory_mb=spec.memory_mb,
            start_timeout=spec.start_timeout,
            install_timeout=spec.install_timeout,
            settle=spec.settle,
        )

    async def prepare(self, project: Path) -> None:
        """Pack the project and create the run's ConfigMap.

        Raises:
            UsageError: the project is too big for a ConfigMap, or the API refused.
        """
        archive, skipped = await asyncio.to_thread(kube_pod.pack_project, project)
        if skipped:
            self.notes.append("not copied into the pod: " + ", ".join(skipped[:20]))
        body = kube_pod.configmap(self.plan(), self.namespace, archive)
        path = f"/api/v1/namespaces/{self.namespace}/configmaps"
        await asyncio.to_thread(self.api.call, "POST", path, body=body)
        self._configmap_made = True

    async def start(self, command: str, *, phase: Phase, on_line: LineCallback) -> KubeProcess:
        """Create the pod on the first call; follow the install or the app container."""
        if self._run is None:
            self._run = PodRun(self.api, self.namespace, self.name, self.run_id)
            body = kube_pod.pod(self.plan(), self.settings)
            path = f"/api/v1/namespaces/{self.namespace}/pods"
            await asyncio.to_thread(self.api.call, "POST", path, body=body)
            self._pod_made = True
            self._run.start_watch()
        container = kube_pod.INSTALL_CONTAINER if phase == "install" else kube_pod.APP_CONTAINER
        return KubeProcess(self._run, container, on_line)

    async def close(self) -> None:
        """Delete the pod and the ConfigMap (also after errors); stop the threads."""
        if self._run is not None:
            self._run.close()
        await asyncio.to_thread(self._delete_all)

    def _delete_all(self) -> None:
        if self._api is None:
            return
        base = f"/api/v1/namespaces/{self.namespace}"
        targets = [(self._pod_made, "pods"), (self._configmap_made, "configmaps")]
        for made, plural in targets:
            if not made:
                continue
            try:
                target = f"{base}/{plural}/{self.name}"
                self.api.call("DELETE", target, query=[("gracePeriodSeconds", "0")])
            except KubeApiError as exc:
                if exc.status != 404:
                    log.warning("could not delete %s %s: %s", plural, self.name, exc)
