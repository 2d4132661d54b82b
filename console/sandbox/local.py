"""Local sandbox: a per-run copy of the project, a scrubbed environment, rlimits, Linux
namespaces (its own PID namespace and ``/proc``; an unprivileged user), and a process-tree
watcher that finds the app's port, enforces memory, and kills every process of the run
(setsid'd grandchildren and SIGTERM-ignoring children included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from console import paths
from console.sandbox import namespaces, proctree
from console.sandbox.base import LineCallback, Phase, PortHit, Stream
from console.sandbox.copy import CopyLimits, CopyReport, copy_project
from console.sandbox.netns import Relay, socket_in
from console.sandbox.sweep import remove_run_dir, write_owner
from console.settings import SandboxSettings

LAUNCHER = namespaces.LAUNCHER
MAX_LINE_CHARS = 16_384  # a longer line is cut (its start kept) so memory stays bounded
MAX_LINE_BYTES = MAX_LINE_CHARS * 4
MEMORY_CHECK_INTERVAL = 0.1


def free_port() -> int:
    """A TCP port that is free right now on every interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def connect_host(address: str, family: int) -> str:
    """The address the prober dials for a socket bound to ``address``."""
    if family == 6 and address.startswith("::ffff:"):  # IPv4-mapped
        address, family = address[len("::ffff:") :], 4
    if family == 4:
        return "127.0.0.1" if address in ("0.0.0.0", "") else address
    return "::1" if address == "::" else address


class _Protocol(asyncio.SubprocessProtocol):
    """Receives output bytes and the exit; splits output into lines as it arrives."""

    def __init__(self, on_line: LineCallback) -> None:
        self.on_line = on_line
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open = {1, 2}
        self._partial: dict[int, bytes] = {1: b"", 2: b""}
        # Bytes skipped of an over-long line whose start was already emitted.
        self._dropping: dict[int, int] = {1: 0, 2: 0}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        now = time.time()
        if self._dropping[fd]:  # inside an over-long line: skip to its end
            end = data.find(b"\n")
            if end < 0:
                self._dropping[fd] += len(data)
                return
            self._dropping[fd] += end
            self._end_drop(fd, now)
            data = data[end + 1 :]
        buffer = self._partial[fd] + data
        *lines, rest = buffer.split(b"\n")
        for raw in lines:
            self._emit(fd, raw, now)
        if len(rest) > MAX_LINE_BYTES:
            # No newline in sight: keep the line's start, count (not store) the rest, so
            # one endless line costs one stored line, not thousands of pieces.
            self._emit(fd, rest[:MAX_LINE_BYTES], now)
            self._dropping[fd] = len(rest) - MAX_LINE_BYTES
            rest = b""
        self._partial[fd] = rest

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self._partial.get(fd):
            self._emit(fd, self._partial[fd], time.time())
            self._partial[fd] = b""
        if self._dropping.get(fd):
            self._end_drop(fd, time.time())
        self._open.discard(fd)
        if not self._open:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()

    def _end_drop(self, fd: int, now: float) -> None:
        stream: Stream = "stdout" if fd == 1 else "stderr"
        self.on_line(stream, f"…[{self._dropping[fd]} more bytes of this line dropped]", now)
        self._dropping[fd] = 0

    def _emit(self, fd: int, raw: bytes, now: float) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " …[line cut]"
        stream: Stream = "stdout" if fd == 1 else "stderr"
        self.on_line(stream, text, now)


