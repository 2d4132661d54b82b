"""The wording of the offline triage rules about getting an app to start, per language.

Install step failed, the entry point ran to its end without serving, one of the app's own
files missing (an unbuilt ``dist/``), a module that the dependency file lists but that was
never installed, and a module that is neither a file of the project nor a dependency.  Kept
apart from :mod:`console.explain.offline_text` only for size; the format is the same
(``{file}`` is the dependency file that lists the module).
"""

from __future__ import annotations

from collections.abc import Mapping

from console.explain.offline_text import Text

START_RULE_TEXTS: Mapping[str, Mapping[str, Text]] = {
    "install-failed": {
        "en": Text(
            "The install step failed, so the app was never started.",
            "Run the install command yourself and read its first error: a misspelled package, "
            "a version that does not exist, or a build tool that is missing. Fix the dependency "
            "file (requirements.txt, package.json, Gemfile, go.mod, Cargo.toml, composer.json) "
            "and run it again.",
        ),
        "ko": Text(
            "설치 단계가 실패해서 앱을 아예 시작하지 못했습니다.",
            "설치 명령을 직접 실행해 첫 번째 오류를 읽어 보세요. 패키지 이름 오타, 존재하지 "
            "않는 버전, 설치되지 않은 빌드 도구가 흔한 원인입니다. 의존성 파일(requirements.txt, "
            "package.json, Gemfile, go.mod, Cargo.toml, composer.json)을 고친 뒤 다시 "
            "실행하세요.",
        ),
    },
    "exited-without-serving": {
        "en": Text(
            "The app exited normally (status 0) before it opened a port: it ran to the end "
            "instead of starting a server.",
            "Make the entry point start the server and keep it running (app.run(), "
            "app.listen(), uvicorn.run(), http.ListenAndServe); a script that only defines the "
            "app exits at once.",
        ),
        "ko": Text(
            "앱이 포트를 열기 전에 정상 종료(상태 0)했습니다. 서버를 시작하지 않고 끝까지 "
            "실행된 뒤 끝났다는 뜻입니다.",
            "진입점에서 서버를 시작하고 계속 실행되도록 하세요(예: app.run(), app.listen(), "
            "uvicorn.run(), http.ListenAndServe). 앱 객체만 정의하는 스크립트는 바로 "
            "종료됩니다.",
        ),
    },
    "missing-own-file": {
        "en": Text(
            "The app tried to load one of its own files ({what}), which does not exist: the "
            "build step did not run, or the start command or an import points at the wrong path.",
            "Run the build step before starting (npm run build, tsc) and check that the start "
            "command and the imports point at files that exist (dist/ or src/, the extension).",
        ),
        "ko": Text(
            "앱이 자기 파일({what})을 불러오려 했지만 그 파일이 없습니다. 빌드 단계가 실행되지 "
            "않았거나, 시작 명령이나 import가 잘못된 경로를 가리키고 있습니다.",
            "앱을 시작하기 전에 빌드 단계(npm run build, tsc)를 실행하고, 시작 명령과 import가 "
            "실제로 있는 파일(dist/ 또는 src/, 확장자)을 가리키는지 확인하세요.",
        ),
    },
    "module-not-installed": {
        "en": Text(
            "{what} is listed in {file}, but it is not installed where the app runs, so the app "
            "stopped while loading.",
            "Nothing needs to be added: run the install step before starting the app (pip "
            "install -r requirements.txt, npm install, bundle install, go mod download, cargo "
            "build), and check that it installs into the same environment the app runs in.",
            ("the dependency", "the dependency"),
        ),
        "ko": Text(
            "{what} 항목은 {file}에 이미 적혀 있지만 앱이 실행되는 환경에 설치되어 있지 않아서, "
            "앱이 시작하는 도중에 멈췄습니다.",
            "의존성을 새로 추가할 필요는 없습니다. 앱을 시작하기 전에 설치 단계를 실행하세요"
            "(pip install -r requirements.txt, npm install, bundle install, go mod download, "
            "cargo build 등). 설치가 앱이 실행되는 것과 같은 환경(가상환경, 컨테이너)에 "
            "되는지도 확인하세요.",
            ("해당 의존성", "해당 의존성"),
        ),
    },
    "missing-own-module": {
        "en": Text(
            "The app imports {what} {where}, but {what} is neither one of the project's files "
            "nor a dependency it declares, so the app stopped while loading: most likely a "
            "module of the project itself that was never written.",
            "If {what} is the project's own module, add {what}.py (or the package {what}/) next "
            "to the file that imports it, or generate the project again; if it is a library, "
            "add it to requirements.txt (or pyproject.toml) so the install step installs it.",
        ),
        "ko": Text(
            "앱이 {where}에서 {what} 모듈을 불러오지만, {what}은(는) 프로젝트의 파일도 아니고 "
            "선언된 의존성도 아니어서 앱이 시작하는 도중에 멈췄습니다. 프로젝트 자신의 모듈인데 "
            "파일이 만들어지지 않았을 가능성이 큽니다.",
            "{what}이(가) 프로젝트 자신의 모듈이라면 불러오는 파일 옆에 {what}.py(또는 {what}/ "
            "패키지)를 추가하거나 프로젝트를 다시 생성하세요. 라이브러리라면 requirements.txt"
            "(또는 pyproject.toml)에 추가해서 설치 단계가 설치하도록 하세요.",
        ),
    },
}
