"""The Kubernetes API as the sandbox uses it: configuration, timeouts, one-line errors.

The ``kubernetes`` package (the ``kube`` extra) is imported only here, inside functions.
Requests go through its authenticated ``ApiClient`` but are sent and read raw: JSON dicts
instead of generated models (a watch event costs a ``json.loads``, not a model tree), and
the log's ``sinceTime``, which the generated client does not offer, can be passed.  Every
call has a timeout; a missing configuration, a forbidden verb or an unreachable server
becomes :class:`KubeApiError`, a :class:`UsageError` whose message is one line naming what
failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.errors import UsageError

CONNECT_TIMEOUT = 5.0
MAX_LINE = 1024 * 1024


class KubeApiError(UsageError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0: not reached)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _describe(method: str, path: str) -> str:
    """``create pods in verdict-sandbox`` from a method and a resource path."""
    verbs = {"GET": "get", "POST": "create", "DELETE": "delete", "PATCH": "patch"}
    verb = verbs.get(method, method)
    parts = [p for p in path.split("?")[0].split("/") if p]
    # /api/v1/... or /apis/GROUP/VERSION/...; then [namespaces/NS/]PLURAL[/NAME[/SUB]]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = "/".join(rest[:1] + rest[2:3]) if rest else (parts[-1] if parts else "")
    where = f" in namespace {namespace}" if namespace else ""
    return f"{verb} {resource}{where}"


class KubeApi:
    """An authenticated connection to one API server (blocking; call from threads)."""

    def __init__(self, api_client: Any, request_timeout: float = 10.0) -> None:
        self.client = api_client
        self.request_timeout = request_timeout
        self.calls = 0  # requests sent, for benchmarks and tests

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.client.configuration.host)

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None,
        body: Any,
        timeout: float | tuple[float, float],
    ) -> Any:
        import urllib3

        self.calls += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        params = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*params, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = type(exc).__name__
            raise KubeApiError(
                f"cannot reach the Kubernetes API server at {self.host}"
                f" ({_describe(method, path)}): {reason}"
            ) from exc
        if response.status >= 400:
            data = response.read()
            response.response.release_conn()
            message, reason = "", ""
            try:
                status = json.loads(data)
                message, reason = str(status.get("message", "")), str(status.get("reason", ""))
            except ValueError:
                message = data[:200].decode("utf-8", "replace")
            what = _describe(method, path)
            if response.status == 403:
                text = f"forbidden: cannot {what} (check the worker's Role: verdict kube setup)"
            elif response.status == 401:
                text = f"unauthorized at {self.host}: the credentials were refused ({what})"
            else:
                text = f"{what} failed: {response.status} {reason or response.reason}"
                if message:
                    text += f": {message.splitlines()[0][:200]}"
            raise KubeApiError(text, response.status, reason)
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """One request answered with JSON, within the request timeout."""
        response = self._send(method, path, query, body, (CONNECT_TIMEOUT, self.request_timeout))
        data = response.read()
        response.response.release_conn()
        return json.loads(data) if data else {}

    def stream(
        self,
        path: str,
        query: list[tuple[str, str]],
        *,
        idle_timeout: float,
        holder: list[Any] | None = None,
    ) -> Iterator[bytes]:
        """A streamed GET (watch, followed log), line by line; ``idle_timeout`` bounds the
        wait for each chunk, so a silently dead connection ends the stream.  The open
        response is put in ``holder``, so another thread can shut it down."""
        response = self._send("GET", path, query, None, (CONNECT_TIMEOUT, idle_timeout))
        raw = response.response
        if holder is not None:
            holder[:] = [raw]
        pending = b""
        try:
            for chunk in raw.stream(4096, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
                if len(pending) > MAX_LINE:
                    # A line without end (a hostile app): hand it on in pieces rather
                    # than hold it all.
                    yield pending
                    pending = b""
            if pending:
                yield pending
        finally:
            raw.release_conn()


def _has_kubeconfig() -> bool:
    paths = os.environ.get("KUBECONFIG", "")
    if paths:
        return any(Path(p).is_file() for p in paths.split(os.pathsep) if p)
    return Path("~/.kube/config").expanduser().is_file()


def connect(context: str | None = None, request_timeout: float = 10.0) -> KubeApi:
    """Load the kubeconfig (``context``, else its current one) or the in-cluster config.

    Raises:
        KubeApiError: no configuration, an unknown context, or the ``kube`` extra is missing.
    """
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise KubeApiError(
            "the kubernetes client is not installed: pip install 'verdict-console[kube]'"
        ) from exc
    configuration = client.Configuration()
    try:
        if context or _has_kubeconfig():
            # KUBECONFIG is read now: the client reads it once, when first imported.
            config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG") or None,
                context=context,
                client_configuration=configuration,
            )
        else:
            config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as exc:
        where = f"context {context!r}" if context else "KUBECONFIG, ~/.kube/config or in-cluster"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KubeApiError(f"no usable Kubernetes configuration ({where}): {first}") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise KubeApiError(f"cannot read the kubeconfig: {exc}") from exc
    return KubeApi(client.ApiClient(configuration), request_timeout)