class LocalProcess:
    """A command running in a :class:`LocalSandbox`, and its whole process tree."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _Protocol,
        *,
        marker: bytes,
        memory_limit: int,
        preferred_port: int | None = None,
        isolated: bool = False,
        network_none: bool = False,
        run_id: str = "",
    ) -> None:
        self._preferred = preferred_port
        self._transport = transport
        self._protocol = protocol
        self._marker = marker
        self._memory_limit = memory_limit
        root = transport.get_pid()
        self._root = root
        # pid -> start time: every process ever seen in this run's tree.
        self._known: dict[int, int | None] = {root: proctree.start_time(root)}
        self._foreign: set[int] = set()  # our children known not to belong to this run
        # An isolated run's launcher and the namespace's init are ours, not the app's: their
        # memory is not the app's to be judged by.
        self._isolated = isolated
        self._helpers: set[int] = {root}
        self._network_none = network_none
        self._run_id = run_id
        self._relays: dict[int, Relay] = {}  # app port -> relay (network none only)
        self._diag: socket.socket | None = None  # netlink in the app's network namespace
        self._oom = False
        self._killed = False
        self._stopped = False
        self.peak_rss = 0
        self._monitor = asyncio.create_task(self._watch_memory(), name=f"memory-{root}")

    # --- RunningProcess ------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._root

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    @property
    def oom_killed(self) -> bool:
        return self._oom

    @property
    def killed_by_us(self) -> bool:
        return self._killed

    async def wait(self) -> int:
        """Wait for the root process (not for pipes a detached grandchild may hold)."""
        await self._protocol.exited.wait()
        code = self._transport.get_returncode()
        assert code is not None
        return code

    async def poll_port(self) -> PortHit | None:
        """One look at the tree's listening sockets; prefers the port we offered."""
        # Once the launcher has entered its namespace (not before: the socket would be ours).
        if self._network_none and self._diag is None and not proctree.same_netns(self._root):
            with contextlib.suppress(OSError):  # without it, /proc/<pid>/net/tcp is read
                self._diag = await asyncio.to_thread(
                    socket_in, self._root, socket.AF_NETLINK, socket.SOCK_RAW, 4
                )
        found = proctree.listening_ports(self.tree(), self._diag)
        if not found:
            return None
        pid, sock = min(found, key=lambda hit: (hit[1].port != self._preferred, hit[1].port))
        others = tuple(sorted({s.port for _, s in found} - {sock.port}))
        host = connect_host(sock.address, sock.family)
        if self._network_none:  # unreachable from here: dial the run's relay instead
            relay = self._relays.get(sock.port)
            if relay is None:
                relay = Relay(pid, host, sock.port, self._run_id)
                await relay.start()
                self._relays[sock.port] = relay
            host = relay.address
        return PortHit(sock.port, sock.address, pid, host, others)

    async def stop(self, grace: float) -> None:
        """Kill the whole tree (grace, then SIGKILL), reap it, and close the pipes."""
        if self._stopped:
            return
        self._stopped = True
        if self.returncode is None:
            self._killed = True
        self._monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._monitor
        for relay in self._relays.values():
            await relay.close()
        if self._diag is not None:
            self._diag.close()
        targets = self._everyone()
        for pid in targets:
            proctree.send(pid, signal.SIGTERM)
        if targets:
            deadline = time.monotonic() + grace
            while True:  # polled: the tree's processes are not ours to await
                if time.monotonic() >= deadline or not self._alive(self._everyone(scan=False)):
                    break
                await asyncio.sleep(0.025)
        for _round in range(50):
            alive = self._alive(self._everyone())
            if not alive:
                break
            for pid in alive:
                proctree.send(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._protocol.exited.wait(), 5.0)
        self._reap_orphans()
        # Output still in flight is delivered before the pipes close.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._protocol.pipes_closed.wait(), 2.0)
        self._transport.close()

    # --- the tree ------------------------------------------------------------------------
    def tree(self) -> list[int]:
        """Live (non-zombie) processes of the run: descendants of the root and of orphans
        re-parented to us that carry the run's marker."""
        roots = [pid for pid in self._known if self._same(pid)]
        ours = proctree.children(os.getpid())
        self._foreign.intersection_update(ours)  # forget children that are gone
        for pid in ours:
            if pid in self._known or pid in self._foreign:
                continue
            info = proctree.stat(pid)
            if info is None:
                continue
            # A zombie's environment is unreadable; its session still tells where it began.
            zombie_of_ours = info.state == "Z" and info.session == self._root
            if zombie_of_ours or proctree.has_marker(pid, self._marker):
                self._known[pid] = info.start
                roots.append(pid)
            else:
                self._foreign.add(pid)  # another run's process, or not a sandbox's at all
        seen: set[int] = set()
        alive: list[int] = []
        stack = list(roots)
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            st = proctree.state(pid)
            if st is None:
                continue
            if pid not in self._known:
                self._known[pid] = proctree.start_time(pid)
            if st != "Z":
                alive.append(pid)
            stack.extend(proctree.children(pid))
        self._reap_orphans()
        return sorted(alive, key=lambda p: (p != self._root, p))

    def _same(self, pid: int) -> bool:
        """The pid still names the process we saw (not a reused pid)."""
        started = self._known.get(pid)
        return started is not None and proctree.start_time(pid) == started

    def _everyone(self, *, scan: bool = True) -> list[int]:
        pids = set(self.tree())
        if scan:  # processes that escaped both the tree and us (e.g. re-parented to init)
            pids.update(proctree.scan_marked(self._marker))
        return sorted(pids)

    def _alive(self, pids: list[int]) -> list[int]:
        return [pid for pid in pids if proctree.state(pid) not in (None, "Z")]

    def _reap_orphans(self) -> None:
        """Collect zombies of the run that were re-parented to us (never the root: asyncio
        owns it)."""
        me = os.getpid()
        for pid in list(self._known):
            if pid == self._root:
                continue
            info = proctree.stat(pid)
            if info is None:
                del self._known[pid]
            elif info.state == "Z" and info.ppid == me and proctree.reap(pid):
                del self._known[pid]

    async def _watch_memory(self) -> None:
        """Kill the tree when its resident memory passes the limit (classified ``oom``)."""
        while self.returncode is None:
            await asyncio.sleep(MEMORY_CHECK_INTERVAL)
            pids = self.tree()
            if self._isolated and len(self._helpers) == 1:
                self._helpers.update(proctree.children(self._root))
            app = [pid for pid in pids if pid not in self._helpers] if self._isolated else pids
            rss = proctree.rss_bytes(app)
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self._memory_limit:
                self._oom = True
                for pid in pids:
                    proctree.send(pid, signal.SIGKILL)
                return


