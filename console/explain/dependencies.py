"""Whether a project's dependency file already lists a module the app failed to import.

When it does, the fix is to run the install step, not to add the dependency.  The files read
are the usual ones of each ecosystem: requirements*.txt, pyproject.toml, Pipfile, setup.cfg,
package.json, Gemfile, go.mod, Cargo.toml and composer.json.  Project files are untrusted:
only regular files directly in the project root are read, each at most 1 MB, and anything
unreadable or malformed counts as "not listed".
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MAX_BYTES = 1_000_000

# Import names that differ from the distribution that provides them.
_PY_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "pil": "pillow",
    "cv2": "opencv_python",
    "sklearn": "scikit_learn",
    "bs4": "beautifulsoup4",
    "dotenv": "python_dotenv",
    "jwt": "pyjwt",
    "mysqldb": "mysqlclient",
    "dateutil": "python_dateutil",
    "jose": "python_jose",
    "multipart": "python_multipart",
}


# Import names of libraries web apps commonly use (lower case): a missing one is a missing
# dependency, never a file the project forgot.  A name outside this list, the standard
# library and the project's files is more likely the project's own module.
COMMON_LIBRARIES = frozenset(
    """
    aiofiles aiohttp aiosqlite alembic anyio apscheduler argon2 asyncpg attr attrs authlib
    babel bcrypt bleach blinker boto3 botocore bs4 cachetools celery certifi cffi chardet
    charset_normalizer click colorama cryptography cv2 dash databases dateutil django
    djangorestframework dns docx dotenv elasticsearch email_validator falcon fastapi flasgger
    flask flask_bcrypt flask_caching flask_cors flask_jwt_extended flask_limiter flask_login
    flask_mail flask_marshmallow flask_migrate flask_restful flask_restx flask_socketio
    flask_sqlalchemy flask_wtf gevent google graphene greenlet grpc gunicorn h11 httpcore
    httpx huggingface_hub idna itsdangerous jinja2 jose jsonschema jwt kafka langchain
    limits loguru lxml mako markdown markupsafe marshmallow matplotlib motor msgpack
    multipart mysqldb mysql nltk numpy oauthlib openai openpyxl orjson packaging pandas
    paramiko passlib peewee pendulum pika pil playwright plotly prometheus_client psutil
    psycopg psycopg2 pydantic pydantic_settings pygments pyjwt pymongo pymysql pytest
    pytz qrcode rabbitmq redis reportlab requests rest_framework rich scipy selenium
    sentry_sdk simplejson six sklearn slugify socketio sqlalchemy sqlmodel starlette
    stripe structlog tenacity tiktoken toml tornado tqdm transformers twilio typer
    typing_extensions ujson urllib3 uvicorn uvloop validators waitress websocket websockets
    werkzeug whitenoise wtforms xlsxwriter yaml zmq
    """.split()
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.strip().lower())


def _read(root: Path, name: str) -> str | None:
    path = root / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _requirement_names(lines: Iterable[str]) -> set[str]:
    names = set()
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
        if match:
            names.add(_norm(match[1]))
    return names


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return {}


def _python(root: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(root.glob("requirements*.txt"))[:10]:
        text = _read(root, path.name)
        if text:
            found[path.name] = _requirement_names(text.splitlines())
    pyproject = _toml(_read(root, "pyproject.toml") or "")
    project = pyproject.get("project", {})
    declared = list(project.get("dependencies", []) if isinstance(project, dict) else [])
    poetry = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
    declared += list(poetry) if isinstance(poetry, dict) else []
    if declared:
        found["pyproject.toml"] = _requirement_names(str(d) for d in declared)
    pipfile = _toml(_read(root, "Pipfile") or "")
    if isinstance(pipfile.get("packages"), dict):
        found["Pipfile"] = {_norm(n) for n in pipfile["packages"]}
    setup_cfg = _read(root, "setup.cfg")
    if setup_cfg and "install_requires" in setup_cfg:
        found["setup.cfg"] = _requirement_names(
            setup_cfg.split("install_requires", 1)[1].splitlines()
        )
    return found


def _node(root: Path) -> dict[str, set[str]]:
    try:
        manifest = json.loads(_read(root, "package.json") or "{}")
    except ValueError:
        return {}
    names: set[str] = set()
    if isinstance(manifest, dict):
        for key in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
            section = manifest.get(key)
            if isinstance(section, dict):
                names.update(n.lower() for n in section)
    return {"package.json": names} if names else {}


def _ruby(root: Path) -> dict[str, set[str]]:
    text = _read(root, "Gemfile") or ""
    names = {m.lower() for m in re.findall(r"""^\s*gem\s+['"]([\w.-]+)['"]""", text, re.M)}
    return {"Gemfile": names} if names else {}


def _go(root: Path) -> dict[str, set[str]]:
    text = _read(root, "go.mod") or ""
    names = set(re.findall(r"^\s*(?:require\s+)?([\w.-]+\.[\w./-]+)\s+v[\w.+-]+", text, re.M))
    return {"go.mod": names} if names else {}


def _rust(root: Path) -> dict[str, set[str]]:
    manifest = _toml(_read(root, "Cargo.toml") or "")
    names: set[str] = set()
    for key in ("dependencies", "dev-dependencies"):
        section = manifest.get(key)
        if isinstance(section, dict):
            names.update(_norm(n) for n in section)
    return {"Cargo.toml": names} if names else {}


def _php(root: Path) -> dict[str, set[str]]:
    try:
        manifest = json.loads(_read(root, "composer.json") or "{}")
    except ValueError:
        return {}
    section = manifest.get("require") if isinstance(manifest, dict) else None
    names = {n.lower() for n in section} if isinstance(section, dict) else set()
    return {"composer.json": names} if names else {}


def _candidates(module: str) -> set[str]:
    """Names the dependency files may use for an imported ``module``."""
    module = module.strip().strip("'\"")
    if module.startswith("@"):
        return {"/".join(module.lower().split("/")[:2])}
    top = re.split(r"[./:]", module, maxsplit=1)[0].lower()
    names = {top, _norm(top), module.lower()}
    if top in _PY_DISTRIBUTIONS:
        names.add(_PY_DISTRIBUTIONS[top])
    return names


_READERS: tuple[Callable[[Path], dict[str, set[str]]], ...] = (
    _python,
    _node,
    _ruby,
    _rust,
    _php,
)


def declared_in(project_root: Path | None, module: str) -> str | None:
    """The dependency file in ``project_root`` that lists ``module``, or None.

    ``module`` is the name the error gave: a Python import (``flask.cli``), a Node package
    (``@nestjs/core``, ``lodash/fp``), a Ruby require (``sinatra/base``), a Go import path or
    a Rust crate.  Local paths (``./routes``, ``/app/dist/app``) are never "listed".
    """
    if project_root is None or not module or module.startswith((".", "/", "\\")):
        return None
    if re.match(r"^[A-Za-z]:[\\/]", module) or not project_root.is_dir():
        return None
    for path in _go(project_root).get("go.mod", ()):
        if module == path or module.startswith(path + "/"):
            return "go.mod"
    wanted = _candidates(module)
    for reader in _READERS:
        for file, names in reader(project_root).items():
            if wanted & names:
                return file
    return None
