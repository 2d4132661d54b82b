"""Go, Rust, Ruby, PHP and .NET traces through the offline explainer, log-line unwrapping,
and the dependency-file check behind "run the install step" (not "add it")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from console.cli import main
from console.explain.dependencies import MAX_BYTES, declared_in
from console.explain.offline import TriageInput, triage
from console.explain.traces import extract_failure
from console.model import Failure, Frame
from tests.support.trace_corpus import CORPUS

# One corpus trace per runtime, the rule the offline triage should pick, and the first app
# frame its answer must name.
RUNTIME_SAMPLES = [
    ("go/grmon_main_package_frames", "null-access", "main.ReadRoutines"),
    ("go/oniongen_index_out_of_range", "index-out-of-range", "main.main"),
    ("go/protoactor_address_in_use", "port-in-use", "remote.(*Remote).Start"),
    ("rust/mint_tokio_worker_result_unwrap", "unwrap-failed", "src\\providers\\modio.rs:191"),
    (
        "ruby/rails_log_completed_500",
        "null-access",
        "edit (app/controllers/users_controller.rb:33)",
    ),
    ("ruby/missing_gem_single_line", "missing-module", ""),
    ("php/uncaught_error_one_line_windows", "null-access", "include (E:\\phpStudy"),
    ("dotnet/kestrel_unhandled_async_controller", "null-access", "AccountController.Login"),
    ("dotnet/kestrel_address_in_use_inner", "port-in-use", ""),
    ("node/unhandled_rejection_warning_prefix", "null-access", "Promise.all.then"),
    ("python/compose_prefix_import_chain", "missing-module", "/app/retrieval/retriever.py:17"),
    ("jvm/bind_exception_main_thread", "port-in-use", "Executor.runServer"),
]


def _trace(case_id: str) -> Path:
    return CORPUS / f"{case_id}.txt"


@pytest.mark.parametrize(
    ("case_id", "rule", "frame"), RUNTIME_SAMPLES, ids=[s[0] for s in RUNTIME_SAMPLES]
)
def test_offline_triage_fits_each_runtime(case_id: str, rule: str, frame: str) -> None:
    failure = extract_failure(_trace(case_id).read_text(encoding="utf-8"))
    explanation, chosen = triage(TriageInput(failure))
    assert chosen == rule
    assert frame in explanation.inference


@pytest.mark.parametrize(
    "case_id",
    [
        "go/grmon_main_package_frames",
        "rust/uwd2_new_format_no_backtrace",
        "ruby/rails_log_completed_500",
        "php/laravel_class_not_found_artisan",
        "dotnet/argument_null_path_combine_windows",
    ],
)
def test_cli_offline_answer_names_exception_first_app_frame_and_next_step(
    case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", str(tmp_path / "v.db"), "explain", "--trace", str(_trace(case_id))]
    assert main([*argv, "--offline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    answer = out["explanation"]
    failure = extract_failure(_trace(case_id).read_text(encoding="utf-8"))
    assert failure is not None
    first = failure.app_frames()[0]
    text = " ".join(answer[k] for k in ("action", "reason", "guide", "inference"))
    assert failure.exception in text
    assert f"{first.file}:{first.line}" in text
    assert len(answer["guide"]) > 40 and "language model" not in answer["guide"], answer
    assert "rule '" not in text


def test_answer_for_an_app_that_kept_running_does_not_say_it_stopped() -> None:
    failure = Failure(
        exception="KeyError",
        message="'sku'",
        language="python",
        frames=[Frame(name="show", file="/srv/app/views.py", line=9, app=True)],
    )
    data = TriageInput(
        Failure(exception="LookupError", message="odd", frames=failure.frames, language="python"),
        verdict="http_error",
        reason="GET / on port 8080 answered 500.",
    )
    explanation, rule = triage(data)
    assert rule == "generic"
    assert "kept running" in explanation.reason and "stopped" not in explanation.reason
    assert "LookupError" in explanation.reason
    ko, _ = triage(data, "ko")
    assert "계속 실행 중" in ko.reason and "멈췄" not in ko.reason
    no_trace, _ = triage(TriageInput(None, verdict="http_error", reason="GET / answered 500."))
    assert (
        no_trace.reason
        == "The app kept running but answered with a server error (GET / answered 500)."
    )


def test_an_app_that_never_opened_a_port_kept_running() -> None:
    explanation, rule = triage(TriageInput(None, verdict="no_port", exit_class="timeout"))
    assert rule == "timeout"  # the exit class names the rule; the wording fits the verdict
    generic, _ = triage(TriageInput(None, verdict="no_port"))
    assert generic.reason == "The app kept running but never opened a listening port."


def test_generic_answer_shows_no_rule_name_or_placeholder() -> None:
    explanation, rule = triage(TriageInput(None, verdict="crashed", exit_class="error"))
    assert rule == "generic"
    assert "generic" not in explanation.inference and "the exit" not in explanation.inference


def test_missing_module_not_listed_asks_to_add_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests\n")
    data = TriageInput(
        Failure(exception="ModuleNotFoundError", message="No module named 'flask'"),
        project_root=tmp_path,
    )
    explanation, rule = triage(data)
    assert rule == "missing-module" and "Add flask" in explanation.guide
    (tmp_path / "requirements.txt").write_text("requests\nFlask==3.0\n")
    explanation, rule = triage(data)
    assert rule == "module-not-installed"
    assert "requirements.txt" in explanation.reason and "install step" in explanation.guide


def test_a_module_the_project_never_wrote_is_not_called_a_library(tmp_path: Path) -> None:
    failure = Failure(
        exception="ModuleNotFoundError",
        message="No module named 'order_store'",
        frames=[Frame(name="<module>", file="app.py", line=5, app=True)],
    )
    # The generated files hold no order_store.py, and nothing declares it.
    own, rule = triage(TriageInput(failure, project_files=("app.py", "verdict.toml")))
    assert rule == "missing-own-module"
    assert "order_store.py" in own.guide and "app.py:5" in own.reason
    korean, _ = triage(TriageInput(failure, project_files=("app.py",)), "ko")
    assert "order_store.py" in korean.guide and "(app.py:5)에서" in korean.reason
    # Files unknown, the file present (a path problem), or a library apps commonly use:
    # not this rule.
    assert triage(TriageInput(failure))[1] == "missing-module"
    assert triage(TriageInput(failure, project_files=("app.py", "order_store.py")))[1] != rule
    flask = failure.model_copy(update={"message": "No module named 'flask_sqlalchemy'"})
    assert triage(TriageInput(flask, project_files=("app.py",)))[1] == "missing-module"
    stdlib = failure.model_copy(update={"message": "No module named 'tomllib'"})
    assert triage(TriageInput(stdlib, project_files=("app.py",)))[1] == "missing-module"
    # Declared in the dependency file: the install step did not run.
    (tmp_path / "requirements.txt").write_text("order-store==1.0\n")
    declared = TriageInput(failure, project_root=tmp_path, project_files=("app.py",))
    assert triage(declared)[1] == "module-not-installed"


def test_a_recorded_run_knows_its_generated_files(tmp_path: Path) -> None:
    from console.explain.inputs import from_run
    from tests.support.triage_data import seed_triage_db

    db = seed_triage_db(tmp_path / "t.db")
    data = from_run(db, "r01")
    assert data.project_files is not None and "app.py" in data.project_files
    assert triage(TriageInput(data.failure, project_files=data.project_files))[1] == (
        "missing-own-module"
    )


@pytest.mark.parametrize(
    ("file", "content", "module", "expected"),
    [
        (
            "package.json",
            '{"dependencies": {"@nestjs/core": "^10"}}',
            "@nestjs/core/injector",
            True,
        ),
        ("package.json", '{"devDependencies": {"lodash": "4"}}', "lodash/fp", True),
        ("package.json", '{"dependencies": {"cors": "2"}}', "./routes", False),
        (
            "Gemfile",
            "source 'https://rubygems.org'\ngem \"sinatra\", '~> 4'\n",
            "sinatra/base",
            True,
        ),
        (
            "go.mod",
            "module shop\n\nrequire (\n\tgithub.com/lib/pq v1.10.9\n)\n",
            "github.com/lib/pq",
            True,
        ),
        ("Cargo.toml", '[dependencies]\nserde-json = "1"\n', "serde_json", True),
        ("pyproject.toml", '[project]\ndependencies = ["PyYAML>=6"]\n', "yaml", True),
        ("composer.json", '{"require": {"monolog/monolog": "^3"}}', "monolog/monolog", True),
        ("requirements.txt", "flask\n", "django", False),
    ],
)
def test_declared_in_reads_each_ecosystem(
    tmp_path: Path, file: str, content: str, module: str, expected: bool
) -> None:
    (tmp_path / file).write_text(content)
    assert (declared_in(tmp_path, module) == file) is expected


def test_declared_in_treats_hostile_project_files_as_unlisted(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("flask\n")
    project = tmp_path / "project"
    project.mkdir()
    os.symlink(outside, project / "requirements.txt")
    (project / "package.json").write_text("{not json")
    (project / "Cargo.toml").write_text("[dependencies\n")
    (project / "Gemfile").write_text("gem 'rails'\n" + "#" * MAX_BYTES)
    for module in ("flask", "cors", "serde", "rails"):
        assert declared_in(project, module) is None
    assert declared_in(None, "flask") is None
    assert declared_in(project / "missing", "flask") is None


# --- log lines that wrap a trace -------------------------------------------------------------
# Shapes of JSON loggers' output (pino's err serializer, structlog's JSONRenderer with
# format_exc_info, Docker's json-file driver), written for these tests.

PINO_LINE = json.dumps(
    {
        "level": 50,
        "time": 1732700000000,
        "pid": 7,
        "msg": "request failed",
        "err": {
            "type": "TypeError",
            "message": "Cannot read properties of undefined (reading 'id')",
            "stack": "TypeError: Cannot read properties of undefined (reading 'id')\n"
            "    at getOrder (/srv/shop/routes/orders.js:18:25)\n"
            "    at Layer.handle [as handle_request] "
            "(/srv/shop/node_modules/express/lib/router/layer.js:95:5)",
        },
    }
)
STRUCTLOG_LINE = json.dumps(
    {
        "event": "unhandled error",
        "level": "error",
        "exception": "Traceback (most recent call last):\n"
        '  File "/srv/app/views.py", line 9, in show\n'
        "    return ORDERS[sku]\nKeyError: 'sku'",
    }
)


@pytest.mark.parametrize(
    ("text", "exception", "frame"),
    [
        ("INFO booted\n" + PINO_LINE + "\n", "TypeError", "getOrder"),
        ("2026-11-27 10:00 " + STRUCTLOG_LINE + "\n", "KeyError", "show"),
        (
            "".join(
                json.dumps({"log": line + "\n", "stream": "stderr"}) + "\n"
                for line in STRUCTLOG_LINE and json.loads(STRUCTLOG_LINE)["exception"].split("\n")
            ),
            "KeyError",
            "show",
        ),
        (
            "[pod/shop-7d9c/app] Traceback (most recent call last):\n"
            '[pod/shop-7d9c/app]   File "/srv/app/views.py", line 9, in show\n'
            "[pod/shop-7d9c/app]     return ORDERS[sku]\n"
            "[pod/shop-7d9c/app] KeyError: 'sku'\n",
            "KeyError",
            "show",
        ),
    ],
    ids=["pino", "structlog", "docker-json-file", "kubectl-prefix"],
)
def test_traces_inside_log_lines_are_unwrapped(text: str, exception: str, frame: str) -> None:
    failure = extract_failure(text)
    assert failure is not None
    assert failure.exception == exception
    assert failure.app_frames()[0].name == frame


def test_json_lines_without_a_trace_are_left_alone() -> None:
    text = '{"level":30,"msg":"listening","port":8080}\n{"stack": "not a trace"}\n'
    assert extract_failure(text) is None


# --- the Node shapes seen in issue threads ---------------------------------------------------


def test_node_error_line_first_and_warning_prefix_keep_name_and_message() -> None:
    from console.fingerprint import fingerprint
    from console.model import Verdict

    bare = (
        "TypeError: Cannot read property 'length' of undefined\n"
        "    at EventEmitter.app.(anonymous function) [as get] "
        "(/srv/app/node_modules/express/lib/application.js:480:30)\n"
        "    at Object.<anonymous> (/srv/app/server.js:33:5)\n"
    )
    warned = (
        "(node:1234) UnhandledPromiseRejectionWarning: RangeError: Invalid array length\n"
        "    at Object.<anonymous> (/srv/app/server.js:33:5)\n"
    )
    first, second = extract_failure(bare), extract_failure(warned)
    assert first is not None and second is not None
    assert (first.exception, first.message) == (
        "TypeError",
        "Cannot read property 'length' of undefined",
    )
    assert (second.exception, second.message) == ("RangeError", "Invalid array length")
    assert [f.name for f in first.app_frames()] == ["Object.<anonymous>"]
    assert fingerprint(Verdict.CRASHED, first) != fingerprint(Verdict.CRASHED, second)


def test_dotnet_inner_exception_frames_belong_to_the_inner_exception() -> None:
    text = (
        "Unhandled exception. System.InvalidOperationException: Could not start\n"
        " ---> System.IO.FileNotFoundException: settings.json not found\n"
        "   at Shop.Config.Load(String path) in /src/Shop/Config.cs:line 12\n"
        "   --- End of inner exception stack trace ---\n"
        "   at Shop.Program.Main(String[] args) in /src/Shop/Program.cs:line 5\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert (failure.exception, failure.message) == (
        "System.IO.FileNotFoundException",
        "settings.json not found",
    )
    assert failure.causes == ["System.InvalidOperationException: Could not start"]
    assert [(f.name, f.line) for f in failure.app_frames()] == [
        ("Config.Load", 12),
        ("Program.Main", 5),
    ]


# --- naming the app, and fingerprints, for the new runtimes ---------------------------------


def test_go_import_path_and_php_namespace_name_the_app() -> None:
    gaper = (CORPUS / "go" / "gaper_goroutine_created_by.txt").read_text(encoding="utf-8")
    named = extract_failure(gaper, app="github.com/maxcnunes/gaper")
    other = extract_failure(gaper, app="github.com/someone/else")
    assert named is not None and other is not None
    assert [f.line for f in named.app_frames()] == [159, 158]
    assert other.app_frames() == []
    php = (
        "PHP Fatal error:  Uncaught Error: boom in /srv/app/src/Http/Kernel.php:12\n"
        "Stack trace:\n"
        "#0 /srv/app/vendor/slim/App.php(40): App\\Http\\Kernel->handle()\n"
        "#1 /srv/app/public/index.php(9): Slim\\App->run()\n"
        "#2 {main}\n"
    )
    failure = extract_failure(php, app="App\\Http")
    assert failure is not None
    assert [f.name for f in failure.app_frames()] == ["App\\Http\\Kernel->handle"]


def test_go_fingerprint_ignores_goroutine_numbers_and_addresses() -> None:
    from console.fingerprint import fingerprint
    from console.model import Verdict

    first = (
        "panic: runtime error: index out of range [3] with length 3\n\n"
        "goroutine 1 [running]:\nmain.pick(0xc000012345, 0x3)\n"
        "\t/srv/shop/main.go:14 +0x1d\nmain.main()\n\t/srv/shop/main.go:20 +0x25\n"
    )
    second = first.replace("goroutine 1 ", "goroutine 9 ").replace("0xc000012345", "0xc0000aaaaa")
    second = second.replace("[3] with length 3", "[5] with length 5")
    other = first.replace("main.pick", "main.choose")
    prints = [
        fingerprint(Verdict.CRASHED, extract_failure(text)) for text in (first, second, other)
    ]
    assert prints[0] == prints[1] != prints[2]


def test_php_previous_exception_is_the_root_of_a_next_chain() -> None:
    text = (
        "PHP Fatal error:  Uncaught PDOException: could not find driver in /srv/app/Db.php:8\n"
        "Stack trace:\n"
        "#0 /srv/app/Db.php(8): PDO->__construct('pgsql:host=db')\n"
        "#1 /srv/app/index.php(4): Db::connect()\n"
        "#2 {main}\n"
        "\n"
        "Next RuntimeException: database unavailable in /srv/app/Db.php:10\n"
        "Stack trace:\n"
        "#0 /srv/app/index.php(4): Db::connect()\n"
        "#1 {main}\n"
        "  thrown in /srv/app/Db.php on line 10\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert (failure.exception, failure.message) == ("PDOException", "could not find driver")
    assert [(f.name, f.line) for f in failure.app_frames()] == [
        ("Db::connect", 8),
        ("{main}", 4),
    ]


def test_go_fatal_error_is_reported_as_such() -> None:
    text = (
        "fatal error: concurrent map writes\n\n"
        "goroutine 18 [running]:\n"
        "main.(*Cache).Put(0xc000010000, {0x4b1d2a, 0x3})\n"
        "\t/srv/shop/cache.go:22 +0x65\n"
        "created by main.main in goroutine 1\n"
        "\t/srv/shop/main.go:31 +0x7c\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert (failure.exception, failure.message) == ("fatal error", "concurrent map writes")
    assert [f.name for f in failure.app_frames()] == ["main.(*Cache).Put", "main.main"]