class LocalSandbox:
    """Runs a project's commands as local subprocesses, one fresh directory per run."""

    kind = "local"  # said in ProcessStarted events

    def __init__(
        self,
        run_id: str,
        *,
        settings: SandboxSettings | None = None,
        memory_mb: int | None = None,
        env: dict[str, str] | None = None,
        port_env: str = "PORT",
        base_dir: Path | None = None,
        keep: bool = False,
    ) -> None:
        self.run_id = run_id
        self.settings = settings or SandboxSettings()
        self.memory_mb = memory_mb or self.settings.memory_mb
        self.port = free_port()
        self.workdir = (base_dir or paths.runs_dir(create=True)) / run_id
        self.keep = keep
        self._extra_env = dict(env or {})
        self._port_env = port_env
        self._processes: list[LocalProcess] = []
        self.copy_report: CopyReport | None = None
        self.notes: list[str] = []  # system lines for the run's log (e.g. what the copy skipped)
        if self.settings.isolation == "off":
            why = "turned off in the settings (sandbox.isolation = off)"
        else:
            why = namespaces.unavailable()
        self.isolated = not why
        self.isolation = namespaces.describe(why)
        self.network_none = False
        if self.isolated and self.settings.network == "none":
            no_network = namespaces.unavailable(network_none=True)
            self.network_none = not no_network
            self.isolation += (
                ", network none" if self.network_none else f", network host: {no_network}"
            )
            if no_network:
                self.notes.append(f"[warning: the project has network access: {no_network}]")
        self._uid = namespaces.run_uid(run_id) if self.isolated else None
        if not self.isolated:
            self.notes.append(f"[warning: no namespace isolation: {why}]")
        # Directories of the project copy put first on PATH (the run's virtualenv bin).
        self.path_prepend: list[str] = []
        # (source, place in the project copy): shown read-only to every command of the run.
        self.read_only_binds: list[tuple[Path, Path]] = []

    @property
    def project_dir(self) -> Path:
        return self.workdir / "project"

    def environment(self) -> dict[str, str]:
        """The child's whole environment: an allowlist, never the parent's secrets."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(self.workdir),
            "TMPDIR": str(self.workdir / "tmp"),
            "HOST": "0.0.0.0",
            # Python block-buffers a pipe; log regexes need lines as they are printed.
            "PYTHONUNBUFFERED": "1",
            # npm would ask the registry for a newer npm, fund and audit on every call.
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            self._port_env: str(self.port),
        }
        if self._port_env != "PORT":
            env["PORT"] = str(self.port)
        env.update(self._extra_env)
        if self.path_prepend:
            first = [str(self.project_dir / entry) for entry in self.path_prepend]
            env["PATH"] = os.pathsep.join([*first, env["PATH"]])
        env[proctree.MARKER_ENV] = self.run_id
        return env

    async def prepare(self, project: Path) -> None:
        """Copy ``project`` into the run's directory: VCS data, special files and symlinks
        leading outside the project are left out (see :mod:`console.sandbox.copy`).

        Raises:
            CopyRefused: the project is a system directory or larger than the limits.
        """
        stop = threading.Event()
        copying = asyncio.ensure_future(asyncio.to_thread(self._copy, project, stop))
        try:
            await asyncio.shield(copying)
        except asyncio.CancelledError:
            # Ctrl-C or a cancelled job: the copy stops at its next file, then goes away.
            stop.set()
            with contextlib.suppress(Exception):
                await copying
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)
            raise

    def _copy(self, project: Path, stop: threading.Event) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        (self.workdir / "tmp").mkdir(parents=True)
        write_owner(self.workdir)  # from now on a sweep can tell whether we are alive
        limits = CopyLimits(
            max_bytes=self.settings.max_copy_mb * 1024 * 1024,
            max_files=self.settings.max_copy_files,
        )
        report = copy_project(
            project, self.project_dir, exclude=self.workdir.parent, limits=limits, stop=stop
        )
        self.copy_report = report
        note = report.note()
        if note:
            self.notes.append(note)
        if self._uid is not None:
            namespaces.hand_over(self.workdir, self._uid)

    def bind_read_only(self, source: Path, target: Path) -> bool:
        """Show ``source`` read-only at ``target`` (a directory to be, inside the project
        copy) to every command of this run, without copying it.  False when this sandbox
        has no mount namespace, or ``target`` is taken: the caller copies instead."""
        if not self.isolated:
            return False
        project = self.project_dir.resolve()
        place = target.parent.resolve() / target.name
        named = (str(source), str(place))
        if any(os.pathsep in text or "=" in text for text in named):
            return False
        if not place.is_relative_to(project) or place == project:
            return False
        if place.is_symlink() or place.exists() and (not place.is_dir() or any(place.iterdir())):
            return False
        place.mkdir(parents=True, exist_ok=True)
        self.read_only_binds.append((source, place))
        return True

    def launch_argv(self, command: str) -> list[str]:
        """The argv that applies the limits and then runs ``sh -c command``."""
        data = (2 * self.memory_mb + 512) * 1024 * 1024  # backstop; the RSS watchdog is first
        argv = [
            sys.executable,
            "-I",
            "-S",
            str(LAUNCHER),
            "--parent",
            str(os.getpid()),
            "--nofile",
            str(self.settings.open_files),
            "--fsize",
            str(self.settings.file_size_mb * 1024 * 1024),
            "--data",
            str(data),
        ]
        if self.isolated:
            argv.append("--isolate")
            if self.network_none:
                argv.append("--network-none")
            if self.read_only_binds:
                pairs = (f"{source}={target}" for source, target in self.read_only_binds)
                argv += ["--bind-ro", os.pathsep.join(pairs)]
            if self._uid is not None:
                hidden = os.pathsep.join(str(p) for p in (paths.data_dir(), paths.config_dir()))
                argv += ["--uid", str(self._uid), "--workdir", str(self.workdir)]
                argv += ["--hide", hidden, "--ways", os.pathsep.join(self._ways())]
        return [*argv, "--", "sh", "-c", command]

    def _ways(self) -> list[str]:
        """Where the app's programs live: the interpreters and ``$PATH``, resolved."""
        found = [os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)]
        for entry in self.environment()["PATH"].split(os.pathsep):
            if entry:
                found.append(os.path.realpath(entry))
        return sorted(set(found))

    async def start(self, command: str, *, phase: Phase, on_line: LineCallback) -> LocalProcess:
        """Start ``command`` in its own session with the sandbox's environment and limits.

        ``phase`` does not change how a local command runs; it is part of the protocol for
        sandboxes that do (a pod may run the install step in an init container).
        """
        proctree.enable_subreaper()
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(on_line),
            *self.launch_argv(command),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self.project_dir),
            env=self.environment(),
            start_new_session=True,
        )
        process = LocalProcess(
            transport,
            protocol,
            marker=f"{proctree.MARKER_ENV}={self.run_id}".encode(),
            memory_limit=self.memory_mb * 1024 * 1024,
            preferred_port=self.port,
            isolated=self.isolated,
            network_none=self.network_none,
            run_id=self.run_id,
        )
        self._processes.append(process)
        return process

    async def close(self) -> None:
        """Stop every process started here and delete the run's directory."""
        for process in self._processes:
            await process.stop(self.settings.stop_grace)
        if not self.keep:
            await asyncio.to_thread(remove_run_dir, self.workdir)
