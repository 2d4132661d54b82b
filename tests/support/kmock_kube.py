"""A Kubernetes API for tests: the ``kmock`` emulator on 127.0.0.1.

Every reliance on kmock (pinned in pyproject's ``test`` extra) is in this module; the test
kubelet that runs its pods is :mod:`tests.support.kubelet`.  The
emulator stores objects and serves create/get/patch/delete; reactions added here serve
what it lacks: label-selected lists and watches with resource versions (and ``410 Gone``
on demand) and the ``log`` subresource (follow, timestamps, ``sinceTime`` at second
precision like the real API, streams cut on demand).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kmock
from kmock import KubernetesEmulator, Server, action, resource

PODS = resource("", "v1", "pods")
CONFIGMAPS = resource("", "v1", "configmaps")
QUOTAS = resource("", "v1", "resourcequotas")
WATCH_POLL = 0.01


def stamp(when: float | None = None) -> str:
    """An RFC 3339 timestamp with nanoseconds, as the kubelet writes them."""
    when = time.time() if when is None else when
    base = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((when % 1) * 1e9):09d}Z"


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class KubeEmulator:
    """The emulator served from its own thread and event loop (the client is blocking)."""

    def __init__(self) -> None:
        self.url = ""
        self.version = 1
        self.logs: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        self.log_ended: set[tuple[str, str, str]] = set()
        self.cut_after: int | None = None  # log streams end after this many lines
        self.cuts = 0
        self._cut: set[tuple[tuple[str, str, str], int]] = set()
        self.gone_watches = 0  # how many watch requests answer 410 Gone
        self.requests = 0
        self.closing = False
        self.forbidden: list[tuple[str, re.Pattern[str]]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._emu: KubernetesEmulator | None = None
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> KubeEmulator:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the kmock emulator did not start")
        return self

    def stop(self) -> None:
        self.closing = True  # open watches and followed logs end now
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with KubernetesEmulator() as emu, Server(emu) as server:
            self._emu = emu
            emu[re.compile(r".*")] << self._forbidden  # first: RBAC refusals on demand
            emu[PODS, action.LIST] << self._list
            emu[CONFIGMAPS, action.LIST] << self._list
            emu[QUOTAS, action.LIST] << self._list
            emu[PODS, action.WATCH] << self._watch
            emu[re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << self._log
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def run(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the emulator's loop (object changes are not thread-safe)."""
        assert self._loop is not None

        async def call() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    # --- objects ------------------------------------------------------------------------
    def _objects(self, kind: Any, namespace: str | None) -> list[dict[str, Any]]:
        assert self._emu is not None
        found = []
        for (res, ns, _), obj in list(self._emu.objects.items()):
            if res == kind and not obj.deleted and (namespace is None or ns == namespace):
                found.append(obj.raw)
        return found

    def objects(self, kind: Any, namespace: str | None = None) -> list[dict[str, Any]]:
        """Live objects of one resource (from any thread)."""
        return list(self.run(lambda: self._objects(kind, namespace)))

    def put(self, kind: Any, namespace: str, obj: dict[str, Any]) -> None:
        """Store an object directly (a quota, say)."""
        assert self._emu is not None
        name = obj["metadata"]["name"]

        def store() -> None:
            assert self._emu is not None
            self._emu.objects[kind, namespace, name] = obj

        self.run(store)

    def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], node: str | None = None
    ) -> bool:
        """Replace a pod's status (and bind it to ``node``), as the scheduler and kubelet
        would; False when the pod is gone."""

        def patch() -> bool:
            assert self._emu is not None
            key = (PODS, namespace, name)
            if key not in self._emu.objects or self._emu.objects[key].deleted:
                return False
            self.version += 1
            change: dict[str, Any] = {"status": status}
            if node:
                change["spec"] = {"nodeName": node}
            self._emu.objects[key].patch(change)
            return True

        return bool(self.run(patch))

    # --- reactions (on the emulator's loop) ----------------------------------------------
    def _kind_of(self, request: kmock.Request) -> Any:
        return request.resource

    def forbid(self, method: str, path: str) -> None:
        """Answer ``403 Forbidden`` to ``method`` on paths matching the regex ``path``."""
        self.forbidden.append((method.upper(), re.compile(path)))

    async def _forbidden(self, request: kmock.Request) -> dict[str, Any]:
        for method, pattern in self.forbidden:
            if str(request.method).upper().endswith(method) and pattern.search(request.url.path):
                raise kmock.KubernetesError(
                    status=403, reason="Forbidden", message=f"RBAC: {request.url.path}"
                )
        raise NotImplementedError  # not refused: the next reaction serves it

    async def _list(self, request: kmock.Request) -> dict[str, Any]:
        self.requests += 1
        selector = request.params.get("labelSelector")
        items = [
            self._stamped(o)
            for o in self._objects(self._kind_of(request), request.namespace)
            if _selected(o, selector)
        ]
        return {"kind": "List", "metadata": {"resourceVersion": str(self.version)}, "items": items}

    def _stamped(self, obj: dict[str, Any]) -> dict[str, Any]:
        copy = json.loads(json.dumps(obj))
        copy.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return copy

    async def _watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        self.requests += 1
        yield b""
        if self.gone_watches > 0:
            self.gone_watches -= 1
            yield {"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                               "reason": "Expired", "message": "too old"}}
            return
        selector = request.params.get("labelSelector")
        namespace = request.namespace
        seen: dict[str, str] = {}
        deadline = time.monotonic() + float(request.params.get("timeoutSeconds", "60"))
        first = True
        while time.monotonic() < deadline and not self.closing:
            current = {
                o["metadata"]["name"]: o
                for o in self._objects(PODS, namespace)
                if _selected(o, selector)
            }
            for name, obj in current.items():
                text = json.dumps(obj, sort_keys=True)
                if seen.get(name) != text:
                    kind = "ADDED" if name not in seen else "MODIFIED"
                    seen[name] = text
                    if not first or request.params.get("resourceVersion") is None:
                        yield {"type": kind, "object": self._stamped(obj)}
                    else:
                        yield {"type": "MODIFIED", "object": self._stamped(obj)}
            for name in [n for n in seen if n not in current]:
                last = json.loads(seen.pop(name))
                yield {"type": "DELETED", "object": self._stamped(last)}
            first = False
            if self.gone_watches > 0:  # expire a watch that is already open
                self.gone_watches -= 1
                yield {"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                   "reason": "Expired", "message": "too old"}}
                return
            await asyncio.sleep(WATCH_POLL)

    async def _log(self, request: kmock.Request) -> AsyncIterator[bytes]:
        self.requests += 1
        parts = request.url.path.split("/")
        namespace, pod = parts[4], parts[6]
        container = request.params.get("container", "")
        key = (namespace, pod, container)
        follow = request.params.get("follow") == "true"
        since = request.params.get("sinceTime", "")
        since_second = since[:19]
        index = 0
        yield b""
        while True:
            lines = self.logs.get(key, [])
            while index < len(lines):
                when, text = lines[index]
                index += 1
                if since_second and when[:19] < since_second:
                    continue
                point = (key, index)
                if self.cut_after and index % self.cut_after == 0 and point not in self._cut:
                    # A dropped stream (the connection just ends), once at every
                    # ``cut_after``-th line of the log.
                    self._cut.add(point)
                    self.cuts += 1
                    return
                yield f"{when} {text}\n".encode()
            if not follow or key in self.log_ended or self.closing:
                return
            await asyncio.sleep(WATCH_POLL)

    # --- logs (from any thread) ----------------------------------------------------------
    def append_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        self.logs.setdefault((namespace, pod, container), []).append((stamp(), text))

    def end_log(self, namespace: str, pod: str, container: str) -> None:
        self.log_ended.add((namespace, pod, container))

    def kubeconfig(self, directory: Path, context: str = "emulator") -> Path:
        """A kubeconfig pointing at the emulator (no credentials needed)."""
        path = directory / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emu", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test"}}],
            "contexts": [{"name": context, "context": {"cluster": "emu", "user": "tester"}}],
            "current-context": context,
        }
        path.write_text(json.dumps(config))
        return path
