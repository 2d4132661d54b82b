"""The wording of the offline triage, per language (``en``, ``ko``).

:mod:`console.explain.offline` holds the rules and their matchers; this module holds only
what they say: the phrases every rule shares (:class:`Words`) and each rule's reason and guide
(:data:`RULE_TEXTS`, keyed by rule name, then language).  Adding a language means adding it
to :data:`LANGS`, :data:`WORDS` and every entry of :data:`RULE_TEXTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

LANGS = ("en", "ko")


@dataclass(frozen=True)
class Words:
    """The wording shared by all rules in one language."""

    outside: str  # where, when there is no application frame
    at: str  # where: {name}, {location}
    at_name: str  # where without a location: {name}
    at_location: str  # where for a frame known only by its location: {location}
    calling: str  # action: {operation}
    checking: str  # action: {service}, {verdict}
    service: str  # {name}
    the_project: str
    running: str  # action: {name}
    running_app: str
    inference: str  # a pattern matched the text: {subject}, {signal}, {frame}
    inference_exit: str  # the rule matched on the exit class: {subject}, {signal}, {frame}
    inference_verdict: str  # the rule matched on the verdict: {subject}, {signal}, {frame}
    inference_none: str  # no pattern (the generic rule): {subject}, {frame}
    the_failure: str  # {subject} when there is no exception
    frame: str  # {where}
    stopped: str  # generic reason, the app ended: {exception}, {where}
    stopped_message: str  # {exception}, {where}, {message}
    raised: str  # generic reason for a trace given alone (how the app ended is unknown)
    raised_message: str  # {exception}, {where}, {message}
    kept_running: str  # generic reason, the app kept running: {how}, {exception}, {where}
    kept_running_message: str  # {how}, {exception}, {where}, {message}
    kept_running_no_trace: str  # {how}, {detail}
    how: Mapping[str, str]  # verdict -> what the running app did wrong
    ended: str  # generic reason without a trace: {verdict}, {exit}
    ended_no_verdict: str  # {exit}
    exit: str  # {exit_class}


WORDS: Mapping[str, Words] = {
    "en": Words(
        outside="outside the application's own code",
        at="in {name} ({location})",
        at_name="in {name}",
        at_location="at {location}",
        calling="Calling {operation}.",
        checking="Starting and checking {service} (verdict: {verdict}).",
        service="{name}",
        the_project="the project",
        running="Running {name}.",
        running_app="Running the application.",
        inference="Offline triage of {subject}: the error text matched {signal}{frame}.",
        inference_exit=(
            "Offline triage of {subject}: judged from how the app ended ({signal}){frame}."
        ),
        inference_verdict="Offline triage of {subject}: judged from the verdict ({signal}){frame}.",
        inference_none=(
            "Offline triage of {subject}: no known pattern matched, so this is read from the "
            "exception and how the app ended{frame}."
        ),
        the_failure="the failure",
        frame="; first application frame {where}",
        stopped="The app stopped with {exception} {where}.",
        stopped_message="The app stopped with {exception} {where}: {message}",
        raised="The app raised {exception} {where}.",
        raised_message="The app raised {exception} {where}: {message}",
        kept_running="The app kept running but {how}; the error behind it was {exception} {where}.",
        kept_running_message=(
            "The app kept running but {how}; the error behind it was {exception} {where}: {message}"
        ),
        kept_running_no_trace="The app kept running but {how}{detail}.",
        how={
            "no_port": "never opened a listening port",
            "http_error": "answered with a server error",
            "unhealthy": "failed its health check",
            "log_error": "wrote an error to its log",
            "timeout": "did not answer in time",
        },
        ended="The app ended with '{verdict}'{exit} without a stack trace.",
        ended_no_verdict="The app ended with 'an error'{exit} without a stack trace.",
        exit=" (exit: {exit_class})",
    ),
    "ko": Words(
        outside="앱 자체 코드 밖(라이브러리나 런타임)",
        at="{name} ({location})",
        at_name="{name}",
        at_location="{location}",
        calling="{operation} API를 호출하고 있었습니다.",
        checking="{service}를 시작하고 점검하는 중이었습니다 (verdict: {verdict}).",
        service="프로젝트({name})",
        the_project="프로젝트",
        running="{name} 코드를 실행하고 있었습니다.",
        running_app="애플리케이션을 실행하고 있었습니다.",
        inference=(
            "{subject} 오프라인 분석: 오류 메시지나 로그의 {signal} 부분이 알려진 패턴과 "
            "일치했습니다{frame}."
        ),
        inference_exit=(
            "{subject} 오프라인 분석: 앱이 끝난 방식({signal})을 보고 판단했습니다{frame}."
        ),
        inference_verdict=(
            "{subject} 오프라인 분석: 점검 결과({signal})를 보고 판단했습니다{frame}."
        ),
        inference_none=(
            "{subject} 오프라인 분석: 알려진 패턴과 일치하지 않아 예외와 앱이 끝난 방식만으로 "
            "설명했습니다{frame}."
        ),
        the_failure="이 오류의",
        frame=". 첫 번째 애플리케이션 프레임은 {where}입니다",
        stopped="{where}에서 {exception} 오류가 발생해 앱이 멈췄습니다.",
        stopped_message="{where}에서 {exception} 오류가 발생해 앱이 멈췄습니다. 메시지: {message}",
        raised="{where}에서 {exception} 오류가 발생했습니다.",
        raised_message="{where}에서 {exception} 오류가 발생했습니다. 메시지: {message}",
        kept_running=(
            "앱은 계속 실행 중이었지만 {how}. 원인은 {where}에서 발생한 {exception} 오류입니다."
        ),
        kept_running_message=(
            "앱은 계속 실행 중이었지만 {how}. 원인은 {where}에서 발생한 {exception} 오류입니다. "
            "메시지: {message}"
        ),
        kept_running_no_trace="앱은 계속 실행 중이었지만 {how}{detail}.",
        how={
            "no_port": "리스닝 포트를 끝내 열지 않았습니다",
            "http_error": "서버 오류로 응답했습니다",
            "unhealthy": "상태 점검(health check)에 실패했습니다",
            "log_error": "로그에 오류를 남겼습니다",
            "timeout": "제시간에 응답하지 않았습니다",
        },
        ended="앱이 스택 트레이스 없이 '{verdict}' 상태로 끝났습니다{exit}.",
        ended_no_verdict="앱이 스택 트레이스 없이 오류로 끝났습니다{exit}.",
        exit=" (exit: {exit_class})",
    ),
}


def words_for(lang: str) -> Words:
    """The shared phrases in ``lang``.

    Raises:
        ValueError: ``lang`` is not one of :data:`LANGS`.
    """
    try:
        return WORDS[lang]
    except KeyError:
        raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}") from None


@dataclass(frozen=True)
class Text:
    """One language's wording of a rule.

    ``reason`` and ``guide`` are format strings: ``{where}`` is the innermost application
    frame (see :meth:`console.explain.offline.TriageInput.where`), ``{what}`` the name the
    pattern captured (module, program, variable, key) or, when it captured none, ``what[0]``
    in the reason and ``what[1]`` in the guide.
    """

    reason: str
    guide: str
    what: tuple[str, str] = ("", "")


#: Each rule's wording: rule name -> language -> :class:`Text`.
RULE_TEXTS: Mapping[str, Mapping[str, Text]] = {
    "port-in-use": {
        "en": Text(
            "The app tried to listen on a network port that another process already "
            "uses, so it could not start its server.",
            "Stop the other process using the port, or start the app on a free port: "
            "read the port from the PORT environment variable instead of hard-coding it.",
        ),
        "ko": Text(
            "앱이 사용하려던 네트워크 포트를 이미 다른 프로세스가 쓰고 있어서 서버를 "
            "시작하지 못했습니다.",
            "그 포트를 쓰고 있는 다른 프로세스를 종료하거나 비어 있는 포트로 앱을 "
            "실행하세요. 포트 번호를 코드에 고정하지 말고 PORT 환경 변수에서 읽도록 바꾸는 "
            "것이 좋습니다.",
        ),
    },
    "out-of-memory": {
        "en": Text(
            "The app used more memory than it is allowed and was stopped.",
            "Look for data loaded all at once (large files, unbounded lists, caches) "
            "and process it in smaller pieces, or raise the memory limit if the need is real.",
        ),
        "ko": Text(
            "앱이 허용된 양보다 많은 메모리를 사용해서 강제로 종료되었습니다.",
            "큰 파일, 끝없이 커지는 리스트, 캐시처럼 데이터를 한꺼번에 불러오는 부분을 찾아 "
            "나눠서 처리하세요. 정말 그만큼의 메모리가 필요하다면 메모리 한도를 늘리세요.",
        ),
    },
    "missing-module": {
        "en": Text(
            "A library the app imports ({what}) is not installed where the app runs, so the "
            "app stopped while loading.",
            "Add {what} to the project's dependencies (requirements.txt, pyproject.toml, "
            "package.json, Gemfile, go.mod, Cargo.toml, composer.json or the build file) and "
            "make sure the install step runs before the app starts; check the name for typos.",
            ("a dependency", "the missing package"),
        ),
        "ko": Text(
            "앱이 불러오는 라이브러리({what})가 앱이 실행되는 환경에 설치되어 있지 않아서, "
            "앱이 시작하는 도중에 멈췄습니다.",
            "프로젝트의 의존성 목록(requirements.txt, pyproject.toml, package.json, Gemfile, "
            "go.mod, Cargo.toml, composer.json 또는 빌드 파일)에 {what} 항목을 추가하고, "
            "앱을 시작하기 전에 설치 단계가 실행되는지 확인하세요. 이름에 오타가 없는지도 "
            "확인하세요.",
            ("의존성 패키지", "빠진 패키지"),
        ),
    },
    "command-not-found": {
        "en": Text(
            "The start command ran a program ({what}) that is not installed or not on the PATH.",
            "Install the program in the environment, use the right command name, or call it "
            "through the package manager (npx, python -m, ./gradlew).",
            ("a program", ""),
        ),
        "ko": Text(
            "시작 명령이 실행하려는 프로그램({what})이 설치되어 있지 않거나 PATH에 없습니다.",
            "실행 환경에 해당 프로그램을 설치하거나, 명령 이름이 맞는지 확인하거나, 패키지 "
            "매니저를 통해 실행하세요(npx, python -m, ./gradlew).",
            ("이름은 로그 참고", ""),
        ),
    },
    "syntax-error": {
        "en": Text(
            "The code has a syntax error {where}, so it cannot be loaded at all.",
            "Open the file at the line shown and fix the syntax (unclosed brackets or "
            "quotes, wrong indentation, a stray character); running a linter catches these "
            "early.",
        ),
        "ko": Text(
            "{where}에 문법 오류가 있어서 코드를 아예 불러올 수 없습니다.",
            "표시된 파일의 해당 줄을 열어 문법을 고치세요(닫히지 않은 괄호나 따옴표, 잘못된 "
            "들여쓰기, 엉뚱하게 들어간 문자 등). 린터를 돌리면 이런 오류를 미리 잡을 수 "
            "있습니다.",
        ),
    },
    "null-access": {
        "en": Text(
            "The code used a value that was empty (null/None/undefined) {where}: something "
            "it expected to be there was missing.",
            "Find where that value should come from (request data, database row, "
            "configuration) and handle the missing case: validate the input or return a "
            "clear error instead of crashing.",
        ),
        "ko": Text(
            "{where}에서 코드가 비어 있는 값(null/None/undefined)을 사용했습니다. 있어야 할 "
            "값이 없었다는 뜻입니다.",
            "그 값이 어디서 와야 하는지(요청 데이터, 데이터베이스 행, 설정) 찾아보고 값이 "
            "없는 경우를 처리하세요. 입력을 검증하거나, 앱이 죽는 대신 알아보기 쉬운 오류를 "
            "돌려주면 됩니다.",
        ),
    },
    "missing-env": {
        "en": Text(
            "The setting {what} is missing, so the app could not read its configuration.",
            "Set {what} in the environment the app runs in (or give it a sensible default "
            "in the code).",
            ("an environment variable", "the variable"),
        ),
        "ko": Text(
            "필요한 환경 변수({what})가 설정되어 있지 않아서 앱이 설정을 읽지 못했습니다.",
            "앱이 실행되는 환경에 {what} 값을 설정하세요(또는 코드에서 적절한 기본값을 "
            "정해 두세요).",
            ("이름은 오류 메시지 참고", "해당 환경 변수"),
        ),
    },
    "key-error": {
        "en": Text(
            "The code looked up a key ({what}) that is not in the data {where}.",
            "Check what the request or data actually contains; use a lookup with a default "
            "or validate the input and answer with a clear error when the key is absent.",
            ("a key", ""),
        ),
        "ko": Text(
            "{where}에서 코드가 데이터에 없는 키({what})를 찾으려고 했습니다.",
            "요청이나 데이터에 실제로 무엇이 들어 있는지 확인하세요. 기본값을 주는 조회 "
            "방식을 쓰거나, 입력을 검증해서 키가 없으면 알아보기 쉬운 오류로 응답하세요.",
            ("이름은 오류 메시지 참고", ""),
        ),
    },
    "connection-refused": {
        "en": Text(
            "The app tried to reach another service (database, cache, API) and nothing was "
            "listening at that address.",
            "Start the service it depends on, or fix its host and port in the "
            "configuration; when it runs in a container, localhost means the container "
            "itself.",
        ),
        "ko": Text(
            "앱이 다른 서비스(데이터베이스, 캐시, API)에 연결하려 했지만 그 주소에서 "
            "응답하는 서비스가 없었습니다.",
            "앱이 의존하는 서비스를 먼저 실행하거나, 설정에서 그 서비스의 호스트와 포트를 "
            "바로잡으세요. 컨테이너 안에서 실행될 때 localhost는 컨테이너 자신을 가리킨다는 "
            "점에 주의하세요.",
        ),
    },
    "host-not-found": {
        "en": Text(
            "The app tried to reach a host name that could not be resolved.",
            "Check the host name in the configuration and the network/DNS available where "
            "the app runs.",
        ),
        "ko": Text(
            "앱이 접속하려던 호스트 이름을 찾을 수 없었습니다(DNS에서 주소를 얻지 못함).",
            "설정에 적힌 호스트 이름이 맞는지, 앱이 실행되는 곳에서 네트워크와 DNS를 쓸 수 "
            "있는지 확인하세요.",
        ),
    },
    "file-not-found": {
        "en": Text(
            "The app tried to open a file that does not exist {where}.",
            "Make sure the file is part of the project (not ignored or generated elsewhere) "
            "and the path is relative to the right directory.",
        ),
        "ko": Text(
            "{where}에서 앱이 존재하지 않는 파일을 열려고 했습니다.",
            "그 파일이 프로젝트에 포함되어 있는지(무시 목록에 들어 있거나 다른 곳에서 "
            "만들어지는 파일은 아닌지), 경로가 올바른 디렉터리를 기준으로 하는지 확인하세요.",
        ),
    },
    "permission-denied": {
        "en": Text(
            "The app was not allowed to use a file, directory or port it needed.",
            "Write only inside the project or a temporary directory and use ports above "
            "1024; check file permissions.",
        ),
        "ko": Text(
            "앱에 필요한 파일, 디렉터리 또는 포트를 사용할 권한이 없었습니다.",
            "파일은 프로젝트 안이나 임시 디렉터리에만 쓰고, 포트는 1024보다 큰 번호를 "
            "사용하세요. 파일 권한도 확인하세요.",
        ),
    },
    "index-out-of-range": {
        "en": Text(
            "The code read past the end of a list or string {where}: the data was shorter "
            "than it assumed (often empty).",
            "Check the length before reading by position, and reject input that is too "
            "short (for example an empty code or id) with a clear error.",
        ),
        "ko": Text(
            "{where}에서 코드가 리스트나 문자열의 끝을 넘어서 읽으려고 했습니다. 데이터가 "
            "예상보다 짧았다는 뜻입니다(비어 있는 경우가 많습니다).",
            "위치(인덱스)로 읽기 전에 길이를 확인하고, 너무 짧은 입력(예: 빈 코드나 빈 id)은 "
            "알아보기 쉬운 오류로 거절하세요.",
        ),
    },
    "not-found": {
        "en": Text(
            "The request asked for something that does not exist (for example a wrong or "
            "deleted id).",
            "Check the id or path the client sends; show a 'not found' message to the user "
            "for this error instead of a generic failure.",
        ),
        "ko": Text(
            "요청한 대상이 존재하지 않습니다(예: 잘못되었거나 삭제된 id).",
            "클라이언트가 보내는 id나 경로를 확인하세요. 이 오류에는 일반적인 실패 메시지 "
            "대신 사용자에게 '찾을 수 없음' 안내를 보여 주세요.",
        ),
    },
    "invalid-value": {
        "en": Text(
            "A value had the wrong type or format {where}.",
            "Check the request's fields and types against the API documentation and "
            "validate input before using it.",
        ),
        "ko": Text(
            "{where}에서 값의 타입이나 형식이 올바르지 않았습니다.",
            "요청의 필드와 타입을 API 문서와 비교해 확인하고, 입력을 사용하기 전에 검증하세요.",
        ),
    },
    "timeout": {
        "en": Text(
            "Something took longer than allowed: a call to another service or the app's "
            "own start-up.",
            "Find the slow step (a dependency that does not answer, a blocking loop) and "
            "make it faster or give it a timeout.",
        ),
        "ko": Text(
            "다른 서비스 호출이나 앱 자체의 시작 과정 같은 작업이 허용된 시간보다 오래 걸렸습니다.",
            "느린 단계(응답하지 않는 의존 서비스, 멈춰 있는 반복문 등)를 찾아 더 빠르게 "
            "만들거나 타임아웃을 두세요.",
        ),
    },
    "unwrap-failed": {
        "en": Text(
            "The code called unwrap() on a value that was missing (None or Err) {where}: it "
            "assumed the value would always be there.",
            "Handle the missing case instead of unwrapping: use match, if let, the ? operator "
            "or a default (unwrap_or), and answer with a clear error.",
        ),
        "ko": Text(
            "{where}에서 코드가 값이 반드시 있다고 가정하고 unwrap()을 호출했지만 값이 "
            "없었습니다(None 또는 Err).",
            "unwrap() 대신 match, if let, ? 연산자나 기본값(unwrap_or)으로 값이 없는 경우를 "
            "처리하고, 오류는 알아보기 쉬운 응답으로 돌려주세요.",
        ),
    },
    # The reason is built from the exception and exit (see offline._generic_reason).
    "generic": {
        "en": Text(
            "",
            "Read the error message and the first application frame listed; an explanation "
            "from a language model (without --offline) can say more.",
        ),
        "ko": Text(
            "",
            "오류 메시지와 목록의 첫 번째 애플리케이션 프레임을 먼저 읽어 보세요. --offline "
            "없이 실행하면 언어 모델이 더 자세히 설명해 줄 수 있습니다.",
        ),
    },
}
