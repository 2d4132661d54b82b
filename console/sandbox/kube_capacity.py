"""How many runs may start on the cluster: the sandbox namespace's ResourceQuota and the
``kube_max_pods`` setting, instead of this machine's memory and CPU.

A run may start when a slot is free, the worker's own pods stay under ``kube_max_pods``,
and every quota of the namespace has room for one more run's pod (its pod count, CPU,
memory and ephemeral storage, requests and limits alike).  The quota is read from a thread
at most every ``probe_interval`` seconds; while the cluster is full, :meth:`acquire` keeps
waiting, so the Kafka consumer takes no new job (it pauses its partitions but keeps
polling, and stays in its group).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from console.capacity import Capacity
from console.sandbox.kube_api import KubeApi, KubeApiError
from console.settings import SandboxSettings

_SUFFIXES = {
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as a number: ``500m`` → 0.5, ``2Gi`` → 2147483648.

    Raises:
        ValueError: not a quantity this reader knows.
    """
    match = _QUANTITY.match(str(text).strip())
    if not match or (match.group(2) and match.group(2) not in _SUFFIXES):
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * _SUFFIXES.get(match.group(2), 1.0)


def pod_needs(settings: SandboxSettings, memory_mb: int | None = None) -> dict[str, float]:
    """What one run's pod counts against a quota (the app plus the agent sidecar)."""
    memory = ((memory_mb or settings.memory_mb) + 64) * 2.0**20
    cpu = parse_quantity(settings.kube_cpu) + 0.1
    storage = (settings.kube_ephemeral_mb + 64) * 2.0**20
    needs = {"pods": 1.0, "count/pods": 1.0, "configmaps": 1.0, "count/configmaps": 1.0}
    for prefix in ("", "requests.", "limits."):
        needs[f"{prefix}cpu"] = cpu
        needs[f"{prefix}memory"] = memory
        needs[f"{prefix}ephemeral-storage"] = storage
    return needs


@dataclass(frozen=True)
class QuotaReading:
    """Whether the namespace has room for one more run, and why not."""

    room: bool
    reason: str = ""


def read_quota(api: KubeApi, settings: SandboxSettings) -> QuotaReading:
    """Read the namespace's quotas and our pod count (blocking: call from a thread)."""
    from console.sandbox.kube_pod import SELECTOR

    base = f"/api/v1/namespaces/{settings.kube_namespace}"
    ours = api.call("GET", f"{base}/pods", query=[("labelSelector", SELECTOR)])
    running = len(ours.get("items") or [])
    if running >= settings.kube_max_pods:
        limit = settings.kube_max_pods
        return QuotaReading(False, f"{running} pods of ours, kube_max_pods is {limit}")
    needs = pod_needs(settings)
    for quota in api.call("GET", f"{base}/resourcequotas").get("items") or []:
        status = quota.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        for name, limit in hard.items():
            if name not in needs:
                continue
            try:
                left = parse_quantity(limit) - parse_quantity(used.get(name, "0"))
            except ValueError:
                continue
            if left < needs[name]:
                quota_name = (quota.get("metadata") or {}).get("name", "?")
                return QuotaReading(False, f"quota {quota_name}: {name} {used.get(name)}/{limit}")
    return QuotaReading(True)


class QuotaCapacity(Capacity):
    """Slots plus the cluster's room (see the module docstring)."""

    def __init__(
        self,
        slots: int,
        api: KubeApi,
        settings: SandboxSettings,
        *,
        probe_interval: float = 1.0,
        recheck: float = 1.0,
    ) -> None:
        super().__init__(slots, probe_interval=probe_interval, recheck=recheck)
        self.api = api
        self.sandbox = settings
        self.reading = QuotaReading(True)
        self._read_at = float("-inf")

    def has_headroom(self) -> bool:
        """Whether the last reading of the cluster had room for one more run."""
        return self.reading.room

    async def refresh(self) -> QuotaReading:
        """Read the quota again if the last reading is older than ``probe_interval``."""
        if time.monotonic() - self._read_at >= self._probe_interval:
            try:
                self.reading = await asyncio.to_thread(read_quota, self.api, self.sandbox)
            except KubeApiError as exc:
                # Unreadable quota: no new pods until it can be read again.
                self.reading = QuotaReading(False, str(exc))
            self._read_at = time.monotonic()
        return self.reading

    async def acquire(self) -> None:
        """Wait until a slot is free and the cluster has room, then take the slot."""
        changed = self._condition()
        while True:
            await self.refresh()
            async with changed:
                if self.try_acquire():
                    return
                try:
                    await asyncio.wait_for(changed.wait(), self._recheck)
                except TimeoutError:
                    pass


def cluster_capacity(settings: SandboxSettings, slots: int) -> QuotaCapacity:
    """Connect, check that the quota and our pods can be read, and return the capacity.

    Raises:
        KubeApiError: no configuration, an unreachable server, or a forbidden verb (one line).
    """
    from console.sandbox.kube_api import connect

    api = connect(settings.kube_context, settings.kube_request_timeout)
    capacity = QuotaCapacity(slots, api, settings)
    capacity.reading = read_quota(api, settings)
    capacity._read_at = time.monotonic()
    return capacity
