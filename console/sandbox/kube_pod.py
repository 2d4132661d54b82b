"""The objects one Kubernetes run creates: a ConfigMap carrying the project and the probe
agent, and a Pod that unpacks it and runs the app beside the agent.

The project reaches the pod without a registry push: it is packed as a gzipped tar into the
ConfigMap's ``binaryData`` and unpacked by an init container into a size-limited
``emptyDir`` by the agent's stdlib ``unpack`` (regular files and directories only; links,
devices and paths that lead outside are refused).  Every
container follows the *restricted* Pod Security Standard: non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem;
the writable places are size-limited ``emptyDir`` volumes; no service-account token.
Pure functions of their inputs, so ``verdict check --sandbox kube --dry-run`` prints
exactly what a run would create.
"""

from __future__ import annotations

import base64
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from console.errors import UsageError
from console.model import DEFAULT_SETTLE
from console.settings import SandboxSettings

MANAGED_BY = "verdict-console"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_RUN = "verdict.dev/run-id"
SELECTOR = f"{LABEL_MANAGED}={MANAGED_BY}"
CONFIGMAP_LIMIT = 1024 * 1024  # the API server refuses larger ConfigMaps (etcd's limit)
_ENVELOPE = 16 * 1024  # room kept for metadata and the agent inside that limit
APP_CONTAINER = "app"
AGENT_CONTAINER = "agent"
INSTALL_CONTAINER = "install"
UNPACK_CONTAINER = "unpack"
WORK_DIR = "/work"
HOME_DIR = "/home/app"
AGENT_DIR = "/verdict"
RUN_AS = 10001
SKIPPED_NAMES = frozenset({".git", "__pycache__"})
# Extra time past the run's own deadlines before the kubelet ends the pod by itself.
DEADLINE_MARGIN = 60


@dataclass(frozen=True)
class PodPlan:
    """Everything a run's manifests depend on."""

    run_id: str
    run: str
    install: str | None = None
    port: int = 8000
    port_env: str = "PORT"
    health: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024
    start_timeout: float = 30.0
    install_timeout: float = 300.0
    settle: float = DEFAULT_SETTLE


def object_name(run_id: str) -> str:
    """The name of a run's Pod and ConfigMap (DNS-1123: lower case, digits, dashes)."""
    return f"verdict-{run_id.lower()}"


def labels(run_id: str) -> dict[str, str]:
    """Labels on everything a run creates: who manages it and which run it belongs to."""
    return {LABEL_MANAGED: MANAGED_BY, LABEL_RUN: run_id.lower()}


def runtime_for(command: str) -> str:
    """The runtime a command needs: ``node`` for node/npm/npx/yarn, else ``python``."""
    words = command.replace("&&", " ").replace(";", " ").split()
    node = {"node", "npm", "npx", "yarn", "pnpm"}
    return "node" if any(os.path.basename(word) in node for word in words) else "python"


def pack_project(project: Path) -> tuple[bytes, list[str]]:
    """The project as a gzipped tar of its regular files and directories.

    Links, sockets, pipes and unreadable files are left out (named in the returned list);
    ``.git`` and ``__pycache__`` are never needed.  File modes keep only the owner's
    execute bit, so a script stays runnable.
    """
    buffer = io.BytesIO()
    skipped: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for root, dirs, files in os.walk(project):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_NAMES)
            for name in sorted(dirs) + sorted(files):
                path = Path(root, name)
                rel = path.relative_to(project).as_posix()
                info = path.lstat()
                if stat.S_ISDIR(info.st_mode) and not path.is_symlink():
                    entry = tarfile.TarInfo(rel)
                    entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(entry)
                elif stat.S_ISREG(info.st_mode):
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        skipped.append(f"{rel} (unreadable: {exc.strerror})")
                        continue
                    entry = tarfile.TarInfo(rel)
                    entry.size = len(data)
                    entry.mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
                    tar.addfile(entry, io.BytesIO(data))
                else:
                    kind = "link" if stat.S_ISLNK(info.st_mode) else "special file"
                    skipped.append(f"{rel} ({kind})")
                    if stat.S_ISLNK(info.st_mode) and name in dirs:
                        dirs.remove(name)
    return buffer.getvalue(), skipped


def agent_source() -> bytes:
    """The probe agent's source, shipped in the ConfigMap."""
    return resources.files("console.sandbox").joinpath("kube_agent.py").read_bytes()


def configmap(plan: PodPlan, namespace: str, archive: bytes) -> dict[str, Any]:
    """The ConfigMap carrying the packed project and the agent.

    Raises:
        UsageError: the project does not fit in one ConfigMap (the message names the limit).
    """
    agent = agent_source()
    encoded = (len(archive) + 2) // 3 * 4 + (len(agent) + 2) // 3 * 4
    if encoded + _ENVELOPE > CONFIGMAP_LIMIT:
        raise UsageError(
            f"the project is too big for a Kubernetes sandbox: {len(archive) / 1024:.0f} KiB"
            f" packed, and a ConfigMap holds at most {CONFIGMAP_LIMIT // 1024} KiB"
            " (base64-encoded, with the agent)"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": object_name(plan.run_id),
            "namespace": namespace,
            "labels": labels(plan.run_id),
        },
        "immutable": True,
        "binaryData": {
            "project.tar.gz": base64.b64encode(archive).decode("ascii"),
            "agent.py": base64.b64encode(agent).decode("ascii"),
        },
    }


