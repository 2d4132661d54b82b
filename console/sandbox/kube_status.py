"""Reading pods: why a container cannot run, and what the console shows of the cluster
(the pods of our runs, one typed row each).

The detected port is not stored on the pod (that would need a ``patch`` verb for workers);
it reaches the console as the run's ``PortFound`` event, joined on :attr:`PodInfo.run_id`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.sandbox.kube_api import KubeApi
from console.sandbox.kube_pod import LABEL_RUN, SELECTOR
from console.settings import SandboxSettings

IMAGE_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
CONFIG_FAILURES = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The status of container ``name`` (init or regular) in a pod object."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == name:
                return dict(entry)
    return None


def cannot_run_reason(pod: dict[str, Any], container: str) -> str | None:
    """Why ``container`` will never run, or None while it still may."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return f"the pod could not be scheduled: {condition.get('message') or 'no node fits'}"
    entry = container_status(pod, container) or {}
    waiting = (entry.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason") or ""
    message = waiting.get("message") or ""
    if reason in IMAGE_FAILURES:
        return f"image {entry.get('image', '?')} could not be pulled ({reason}: {message})"
    if reason in CONFIG_FAILURES:
        return f"the container could not be created ({reason}: {message})"
    return None


def init_failure(pod: dict[str, Any]) -> str:
    """Which init container failed, as a clause for a reason (empty when none did)."""
    for entry in (pod.get("status") or {}).get("initContainerStatuses") or []:
        ended = (entry.get("state") or {}).get("terminated") or {}
        if ended.get("exitCode"):
            return f": init container {entry.get('name')} exited with {ended['exitCode']}"
    return ""



@dataclass(frozen=True)
class PodInfo:
    """One pod of a run, as the sandboxes pane lists it."""

    name: str
    run_id: str | None
    phase: str
    node: str | None
    restarts: int
    age_s: float | None
    reason: str | None = None  # why it waits or failed (ErrImagePull, OOMKilled, ...)


def pod_info(pod: dict[str, Any], now: float | None = None) -> PodInfo:
    """A pod object as a :class:`PodInfo`."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    reason = status.get("reason")
    for entry in statuses:
        state = entry.get("state") or {}
        detail = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if detail and detail not in ("Completed", "PodInitializing", "ContainerCreating"):
            reason = reason or detail
    age = None
    created = meta.get("creationTimestamp")
    if created:
        try:
            started = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
            age = (now or time.time()) - started
        except ValueError:
            age = None
    return PodInfo(
        name=str(meta.get("name", "?")),
        run_id=(meta.get("labels") or {}).get(LABEL_RUN),
        phase=str(status.get("phase") or "Pending"),
        node=spec.get("nodeName"),
        restarts=sum(int(entry.get("restartCount") or 0) for entry in statuses),
        age_s=age,
        reason=reason,
    )


def list_pods(settings: SandboxSettings, api: KubeApi | None = None) -> list[PodInfo]:
    """The pods of our runs in the sandbox namespace (blocking: call from a thread worker).

    Raises:
        KubeApiError: no configuration, unreachable, or forbidden (one line).
    """
    if api is None:
        from console.sandbox.kube_api import connect

        api = connect(settings.kube_context, settings.kube_request_timeout)
    path = f"/api/v1/namespaces/{settings.kube_namespace}/pods"
    listing = api.call("GET", path, query=[("labelSelector", SELECTOR)])
    return [pod_info(item) for item in listing.get("items") or []]
