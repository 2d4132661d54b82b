"""Running a run's pod for real under podman + runc, with the pod's restrictions.

No registry is needed: the containers' root filesystem is a local one, a small tmpfs with
the host's ``/usr`` and ``/etc`` bound read-only (it must be a mount of its own, or runc's
``pivot_root`` fails).  Every container runs as in the restricted pod: user 10001, all
capabilities dropped, no new privileges, read-only root, size-limited tmpfs for ``/tmp``
and ``$HOME``, explicit ``--ulimit``s (podman's defaults exceed what this VM allows), and
one network namespace per pod (``--network none`` for a "pause" container, which the app and
the agent join with ``--network container:<pause>``, as in a Kubernetes pod).
``/sys/fs/cgroup`` is a tmpfs because runc cannot mount this VM's split cgroup v1
hierarchy into a container.

:class:`PodmanRunner` plugs into the test kubelet of :mod:`tests.support.kmock_kube`, so a
run goes through the real sandbox code: the emulator's pod → containers under podman →
their logs and exit codes → the worker's verdict.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.kmock_kube import CONFIGMAPS
from tests.support.kubelet import _PodRunner, _running, _terminated

RUN_AS = "10001"
BASE = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def ensure_podman() -> str | None:
    """Install podman and runc when missing (Debian); the reason they cannot run, or None."""
    if os.geteuid() != 0:
        return "podman tests need root (to mount the containers' root filesystem)"
    if shutil.which("podman") is None or shutil.which("runc") is None:
        if shutil.which("apt-get") is None:
            return "podman and runc are missing and apt-get is not available"
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "podman", "runc"],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            return f"apt-get install podman runc failed: {done.stderr.strip()[-200:]}"
    return None


@contextmanager
def local_rootfs(path: Path) -> Iterator[Path]:
    """A root filesystem for the containers: a tmpfs with /usr and /etc bound read-only."""
    path.mkdir(parents=True, exist_ok=True)
    mounts: list[Path] = []

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    try:
        run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path))
        mounts.append(path)
        for name in ("usr", "etc"):
            target = path / name
            target.mkdir()
            run("mount", "--bind", f"/{name}", str(target))
            mounts.append(target)
            run("mount", "-o", "remount,bind,ro", str(target))
        for link in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{link}"):
                os.symlink(os.readlink(f"/{link}"), path / link)
        for name in ("proc", "sys", "dev", "tmp", "work", "home/app", "verdict"):
            (path / name).mkdir(parents=True, exist_ok=True)
        yield path
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def podman_problem(rootfs: Path) -> str | None:
    """Why a restricted container cannot run here (first line of podman's error), or None."""
    done = subprocess.run(
        [*BASE, "run", "--rm", *LIMITS, "--tmpfs", "/sys/fs/cgroup", "--network", "none",
         "--user", RUN_AS, "--read-only", "--cap-drop=ALL", "--rootfs", str(rootfs), "true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 0:
        return None
    return "podman cannot run a restricted container here: " + (
        done.stderr.strip().splitlines() or ["?"]
    )[-1][:200]


class PodmanRunner(_PodRunner):
    """Runs a pod's containers under podman (see the module docstring)."""

    rootfs: Path = Path("/nonexistent")

    def _unpack(self, root: Path) -> None:
        cms = self.emulator.objects(CONFIGMAPS, self.namespace)
        cm = next(c for c in cms if c["metadata"]["name"] == self.name)
        bundle = root / "bundle"
        bundle.mkdir()
        for key, value in cm["binaryData"].items():
            (bundle / key).write_bytes(base64.b64decode(value))
        work = root / "work"
        work.mkdir()
        os.chown(work, int(RUN_AS), int(RUN_AS))  # an emptyDir the pod's user can write
        root.chmod(0o755)

    def _container_args(self, container: dict[str, Any], root: Path) -> list[str]:
        args = [
            *LIMITS, "--tmpfs", "/sys/fs/cgroup", "--read-only", "--user", f"{RUN_AS}:{RUN_AS}",
            "--cap-drop=ALL", "--security-opt", "no-new-privileges",
            "--tmpfs", "/tmp:size=256m,mode=1777", "--tmpfs", "/home/app:size=64m,mode=1777",
            "--name", f"{self.name}-{container['name']}", "--rm",
        ]  # fmt: skip
        for mount in container.get("volumeMounts", []):
            source = {"work": root / "work", "bundle": root / "bundle"}.get(mount["name"])
            if source is not None:
                suffix = ":ro" if mount.get("readOnly") else ""
                args += ["-v", f"{source}:{mount['mountPath']}{suffix}"]
        if container.get("workingDir"):
            args += ["-w", container["workingDir"]]
        for entry in container.get("env", []):
            args += ["-e", f"{entry['name']}={entry['value']}"]
        return args

    def _podman(self, container: dict[str, Any], root: Path, network: str) -> Any:
        argv = [*BASE, "run", *self._container_args(container, root), "--network", network,
                "--rootfs", str(self.rootfs), *container["command"]]  # fmt: skip
        return self._start(argv, dict(os.environ), root, container["name"], None)

    def kill(self) -> None:
        self.killed.set()
        # The pause container last: the others use its network namespace.
        for group in (("unpack", "install", "app", "agent"), ("pause",)):
            names = [f"{self.name}-{c}" for c in group]
            subprocess.run(
                [*BASE, "rm", "--force", "--ignore", "--time", "0", *names],
                capture_output=True, timeout=60,
            )  # fmt: skip
        super().kill()

    def _run_pod(self, root: Path, spec: dict[str, Any]) -> None:
        self._unpack(root)
        for init in spec.get("initContainers", []):
            self.init.append(_running(init["name"]))
            self.status("Pending")
            code = self._finish(init["name"], self._podman(init, root, "none"))
            self.init[-1] = _terminated(init["name"], code)
            if code != 0:
                self.status("Failed")
                return
        app, agent = spec["containers"]
        # The pod's network namespace is held by a "pause" container, as in Kubernetes, so
        # the app's container can end (and be removed) while the agent still runs.
        pause = {"name": "pause", "command": ["sleep", "3600"]}
        self._podman(pause, root, "none")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.killed.is_set():
            state = subprocess.run(
                [*BASE, "container", "inspect", "-f", "{{.State.Running}}",
                 f"{self.name}-pause"], capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if state.stdout.strip() == "true":
                break
        network = f"container:{self.name}-pause"
        self._podman(agent, root, network)
        app_proc = self._podman(app, root, network)
        self.containers = {app["name"]: _running(app["name"]),
                           agent["name"]: _running(agent["name"])}  # fmt: skip
        self.status("Running")
        code = self._finish(app["name"], app_proc)
        if not self.killed.is_set():
            self.containers[app["name"]] = _terminated(app["name"], code)
            self.status("Running")
