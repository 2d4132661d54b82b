"""A test kubelet for the emulator of :mod:`tests.support.kmock_kube`.

:class:`Kubelet` runs the pods it finds for real, as local processes: it unpacks the run's
ConfigMap with the agent's own ``unpack``, as the init container would, starts a "pause"
process in a new network namespace (``unshare -n``), and runs the app and the probe agent
inside it (``nsenter``), so the agent sees only the pod's sockets.  Their output becomes
the containers' logs and their ends the container statuses.  What a kubelet reports
without running anything (an image pull failure, an unschedulable pod, an OOM kill, a
deadline) is scripted per run with :meth:`Kubelet.script`.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from console.sandbox.kube_agent import safe_extract
from tests.support.kmock_kube import CONFIGMAPS, PODS, KubeEmulator, stamp


def _running(name: str) -> dict[str, Any]:
    return {"name": name, "state": {"running": {"startedAt": stamp()}}, "ready": True}


def _terminated(name: str, code: int, reason: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": code, "reason": reason or ("Completed" if code == 0
                                                                    else "Error")}
    if code > 128:
        state["signal"] = code - 128
    return {"name": name, "state": {"terminated": state}}


class Kubelet:
    """Runs the emulator's pods as local processes (see the module docstring)."""

    def __init__(
        self,
        emulator: KubeEmulator,
        namespace: str = "verdict-sandbox",
        runner: type[_PodRunner] | None = None,
    ) -> None:
        self.emulator = emulator
        self.runner = runner or _PodRunner
        self.namespace = namespace
        self.scripts: dict[str, str] = {}
        self.default_script = "run"
        self.started: list[str] = []
        self._pods: dict[str, _PodRunner] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)

    def script(self, kind: str) -> None:
        """What the next pods do: ``run`` (for real), ``image_pull``, ``unschedulable``,
        ``config_error``, ``oom`` or ``deadline``."""
        self.default_script = kind

    def start(self) -> Kubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for runner in self._pods.values():
            runner.kill()

    def _loop(self) -> None:
        while not self._stop.is_set():
            live = {p["metadata"]["name"]: p for p in self.emulator.objects(PODS, self.namespace)}
            for name, pod in live.items():
                if name not in self._pods:
                    runner = self.runner(self, pod, self.default_script)
                    self._pods[name] = runner
                    self.started.append(name)
                    threading.Thread(target=runner.run, daemon=True).start()
            for name, runner in self._pods.items():
                if name not in live:
                    runner.kill()
            self._stop.wait(0.02)