def restricted_security() -> dict[str, Any]:
    """The container security context of the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(cpu: str, memory_mb: int, ephemeral_mb: int) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": f"{memory_mb}Mi", "ephemeral-storage": f"{ephemeral_mb}Mi"}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def app_environment(plan: PodPlan) -> list[dict[str, str]]:
    """The app's environment: the same allowlist as the local sandbox, plus ``--env``."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": HOME_DIR,
        "TMPDIR": "/tmp",
        "HOST": "0.0.0.0",
        "PYTHONUNBUFFERED": "1",
        "VERDICT_RUN": plan.run_id,
        plan.port_env: str(plan.port),
    }
    if plan.port_env != "PORT":
        env["PORT"] = str(plan.port)
    env.update(plan.env)
    return [{"name": key, "value": value} for key, value in env.items()]


def active_deadline(plan: PodPlan) -> int:
    """Seconds after which the kubelet ends the pod even if no worker is left to do it."""
    total = plan.start_timeout + plan.settle + (plan.install_timeout if plan.install else 0)
    return int(total) + DEADLINE_MARGIN


def pod(plan: PodPlan, settings: SandboxSettings) -> dict[str, Any]:
    """The run's Pod: unpack (+ install) init containers, then the app and the agent."""
    name = object_name(plan.run_id)
    image = settings.kube_images.get(runtime_for(plan.run)) or settings.kube_agent_image
    secure = restricted_security()
    work_mounts = [
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "home", "mountPath": HOME_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    app_resources = _resources(settings.kube_cpu, plan.memory_mb, settings.kube_ephemeral_mb)
    small = _resources("100m", 64, 64)
    unpack = {
        "name": UNPACK_CONTAINER,
        "image": settings.kube_agent_image,
        "command": [
            "python3",
            f"{AGENT_DIR}/agent.py",
            "unpack",
            f"{AGENT_DIR}/project.tar.gz",
            WORK_DIR,
        ],
        "securityContext": secure,
        "resources": small,
        "volumeMounts": [
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "bundle", "mountPath": AGENT_DIR, "readOnly": True},
        ],
    }
    init = [unpack]
    env = app_environment(plan)
    if plan.install:
        init.append(
            {
                "name": INSTALL_CONTAINER,
                "image": image,
                "command": ["sh", "-c", plan.install],
                "workingDir": WORK_DIR,
                "env": env,
                "securityContext": secure,
                "resources": app_resources,
                "volumeMounts": work_mounts,
            }
        )
    agent_env = {
        "VERDICT_AGENT_PORT": str(plan.port),
        "VERDICT_AGENT_HEALTH": plan.health or "",
        "VERDICT_AGENT_TIMEOUT": f"{plan.start_timeout:g}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": max(int(settings.stop_grace), 1),
        "activeDeadlineSeconds": active_deadline(plan),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": init,
        "containers": [
            {
                "name": APP_CONTAINER,
                "image": image,
                "command": ["sh", "-c", plan.run],
                "workingDir": WORK_DIR,
                "env": env,
                "securityContext": secure,
                "resources": app_resources,
                "volumeMounts": work_mounts,
            },
            {
                "name": AGENT_CONTAINER,
                "image": settings.kube_agent_image,
                "command": ["python3", f"{AGENT_DIR}/agent.py"],
                "env": [{"name": k, "value": v} for k, v in agent_env.items()],
                "securityContext": secure,
                "resources": small,
                "volumeMounts": [{"name": "bundle", "mountPath": AGENT_DIR, "readOnly": True}],
            },
        ],
        "volumes": [
            {"name": "bundle", "configMap": {"name": name}},
            {"name": "work", "emptyDir": {"sizeLimit": f"{settings.kube_ephemeral_mb}Mi"}},
            {"name": "home", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    if settings.kube_node_selector:
        spec["nodeSelector"] = dict(settings.kube_node_selector)
    if settings.kube_tolerations:
        spec["tolerations"] = [dict(t) for t in settings.kube_tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": settings.kube_namespace,
            "labels": labels(plan.run_id),
        },
        "spec": spec,
    }


def run_objects(plan: PodPlan, settings: SandboxSettings, project: Path) -> list[dict[str, Any]]:
    """The ConfigMap and the Pod for one run of ``project``."""
    archive, _ = pack_project(project)
    return [configmap(plan, settings.kube_namespace, archive), pod(plan, settings)]


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream (``kubectl apply -f -`` reads it)."""
    import yaml

    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
