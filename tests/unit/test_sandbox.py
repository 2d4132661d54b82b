"""The local sandbox's pieces: limits, environment, port discovery, log lines, tree kill."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from pathlib import Path

import psutil
import pytest

from console.model import Event, LogBatch
from console.sandbox import proctree
from console.sandbox.local import LocalSandbox, connect_host
from console.sandbox.logs import LogCollector
from console.settings import SandboxSettings

SETTINGS = SandboxSettings(stop_grace=0.3, open_files=256, file_size_mb=5)


class Lines:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, stream: str, text: str, ts: float) -> None:
        self.items.append((stream, text))

    def texts(self) -> list[str]:
        return [text for _, text in self.items]


@pytest.fixture
async def sandbox(tmp_path: Path):
    project = tmp_path / "project-src"
    project.mkdir()
    (project / "hello.txt").write_text("hi")
    box = LocalSandbox(
        "t" + os.urandom(4).hex(),
        settings=SETTINGS,
        memory_mb=300,
        env={"GIVEN": "yes"},
        base_dir=tmp_path / "runs",
    )
    await box.prepare(project)
    yield box
    await box.close()


async def run(box: LocalSandbox, command: str) -> tuple[int, Lines]:
    lines = Lines()
    proc = await box.start(command, phase="run", on_line=lines)
    code = await asyncio.wait_for(proc.wait(), 30)
    await proc.stop(0.3)
    return code, lines


async def test_limits_are_applied_without_preexec(sandbox: LocalSandbox) -> None:
    code, lines = await run(sandbox, "cat /proc/self/limits")
    assert code == 0
    limits = {text[:26].strip(): text[26:].split() for text in lines.texts()}
    assert limits["Max open files"][0] == "256"
    assert limits["Max file size"][0] == str(5 * 1024 * 1024)
    assert int(limits["Max data size"][0]) == (2 * 300 + 512) * 1024 * 1024
    assert limits["Max address space"][0] == "unlimited"  # Node and the JVM need it


async def test_environment_is_an_allowlist(
    sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "canary-42")
    code, lines = await run(sandbox, "env")
    names = {text.split("=", 1)[0] for text in lines.texts()}
    assert "SECRET_TOKEN" not in names and not any("canary-42" in t for t in lines.texts())
    assert {"PATH", "HOME", "PORT", "HOST", "GIVEN", proctree.MARKER_ENV} <= names
    assert f"HOME={sandbox.workdir}" in lines.texts()
    assert f"PORT={sandbox.port}" in lines.texts()


async def test_project_is_copied_not_touched(sandbox: LocalSandbox, tmp_path: Path) -> None:
    code, _ = await run(sandbox, "echo changed > hello.txt && test -f hello.txt")
    assert code == 0
    assert (tmp_path / "project-src" / "hello.txt").read_text() == "hi"
    assert (sandbox.project_dir / "hello.txt").read_text() == "changed\n"


async def test_node_starts_under_the_limits(sandbox: LocalSandbox) -> None:
    code, lines = await run(sandbox, "node -e 'console.log(\"node ok\", process.version)'")
    assert code == 0, lines.texts()
    assert lines.texts()[0].startswith("node ok v")


@pytest.mark.skipif(shutil.which("java") is None, reason="no JVM on this machine")
async def test_jvm_starts_under_the_limits(sandbox: LocalSandbox) -> None:
    (sandbox.project_dir / "Main.java").write_text(
        "public class Main { public static void main(String[] a) {"
        ' System.out.println("jvm ok " + Runtime.getRuntime().maxMemory()); } }'
    )
    code, lines = await run(sandbox, "java Main.java")
    assert code == 0, lines.texts()
    assert lines.texts()[-1].startswith("jvm ok ")


async def test_lines_split_decoded_and_cut(sandbox: LocalSandbox) -> None:
    script = (
        "import sys; o=sys.stdout.buffer; o.write(b'a\\r\\nb\\xff\\n'); o.write(b'x'*70000);"
        " o.write(b'\\nno newline at end'); sys.stderr.write('err line\\n')"
    )
    code, lines = await run(sandbox, f'python3 -c "{script}"')
    assert code == 0
    texts = lines.texts()
    assert texts[:2] == ["a", "b\ufffd"]
    long_pieces = [t for t in texts if t.startswith("xxx")]
    assert long_pieces and all(len(t) <= 16_384 + 20 for t in long_pieces)
    assert "no newline at end" in texts
    assert ("stderr", "err line") in lines.items


def test_listening_ports_from_proc_match_psutil() -> None:
    with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        v6.bind(("::1", 0))
        v6.listen()
        ours = {(sock.port, sock.address) for _, sock in proctree.listening_ports([os.getpid()])}
        want = {(v4.getsockname()[1], "127.0.0.1"), (v6.getsockname()[1], "::1")}
        assert want <= ours
        via_psutil = {
            (c.laddr.port, c.laddr.ip)
            for c in psutil.Process().net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert ours == via_psutil
        # The netlink query and the /proc/net/tcp tables agree.
        assert proctree._netlink_listeners() == proctree._proc_listening_table(os.getpid())


def test_connect_host() -> None:
    assert connect_host("0.0.0.0", 4) == "127.0.0.1"
    assert connect_host("127.0.0.2", 4) == "127.0.0.2"
    assert connect_host("::", 6) == "::1"
    assert connect_host("::ffff:127.0.0.1", 6) == "127.0.0.1"


async def test_stop_kills_stubborn_and_detached_descendants(sandbox: LocalSandbox) -> None:
    lines = Lines()
    command = (
        "sh -c 'trap \"\" TERM; while true; do sleep 0.05; done' & "
        "setsid sh -c 'sleep 300 & echo detached $!; wait' & "
        "echo stubborn $!; wait"
    )
    proc = await sandbox.start(command, phase="run", on_line=lines)
    deadline = time.monotonic() + 20
    while len([t for t in lines.texts() if t.startswith(("stubborn", "detached"))]) < 2:
        assert time.monotonic() < deadline, lines.texts()
        await asyncio.sleep(0.02)
    # Seen from here (the pids the app prints are its namespace's own): the whole tree.
    pids = proc.tree()
    assert len(pids) >= 4
    assert all(proctree.state(pid) not in (None, "Z") for pid in pids)
    await proc.stop(0.3)
    assert proc.killed_by_us
    assert [pid for pid in pids if proctree.state(pid) is not None] == []


async def test_memory_watchdog_kills_the_tree(sandbox: LocalSandbox) -> None:
    proc = await sandbox.start(
        "python3 -c \"import time\nb=[]\nwhile True: b.append(b'x'*2**22); time.sleep(0.005)\"",
        phase="run",
        on_line=Lines(),
    )
    code = await asyncio.wait_for(proc.wait(), 30)
    await proc.stop(0.3)
    assert proc.oom_killed and code < 0


async def test_log_collector_batches_caps_and_watches() -> None:
    events: list[Event] = []
    logs = LogCollector("r", emit=events.append, max_lines=50, expect=["ready"], fail=["FATAL"])
    logs.start()
    start = time.monotonic()
    for i in range(200):
        logs.on_line("stdout", f"line {i}", time.time())
        await asyncio.sleep(0)
    logs.on_line("stdout", "server ready", time.time())
    assert logs.expect_event.is_set() and not logs.fail_event.is_set()
    logs.on_line("stderr", "FATAL: gone", time.time())
    assert logs.fail_event.is_set() and logs.fail_hit is not None
    await asyncio.sleep(0.12)
    await logs.aclose()
    elapsed = time.monotonic() - start
    batches = [e for e in events if isinstance(e, LogBatch)]
    stored = [line for b in batches for line in b.lines]
    assert len(stored) == 51 and stored[-1].stream == "system"
    assert [line.seq for line in stored[:50]] == list(range(1, 51))
    assert len(batches) <= elapsed / 0.05 + 2  # at most ~20 batches per second
    assert logs.tail[-1].text == "FATAL: gone"
