"""Load an OpenAPI (3.x) or Swagger (2.0) document and match a request to one operation.

Sources: a file (JSON or YAML), a URL, a project directory (well-known file names), or a
running app (``/openapi.json``, ``/v3/api-docs``, ``/swagger.json``, ``/v2/api-docs``).
Matching takes the method and the request URL (full URL or path; query string, fragment and
trailing slash ignored; with or without the servers' base path) and prefers literal
segments over templates, segment by segment from the left, so ``/user/login`` beats
``/user/{username}``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel

from console.errors import UsageError
from console.explain.signatures import BUILD_DIRS, INSTALLED_DIRS

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WELL_KNOWN_ENDPOINTS = ("/openapi.json", "/v3/api-docs", "/swagger.json", "/v2/api-docs")
SPEC_FILE_NAMES = (
    "openapi.json",
    "openapi.yaml",
    "openapi.yml",
    "swagger.json",
    "swagger.yaml",
    "swagger.yml",
    "api-docs.json",
    "api.yaml",
)
_SKIP_DIRS = INSTALLED_DIRS | BUILD_DIRS
_MAX_SPEC_BYTES = 20_000_000


class OpenApiError(UsageError):
    """The spec cannot be read or is not an OpenAPI/Swagger document."""


class Operation(BaseModel):
    """One matched operation of the spec."""

    method: str
    path: str
    operation_id: str | None = None
    summary: str | None = None
    description: str | None = None
    tags: list[str] = []

    def to_json(self) -> dict[str, Any]:
        """The ``operation`` object of ``verdict explain --json``."""
        return {
            "method": self.method,
            "path": self.path,
            "operationId": self.operation_id,
            "summary": self.summary,
        }


# --- loading -----------------------------------------------------------------------------


def parse_spec(text: str, *, origin: str = "spec") -> dict[str, Any]:
    """Parse JSON or YAML text into a validated spec mapping.

    Raises:
        OpenApiError: not JSON/YAML, or not an OpenAPI/Swagger document.
    """
    data: Any
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OpenApiError(f"{origin}: not valid JSON or YAML: {first}") from exc
    if not isinstance(data, dict) or not ("openapi" in data or "swagger" in data):
        raise OpenApiError(f"{origin}: not an OpenAPI or Swagger document")
    if not isinstance(data.get("paths"), dict):
        raise OpenApiError(f"{origin}: the document has no 'paths' object")
    return data


def _fetch(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body: bytes = response.read(_MAX_SPEC_BYTES)
    return body.decode("utf-8", errors="replace")


def load_url(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """Load a spec from a URL, or from a running app's well-known endpoints."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.path not in ("", "/"):
        candidates = [url]
    else:  # a running app's base URL: try the endpoints frameworks serve specs at
        candidates = [origin + path for path in WELL_KNOWN_ENDPOINTS]
    problem = "no spec found"
    for candidate in candidates:
        try:
            return parse_spec(_fetch(candidate, timeout), origin=candidate)
        except (urllib.error.URLError, OSError, OpenApiError) as exc:
            problem = str(getattr(exc, "reason", None) or exc)
    raise OpenApiError(f"{url}: cannot load an OpenAPI spec ({problem})")


def find_spec_file(directory: Path, *, max_depth: int = 4) -> Path | None:
    """A well-known spec file in a project directory (shallowest first)."""
    level = [directory]
    for _ in range(max_depth + 1):
        following: list[Path] = []
        for folder in level:
            for name in SPEC_FILE_NAMES:
                candidate = folder / name
                if candidate.is_file():
                    return candidate
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            following += [c for c in children if c.name not in _SKIP_DIRS]
        level = following
    return None


def load_spec(source: str | Path, *, timeout: float = 5.0) -> dict[str, Any]:
    """Load a spec from a file, a directory, a URL or a running app's base URL.

    Raises:
        OpenApiError: unreadable, not found, or not a spec (one-line message).
    """
    text = str(source)
    if re.match(r"^https?://", text):
        return load_url(text, timeout=timeout)
    path = Path(text).expanduser()
    if path.is_dir():
        found = find_spec_file(path)
        if found is None:
            raise OpenApiError(f"{path}: no OpenAPI/Swagger file found in the directory")
        path = found
    try:
        if path.stat().st_size > _MAX_SPEC_BYTES:
            raise OpenApiError(f"{path}: larger than {_MAX_SPEC_BYTES // 1_000_000} MB")
        content = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise OpenApiError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_spec(content, origin=str(path))


# --- matching ----------------------------------------------------------------------------


