"""Matrix files: parsing, validation (one-line errors), expansion and stable job ids."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from console.errors import UsageError
from console.generate.payload import check_spec_for_job
from console.generate.result import GenerationResult
from console.matrix import Matrix, MatrixError, load_matrix
from console.model import Combination, Job

VALID = """
[settings]
slots = 3
start_timeout = 12
memory_mb = 256

[[spec]]
name = "api"
task = "A JSON API for notes."
health = "/health"
fail_log = ["Traceback"]

[[spec]]
name = "page"
task = "A static status page."
run = "node server.js"
install = "npm ci --offline"
start_timeout = 4

[[prompt]]
version = "v1"
template = "prompts/v1.txt"

[[prompt]]
version = "v2"
template = "prompts/v2.txt"

[[model]]
name = "alpha"
base_url = "http://127.0.0.1:9/v1"
params = { temperature = 0.1 }

[[model]]
name = "beta"
price = { input = 1.0, output = 2.0 }

[[model]]
name = "vendor/gamma:7b"

[generator]
kind = "replay"
dir = "recorded/{spec}"
"""


def write_matrix(root: Path, text: str = VALID, name: str = "matrix.toml") -> Path:
    (root / "prompts").mkdir(exist_ok=True)
    (root / "prompts" / "v1.txt").write_text("Build this:\n{task}\n", encoding="utf-8")
    (root / "prompts" / "v2.txt").write_text(
        'Spec {spec} for {model} ({version}):\n{task}\nAnswer like {"files": []}.\n',
        encoding="utf-8",
    )
    for spec in ("api", "page"):
        (root / "recorded" / spec).mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def matrix(tmp_path: Path) -> Matrix:
    return load_matrix(write_matrix(tmp_path))


def test_expansion_gives_one_job_per_spec_prompt_model(matrix: Matrix) -> None:
    jobs = matrix.jobs()
    assert len(jobs) == 2 * 2 * 3
    assert [j.combination.key for j in jobs[:3]] == [
        "api/v1/alpha",
        "api/v1/beta",
        "api/v1/vendor/gamma:7b",
    ]
    assert len({j.job_id for j in jobs}) == 12
    assert {j.attempt for j in jobs} == {1}
    assert [j.combination.spec for j in matrix.jobs(spec="page")] == ["page"] * 6


def test_job_ids_are_stable_and_depend_on_inputs_and_attempt(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = write_matrix(tmp_path / "a")
    ids = [j.job_id for j in load_matrix(first).jobs()]
    assert ids == [j.job_id for j in load_matrix(first).jobs()]
    # The same matrix elsewhere on disk gives the same ids.
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "a", moved)
    assert [j.job_id for j in load_matrix(moved / "matrix.toml").jobs()] == ids
    # A new attempt is a new job; changing one spec's task changes only its jobs.
    second = [j.job_id for j in load_matrix(first).jobs(attempt=2)]
    assert not set(second) & set(ids)
    first.write_text(first.read_text().replace("A static status page.", "A status page."))
    changed = [j.job_id for j in load_matrix(first).jobs()]
    assert changed[:6] == ids[:6] and not set(changed[6:]) & set(ids[6:])
    # So does editing a prompt template (its text is part of the job).
    (tmp_path / "a" / "prompts" / "v1.txt").write_text("Please build:\n{task}\n")
    edited = [j.job_id for j in load_matrix(first).jobs()]
    assert edited[3:6] == changed[3:6] and edited[:3] != changed[:3]


def test_payload_carries_everything_a_remote_worker_needs(matrix: Matrix) -> None:
    job = matrix.job_for(Combination(spec="api", prompt="v2", model="alpha"))
    payload = job.payload
    assert payload["prompt"]["version"] == "v2"
    assert payload["prompt"]["text"] == (
        'Spec api for alpha (v2):\nA JSON API for notes.\nAnswer like {"files": []}.\n'
    )
    assert payload["model"] == {
        "name": "alpha",
        "base_url": "http://127.0.0.1:9/v1",
        "params": {"temperature": 0.1},
        "price": None,
    }
    assert payload["spec"]["fail_log"] == ["Traceback"]
    assert payload["generator"]["kind"] == "replay"
    assert payload["generator"]["dir"] == str(matrix.path.parent / "recorded" / "api")
    assert payload["check"] == {"start_timeout": 12.0, "memory_mb": 256}
    # Travels as JSON (Kafka) and still gives the same checks without the matrix file.
    again = Job.model_validate_json(job.model_dump_json())
    generated = GenerationResult(ok=True, run="python3 app.py", health="/h", port_env="APP_PORT")
    assert check_spec_for_job(again, Path("/p"), generated) == matrix.check_spec_for(
        job, Path("/p"), generated
    )


def test_spec_values_win_over_generated_ones(matrix: Matrix) -> None:
    generated = GenerationResult(
        ok=True,
        run="python3 main.py",
        install="pip install -r r.txt",
        health="/healthz",
        port_env="APP_PORT",
    )
    api = matrix.check_spec_for(matrix.jobs(spec="api")[0], Path("/p"), generated)
    assert (api.run, api.install, api.health, api.port_env) == (
        "python3 main.py",
        "pip install -r r.txt",
        "/health",
        "APP_PORT",
    )
    assert (api.start_timeout, api.memory_mb, api.fail_log) == (12.0, 256, ["Traceback"])
    page = matrix.check_spec_for(matrix.jobs(spec="page")[0], Path("/p"), generated)
    assert (page.run, page.install, page.health) == (
        "node server.js",
        "npm ci --offline",
        "/healthz",
    )
    assert page.start_timeout == 4.0
    bare = matrix.check_spec_for(matrix.jobs(spec="page")[0], Path("/p"), GenerationResult(ok=True))
    assert bare.port_env == "PORT" and bare.health is None


def test_lookups_and_attempts(matrix: Matrix) -> None:
    assert matrix.spec("page").run == "node server.js"
    assert matrix.model("vendor/gamma:7b").params == {}
    with pytest.raises(MatrixError, match="no spec named 'nope'"):
        matrix.spec("nope")
    job = matrix.job_for(
        Combination(spec="api", prompt="v1", model="beta"), attempt=3, rerun_of="r1"
    )
    assert (job.attempt, job.rerun_of, job.matrix) == (3, "r1", str(matrix.path))
    with pytest.raises(MatrixError, match="attempt"):
        matrix.job_for(job.combination, attempt=0)


def test_a_spec_without_task_placeholder_templates_is_rejected(tmp_path: Path) -> None:
    path = write_matrix(tmp_path)
    (tmp_path / "prompts" / "v1.txt").write_text("Build something nice.\n")
    with pytest.raises(MatrixError, match=r'prompt #1 "v1": template: .* never uses \{task\}'):
        load_matrix(path)


def _replace(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


BAD = [
    pytest.param(
        _replace("[settings]", "[setings]"),
        r"setings: unknown key \(allowed: settings, spec",
        id="unknown-top-level-key",
    ),
    pytest.param(
        _replace('health = "/health"', 'helth = "/health"'),
        r'spec #1 "api": helth: unknown key \(allowed: name, task, run',
        id="spec-typo",
    ),
    pytest.param(
        _replace('task = "A JSON API for notes."', ""),
        r'spec #1 "api": task: missing required key',
        id="missing-task",
    ),
    pytest.param(
        _replace('name = "page"', 'name = "api"'),
        r'spec #2 "api": name: duplicate name \(also spec #1\)',
        id="duplicate-spec",
    ),
    pytest.param(
        _replace('version = "v2"', 'version = "v1"'),
        r'prompt #2 "v1": version: duplicate version \(also prompt #1\)',
        id="duplicate-prompt",
    ),
    pytest.param(
        _replace('name = "beta"', 'name = "alpha"'),
        r'model #2 "alpha": name: duplicate name \(also model #1\)',
        id="duplicate-model",
    ),
    pytest.param(
        _replace('name = "beta"', 'name = "../beta"'),
        r'model #2 "../beta": name: use letters',
        id="unsafe-model-name",
    ),
    pytest.param(
        _replace('name = "page"', 'name = "my page"'),
        r'spec #2 "my page": name: use letters',
        id="unsafe-spec-name",
    ),
    pytest.param(
        _replace('template = "prompts/v2.txt"', 'template = "prompts/v3.txt"'),
        r'prompt #2 "v2": template: no such file: prompts/v3.txt',
        id="missing-template",
    ),
    pytest.param(
        _replace('fail_log = ["Traceback"]', 'fail_log = ["(unclosed"]'),
        r'spec #1 "api": fail_log: invalid regular expression',
        id="bad-regex",
    ),
    pytest.param(
        _replace('health = "/health"', 'health = "health"'),
        r"spec #1 \"api\": health: must be a path starting with '/'",
        id="health-not-a-path",
    ),
    pytest.param(
        _replace('kind = "replay"', 'kind = "gpt"'),
        r"generator.kind: Input should be 'llm' or 'replay'",
        id="bad-generator-kind",
    ),
    pytest.param(
        _replace('dir = "recorded/{spec}"', ""),
        r"generator.dir: missing required key for kind = \"replay\"",
        id="replay-without-dir",
    ),
    pytest.param(
        _replace('dir = "recorded/{spec}"', 'dir = "nowhere/{spec}"'),
        r"generator.dir: no such directory: nowhere/api",
        id="replay-dir-missing",
    ),
    pytest.param(
        _replace('dir = "recorded/{spec}"', 'dir = "recorded/{name}"'),
        r"generator.dir: unknown placeholder \{name\}",
        id="replay-dir-placeholder",
    ),
    pytest.param(
        _replace("slots = 3", "slots = 0"),
        r"settings.slots: Input should be greater than 0",
        id="slots-zero",
    ),
    pytest.param(
        _replace("slots = 3", 'slots = "3"'),
        r"settings.slots: Input should be a valid integer",
        id="slots-string",
    ),
    pytest.param(
        _replace("slots = 3", "slot = 3"),
        r"settings.slot: unknown key \(allowed: slots,",
        id="settings-typo",
    ),
    pytest.param(
        _replace("params = { temperature = 0.1 }", "params = 3"),
        r'model #1 "alpha": params: Input should be a valid dictionary',
        id="params-not-table",
    ),
    pytest.param(
        _replace("price = { input = 1.0, output = 2.0 }", "price = { inputs = 1.0 }"),
        r'model #2 "beta": price.inputs: unknown key \(allowed: input, cached_input, output\)',
        id="price-typo",
    ),
    pytest.param(VALID.replace("[[model]]", "[[modell]]"), r"modell: unknown key", id="no-models"),
    pytest.param(_replace("[generator]", "[other]"), r"other: unknown key", id="generator-typo"),
    pytest.param(
        _replace('[[prompt]]\nversion = "v1"', '[prompt]\nversion = "v1"'),
        r"not valid TOML",
        id="not-toml",
    ),
    pytest.param(
        "spec = { name = 'a', task = 'b' }\n",
        r"spec: must be an array of tables \(\[\[spec\]\]\)",
        id="spec-not-array",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_invalid_files_fail_with_one_line_naming_file_key_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_matrix(tmp_path, text)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(expected, message), message
    assert isinstance(info.value, UsageError)


def test_missing_file_and_unknown_placeholder(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match=r"nope.toml: no such file$"):
        load_matrix(tmp_path / "nope.toml")
    path = write_matrix(tmp_path)
    (tmp_path / "prompts" / "v2.txt").write_text("{task} for {modle}\n")
    with pytest.raises(
        MatrixError, match=r'prompt #2 "v2": template: unknown placeholder \{modle\}'
    ):
        load_matrix(path)


def test_llm_generator_needs_no_dir(tmp_path: Path) -> None:
    text = VALID.replace('kind = "replay"\ndir = "recorded/{spec}"', 'kind = "llm"')
    matrix = load_matrix(write_matrix(tmp_path, text))
    assert matrix.generator_config.kind == "llm" and matrix.replay_dir is None
    assert matrix.jobs()[0].payload["generator"] == {"kind": "llm", "dir": None}
    bad = VALID.replace('kind = "replay"', 'kind = "llm"')
    with pytest.raises(MatrixError, match='generator.dir: only used with kind = "replay"'):
        load_matrix(write_matrix(tmp_path, bad))
