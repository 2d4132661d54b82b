"""Sandboxes: where a run's commands execute (``local`` processes or ``kube`` pods)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.errors import UsageError

if TYPE_CHECKING:
    from console.model import CheckSpec
    from console.sandbox.base import Sandbox
    from console.settings import SandboxSettings

KINDS = ("local", "kube")


def make_sandbox(settings: SandboxSettings, run_id: str, spec: CheckSpec) -> Sandbox:
    """The sandbox ``settings.kind`` names, for one run of ``spec``.

    Raises:
        UsageError: an unknown kind.
    """
    if settings.kind == "kube":
        from console.sandbox.kube import KubeSandbox

        return KubeSandbox(run_id, settings=settings, spec=spec)
    if settings.kind != "local":
        raise UsageError(f"unknown sandbox kind {settings.kind!r}: choose {' or '.join(KINDS)}")
    from console.sandbox.local import LocalSandbox

    return LocalSandbox(
        run_id, settings=settings, memory_mb=spec.memory_mb, env=spec.env, port_env=spec.port_env
    )
