"""The job payload a matrix writes and a worker reads, and prompt template rendering.

Kept apart from ``console.matrix`` so a worker that received a job from Kafka can build its
checks from ``Job.payload`` alone, without the matrix file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from console.generate.result import GenerationResult
from console.model import CheckSpec, Job

PAYLOAD_FORMAT = 1

# ``{name}`` is a placeholder; any other brace (JSON in a prompt, say) is left alone.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_in(template: str) -> list[str]:
    """The placeholder names a template uses, in order of appearance."""
    return _PLACEHOLDER.findall(template)


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; unknown names are left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def replay_root_for(replay_dir: Path | str, spec: str) -> str:
    """The replay directory of one spec: ``{spec}`` in the configured dir is replaced."""
    return render_template(str(replay_dir), {"spec": spec})


def check_spec_for_job(
    job: Job, project_dir: Path, generated: GenerationResult | None
) -> CheckSpec:
    """Merge the job's spec checks with what the generator said about the project.

    The spec wins wherever it gives a value (``run``, ``install``, ``health``); the
    generator fills the rest.  ``port_env`` comes from the generator (``PORT`` if unsaid).
    """
    spec: dict[str, Any] = dict(job.payload.get("spec") or {})
    check: dict[str, Any] = dict(job.payload.get("check") or {})
    fields: dict[str, Any] = {
        "project": project_dir,
        "expect_log": list(spec.get("expect_log") or []),
        "fail_log": list(spec.get("fail_log") or []),
    }
    for key in ("run", "install", "health"):
        value = spec.get(key)
        if value is None and generated is not None:
            value = getattr(generated, key)
        if value is not None:
            fields[key] = value
    if generated is not None and generated.port_env:
        fields["port_env"] = generated.port_env
    if check.get("start_timeout") is not None:
        fields["start_timeout"] = float(check["start_timeout"])
    if check.get("memory_mb") is not None:
        fields["memory_mb"] = int(check["memory_mb"])
    return CheckSpec(**fields)
