"""The run's manifests, field by field against the restricted Pod Security Standard, and
the probe agent's reading of /proc/net/tcp."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path

import pytest
import yaml

from console.errors import UsageError
from console.sandbox import kube_agent, kube_pod
from console.settings import SandboxSettings


def _objects(tmp_path: Path, **plan: object) -> tuple[dict, dict]:
    (tmp_path / "app.py").write_text("print('hi')\n")
    values: dict[str, object] = {"run_id": "0ABC", "run": "python3 app.py"}
    values.update(plan)
    cm, pod = kube_pod.run_objects(
        kube_pod.PodPlan(**values),  # type: ignore[arg-type]
        SandboxSettings(kind="kube", kube_node_selector={"pool": "sandbox"},
                        kube_tolerations=[{"key": "sandbox", "operator": "Exists"}]),
        tmp_path,
    )
    return cm, pod


def test_every_container_follows_the_restricted_profile(tmp_path: Path) -> None:
    _, pod = _objects(tmp_path, install="pip install -r requirements.txt")
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    containers = spec["initContainers"] + spec["containers"]
    assert [c["name"] for c in containers] == ["unpack", "install", "app", "agent"]
    for container in containers:
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["readOnlyRootFilesystem"] is True
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory", "ephemeral-storage"}
        assert "ports" not in container  # nothing is exposed: the agent probes from inside
    # Writable places are size-limited emptyDirs; volumes are of restricted-allowed types.
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= {"emptyDir", "configMap"}
        if "emptyDir" in volume:
            assert volume["emptyDir"]["sizeLimit"].endswith("Mi")
    app = spec["containers"][0]
    assert {m["mountPath"] for m in app["volumeMounts"]} == {"/work", "/home/app", "/tmp"}
    assert spec["activeDeadlineSeconds"] > 0 and spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"] == {"pool": "sandbox"}
    assert spec["tolerations"] == [{"key": "sandbox", "operator": "Exists"}]


def test_objects_are_labelled_and_the_env_is_an_allowlist(tmp_path: Path) -> None:
    cm, pod = _objects(tmp_path, env={"MODE": "ok"}, port_env="APP_PORT")
    for obj in (cm, pod):
        assert obj["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "verdict-console",
            "verdict.dev/run-id": "0abc",
        }
        assert obj["metadata"]["namespace"] == "verdict-sandbox"
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["APP_PORT"] == "8000" and env["MODE"] == "ok" and env["VERDICT_RUN"] == "0ABC"
    assert not any(key.startswith(("VERDICT_LLM", "OPENAI")) for key in env)


def test_the_configmap_carries_the_project_and_the_agent(tmp_path: Path) -> None:
    os.symlink("/etc/passwd", tmp_path / "leak")
    cm, _ = _objects(tmp_path)
    archive = base64.b64decode(cm["binaryData"]["project.tar.gz"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["app.py"]  # the link to a host file is left out
    agent = base64.b64decode(cm["binaryData"]["agent.py"])
    assert agent == Path(kube_agent.__file__).read_bytes()
    assert yaml.safe_load_all(kube_pod.to_yaml([cm]))


def test_a_project_too_big_is_one_line_naming_the_limit(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(os.urandom(900 * 1024))
    with pytest.raises(UsageError) as caught:
        _objects(tmp_path)
    assert "a ConfigMap holds at most 1024 KiB" in str(caught.value)


def test_runtime_image_follows_the_command() -> None:
    assert kube_pod.runtime_for("npm start") == "node"
    assert kube_pod.runtime_for("/usr/bin/node server.js") == "node"
    assert kube_pod.runtime_for("python3 -m app") == "python"


def test_agent_reads_listening_sockets_of_both_tables() -> None:
    tcp = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1F40 00000000:0000 0A 0\n"
        "   1: 0100007F:1F41 0100007F:9C40 01 0\n"
    )
    tcp6 = (
        "  sl  local_address                         remote_address st\n"
        "   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A\n"
    )
    assert kube_agent.parse_listening(tcp) == [(8000, "127.0.0.1")]
    assert kube_agent.parse_listening(tcp6) == [(5000, "::")]


def test_agent_finds_a_real_listener_and_probes_it(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204 if self.path == "/health" else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert kube_agent.listening_ports(netlink=False).get(port) == "127.0.0.1"
        if kube_agent.netlink_listening() is not None:  # both ways see the same listener
            assert kube_agent.listening_ports().get(port) == "127.0.0.1"
        kube_agent.Agent("/health", 5.0).probe(port)
    finally:
        server.shutdown()
    marks = [json.loads(line[len(kube_agent.MARKER):]) for line in
             capsys.readouterr().out.splitlines()]
    assert marks == [
        {"ev": "http", "path": "/", "port": port, "status": 200},
        {"ev": "http", "path": "/health", "port": port, "status": 204},
    ]


def test_unpack_refuses_links_and_escapes(tmp_path: Path) -> None:
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        data = b"print('hi')\n"
        entry = tarfile.TarInfo("pkg/app.py")
        entry.size, entry.mode = len(data), 0o755
        tar.addfile(entry, io.BytesIO(data))
    dest = tmp_path / "work"
    dest.mkdir()
    assert kube_agent.safe_extract(str(good), str(dest)) == 1
    assert (dest / "pkg" / "app.py").read_bytes() == b"print('hi')\n"
    assert os.access(dest / "pkg" / "app.py", os.X_OK)
    for name, kind in (("../escape.py", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
        bad = tmp_path / f"bad{kind!r}.tar"
        with tarfile.open(bad, "w") as tar:
            entry = tarfile.TarInfo(name)
            entry.type = kind
            entry.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(entry, io.BytesIO(b""))
        with pytest.raises(ValueError, match="refused"):
            kube_agent.safe_extract(str(bad), str(dest))
    assert not (tmp_path / "escape.py").exists() and not (dest / "link").exists()


@pytest.mark.parametrize(
    ("method", "path", "said"),
    [
        ("POST", "/api/v1/namespaces", "create namespaces"),
        ("GET", "/api/v1/namespaces/ns/pods", "get pods in namespace ns"),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", "get pods/log in namespace ns"),
        ("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles",
         "create roles in namespace ns"),
        ("DELETE", "/api/v1/namespaces/ns/configmaps/c", "delete configmaps in namespace ns"),
    ],
)
def test_failed_calls_name_the_verb_and_resource(method: str, path: str, said: str) -> None:
    from console.sandbox.kube_api import _describe

    assert _describe(method, path) == said