def _server_paths(servers: Any) -> list[str]:
    """Path parts of a ``servers`` list, variables replaced by their defaults."""
    bases: list[str] = []
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, dict) and isinstance(server.get("url"), str):
            url = server["url"]
            path = urlsplit(url).path if "://" in url else url
            variables = server.get("variables") or {}
            for name, var in variables.items() if isinstance(variables, dict) else ():
                default = var.get("default") if isinstance(var, dict) else None
                if default is not None:
                    path = path.replace("{" + name + "}", str(default))
            bases.append(path)
    return bases


def base_paths(spec: dict[str, Any]) -> list[str]:
    """Path prefixes the operations are served under (``basePath`` / ``servers``)."""
    bases: list[str] = []
    if isinstance(spec.get("basePath"), str):
        bases.append(spec["basePath"])
    bases += _server_paths(spec.get("servers"))
    cleaned = {_trim(b) for b in bases}
    cleaned.discard("")
    return sorted(cleaned, key=len, reverse=True)


def _resolve(spec: dict[str, Any], item: Any) -> Any:
    """``item`` with a local ``$ref`` (``#/components/pathItems/X``) followed; None when
    the reference cannot be followed (external files, cycles)."""
    for _ in range(10):
        if not (isinstance(item, dict) and isinstance(item.get("$ref"), str)):
            return item
        ref = item["$ref"]
        if not ref.startswith("#/"):
            return None
        node: Any = spec
        for part in ref[2:].split("/"):
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        item = node
    return None


def _trim(path: str) -> str:
    path = path.strip()
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/")


def _segments(path: str) -> list[str]:
    return [s for s in _trim(path).split("/") if s]


_TEMPLATE = re.compile(r"\{[^/{}]+\}")


def _segment_score(template: str, actual: str) -> int | None:
    """2 for a literal match, 1 for a partial template, 0 for a whole template, else None."""
    if "{" not in template:
        return 2 if template == actual else None
    if _TEMPLATE.fullmatch(template):
        return 0 if actual else None
    if _TEMPLATE.fullmatch(actual):
        return 0  # the request itself names a template segment ("/cards/{id}")
    pattern = "".join(
        "[^/]+" if _TEMPLATE.fullmatch(part) else re.escape(part)
        for part in re.split(r"(\{[^/{}]+\})", template)
        if part
    )
    return 1 if re.fullmatch(pattern, actual) else None


def _request_segments(url: str) -> list[str]:
    """The request path's segments, each percent-decoded after the split (so an encoded
    slash, ``/files/a%2Fb``, stays inside its segment)."""
    url = url.strip()
    parts = urlsplit(url)
    path = parts.path if (parts.scheme or url.startswith("//")) else url.split("?", 1)[0]
    path = path.split("#", 1)[0]
    return [unquote(s) for s in path.split("/") if s]


def _candidates(request: list[str], bases: list[str]) -> list[list[str]]:
    """The request's segments as they are, and with each base path that prefixes them cut."""
    found = [request]
    for base in bases:
        prefix = _segments(base)
        if prefix and request[: len(prefix)] == prefix:
            found.append(request[len(prefix) :])
    return found


def match_operation(spec: dict[str, Any], method: str, url: str) -> Operation | None:
    """The operation for ``method`` + ``url``, or None when no path and method match.

    Base paths come from the operation's ``servers``, else the path item's, else the
    document's (``servers`` / ``basePath``), as OpenAPI overrides them.
    """
    method = method.strip().lower()
    request = _request_segments(url)
    document = _candidates(request, base_paths(spec))
    best: tuple[tuple[int, ...], str, dict[str, Any]] | None = None
    for template, raw_item in (spec.get("paths") or {}).items():
        item = _resolve(spec, raw_item)
        if not isinstance(item, dict) or not isinstance(template, str):
            continue
        operation = item.get(method)
        if not isinstance(operation, dict):
            continue
        servers = operation.get("servers") or item.get("servers")
        candidates = _candidates(request, _server_paths(servers)) if servers else document
        wanted = _segments(template)
        for actual in candidates:
            if len(actual) != len(wanted):
                continue
            scores = [_segment_score(w, a) for w, a in zip(wanted, actual, strict=True)]
            if any(s is None for s in scores):
                continue
            key = tuple(s for s in scores if s is not None)
            if best is None or key > best[0]:
                best = (key, template, operation)
    if best is None:
        return None
    _, template, operation = best
    tags = operation.get("tags")
    return Operation(
        method=method.upper(),
        path=template,
        operation_id=operation.get("operationId"),
        summary=operation.get("summary") or operation.get("description") or None,
        description=operation.get("description"),
        tags=[str(t) for t in tags] if isinstance(tags, list) else [],
    )