class _PodRunner:
    def __init__(self, kubelet: Kubelet, pod: dict[str, Any], script: str) -> None:
        self.kubelet = kubelet
        self.emulator = kubelet.emulator
        self.pod = pod
        self.name = pod["metadata"]["name"]
        self.namespace = pod["metadata"]["namespace"]
        self.script = script
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed = threading.Event()
        self.init: list[dict[str, Any]] = []
        self.containers: dict[str, dict[str, Any]] = {}

    def status(self, phase: str, **extra: Any) -> None:
        status = {
            "phase": phase,
            "initContainerStatuses": self.init,
            "containerStatuses": list(self.containers.values()),
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            **extra,
        }
        self.emulator.patch_status(self.namespace, self.name, status, node="node-1")

    def kill(self) -> None:
        self.killed.set()
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def run(self) -> None:
        spec = self.pod["spec"]
        if self.script == "unschedulable":
            condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": "0/3 nodes are available: 3 Insufficient memory."}
            self.emulator.patch_status(self.namespace, self.name,
                                       {"phase": "Pending", "conditions": [condition]})
            return
        app = spec["containers"][0]
        if self.script in ("image_pull", "config_error"):
            reason = "ErrImagePull" if self.script == "image_pull" else "CreateContainerConfigError"
            self.init = [_terminated(c["name"], 0) for c in spec.get("initContainers", [])]
            self.containers = {
                app["name"]: {"name": app["name"], "image": app["image"],
                              "state": {"waiting": {"reason": reason, "message": "failed"}}}
            }
            self.status("Pending")
            return
        with tempfile.TemporaryDirectory(prefix="kubelet-") as scratch:
            self._run_pod(Path(scratch), spec)

    def _unpack(self, root: Path) -> None:
        cms = self.emulator.objects(CONFIGMAPS, self.namespace)
        cm = next(c for c in cms if c["metadata"]["name"] == self.name)
        archive = base64.b64decode(cm["binaryData"]["project.tar.gz"])
        (root / "work").mkdir()
        (root / "project.tar.gz").write_bytes(archive)
        safe_extract(str(root / "project.tar.gz"), str(root / "work"))
        (root / "verdict").mkdir()
        (root / "verdict" / "agent.py").write_bytes(
            base64.b64decode(cm["binaryData"]["agent.py"])
        )
        (root / "home").mkdir()
        (root / "tmp").mkdir()

    def _env(self, container: dict[str, Any], root: Path) -> dict[str, str]:
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        if "HOME" in env:
            env["HOME"] = str(root / "home")
        if "TMPDIR" in env:
            env["TMPDIR"] = str(root / "tmp")
        return env

    def _start(self, argv: list[str], env: dict[str, str], cwd: Path, container: str,
               netns: int | None) -> subprocess.Popen[bytes]:
        prefix = ["nsenter", "-t", str(netns), "-n"] if netns else []
        proc = subprocess.Popen(prefix + argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\n")
                self.emulator.append_log(self.namespace, self.name, container, text)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        proc.reader = reader  # type: ignore[attr-defined]
        return proc

    def _finish(self, container: str, proc: subprocess.Popen[bytes]) -> int:
        code = proc.wait()
        proc.reader.join(5)  # type: ignore[attr-defined]
        self.emulator.end_log(self.namespace, self.name, container)
        return 128 - code if code < 0 else code

    def _run_pod(self, root: Path, spec: dict[str, Any]) -> None:
        self._unpack(root)
        self.init = [_terminated("unpack", 0)]
        self.status("Pending")
        for init in spec.get("initContainers", [])[1:]:
            self.init.append(_running(init["name"]))
            self.status("Pending")
            proc = self._start(init["command"], self._env(init, root), root / "work",
                               init["name"], None)
            code = self._finish(init["name"], proc)
            self.init[-1] = _terminated(init["name"], code)
            if code != 0:
                self.status("Failed")
                return
        app, agent = spec["containers"]
        if self.script == "deadline":
            self.containers = {app["name"]: _running(app["name"])}
            self.status("Running")
            time.sleep(0.3)
            self.emulator.end_log(self.namespace, self.name, app["name"])
            self.status("Failed", reason="DeadlineExceeded", message="deadline")
            return
        if self.script == "oom":
            self.containers = {app["name"]: _running(app["name"])}
            self.status("Running")
            self.emulator.append_log(self.namespace, self.name, app["name"], "allocating")
            self.emulator.end_log(self.namespace, self.name, app["name"])
            self.containers[app["name"]] = _terminated(app["name"], 137, "OOMKilled")
            self.status("Failed")
            return
        ready = root / "netns-ready"
        pause = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", f"ip link set lo up && touch {ready} && exec sleep 3600"],
            start_new_session=True,
        )
        self.processes.append(pause)
        try:
            deadline = time.monotonic() + 10
            while not ready.exists() and pause.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)  # polling a condition with a deadline
            self._run_containers(root, app, agent, pause.pid)
        finally:
            self.kill()
            pause.wait()

    def _run_containers(self, root: Path, app: dict[str, Any], agent: dict[str, Any],
                        netns: int) -> None:
        agent_argv = ["python3", str(root / "verdict" / "agent.py")]
        agent_proc = self._start(agent_argv, self._env(agent, root), root, agent["name"], netns)
        app_proc = self._start(app["command"], self._env(app, root), root / "work",
                               app["name"], netns)
        self.containers = {app["name"]: _running(app["name"]),
                           agent["name"]: _running(agent["name"])}
        self.status("Running")
        code = self._finish(app["name"], app_proc)
        if self.killed.is_set():
            return
        self.containers[app["name"]] = _terminated(app["name"], code)
        self.status("Running")
        del agent_proc

