"""Benchmark the explainer's offline pipeline and the redaction throughput.

    /work/venv/bin/python bench/bench_explain.py [--runs 200]

1. Offline pipeline on a 500-line log with a chained trace (JVM, Python, Node, Go, Ruby, PHP,
   .NET and Rust variants):
   parse + app-frame filter + OpenAPI match + signatures + redaction + prompt (p50/p95 ms
   of wall time, and p95 of CPU time, which waiting for a busy machine does not inflate;
   goal p95 < 50 ms).
2. Redaction lines per second on a 20,000-line log with planted secrets: the pattern set
   alone, the layered redactor (patterns, then detect-secrets on candidate lines), and the
   peer: detect-secrets' own ad-hoc ``scan_line`` on every line, side by side.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.explain.explainer import prepare  # noqa: E402
from console.explain.inputs import from_trace  # noqa: E402
from console.explain.openapi import load_spec  # noqa: E402
from console.explain.redact import Redactor  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "explain"


def _jvm_log(lines: int) -> str:
    rng = random.Random(7)
    frames = [
        f"\tat org.springframework.web.servlet.FrameworkServlet.service{i}("
        f"FrameworkServlet.java:{i})"
        for i in range(100)
    ]
    app = [
        "\tat im.toss.teens.invitation.adapter.cache.redis.UserShareKeyEncrypter.decrypt("
        "UserShareKeyEncrypter.kt:35)",
        "\tat im.toss.teens.api.controller.imagecard.web.ImageCardController.getImageCard("
        "ImageCardController.kt:29)",
        "\tat im.toss.teens.api.controller.imagecard.web.ImageCardController$$SpringCGLIB$$0"
        ".getImageCard(<generated>)",
    ]
    trace = ["org.springframework.web.util.NestedServletException: Request processing failed"]
    trace += frames
    trace += ["Caused by: java.lang.IllegalStateException: share key broken", *frames[:80]]
    trace += ["\t... 40 more"]
    trace += ["Caused by: java.lang.IndexOutOfBoundsException: toIndex (4) > size (0)."]
    trace += app + frames[:60] + ["\t... 60 more"]
    head = [
        f"2026-11-21T08:{i // 60 % 60:02d}:{i % 60:02d}.000Z  INFO 1 --- [exec-{i % 9}]"
        f" c.e.shop.web.RequestLog : GET /api/orders/{rng.randint(1, 9999)} 200"
        for i in range(lines - len(trace))
    ]
    return "\n".join(head + trace)


def _python_log(lines: int) -> str:
    chained = (FIXTURES / "traces" / "python_chained.txt").read_text(encoding="utf-8")
    deep = "\n".join(
        f'  File "/srv/app/.venv/lib/python3.11/site-packages/lib{i}/core.py", line {i}, in '
        f"call{i}\n    return nxt(*args)"
        for i in range(60)
    )
    body = chained.replace(
        "Traceback (most recent call last):\n",
        "Traceback (most recent call last):\n" + deep + "\n",
        1,
    )
    head = [f"INFO 127.0.0.1 - GET /users/{i} 200 token=abc{i}" for i in range(500)]
    text = head + body.splitlines()
    return "\n".join(text[-lines:])


def _node_log(lines: int) -> str:
    trace = (FIXTURES / "traces" / "node_eaddrinuse.txt").read_text(encoding="utf-8")
    head = [f"[{i}] GET /api/items/{i} 200 - 3 ms" for i in range(lines)]
    text = head + trace.splitlines()
    return "\n".join(text[-lines:])


def _padded(trace: list[str], lines: int) -> str:
    """``trace`` after request-log noise, ``lines`` lines in all."""
    head = [
        f"2026-11-27T10:{i // 60 % 60:02d}:{i % 60:02d}Z INFO GET /api/orders/{i} 200 4ms"
        for i in range(lines - len(trace))
    ]
    return "\n".join(head + trace)


def _go_log(lines: int) -> str:
    trace = ["panic: runtime error: invalid memory address or nil pointer dereference", ""]
    trace += ["goroutine 7 [running]:"]
    for i in range(60):
        trace += [
            f"github.com/gin-gonic/gin.(*Context).Next{i}(0xc000{i:04x})",
            f"\t/root/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/context.go:{100 + i} +0x{i:x}",
        ]
    trace += ["main.(*OrderService).Find(0x0, 0x2a)", "\t/srv/shop/orders.go:41 +0x1c"]
    trace += ["main.main()", "\t/srv/shop/main.go:20 +0x25"]
    for g in range(20):
        trace += ["", f"goroutine {20 + g} [IO wait]:", "internal/poll.runtime_pollWait(0x7f)"]
        trace += ["\t/usr/local/go/src/runtime/netpoll.go:343 +0x85"]
    return _padded(trace, lines)


def _ruby_log(lines: int) -> str:
    trace = [
        "/srv/shop/app/models/order.rb:12:in `total': undefined method `price' for nil"
        " (NoMethodError)"
    ]
    trace += [
        f"\tfrom /usr/local/bundle/gems/actionpack-7.1.2/lib/action_controller/metal/base{i}.rb:"
        f"{i}:in `process_action'"
        for i in range(150)
    ]
    trace += ["\tfrom /srv/shop/config.ru:3:in `<main>'"]
    return _padded(trace, lines)


def _php_log(lines: int) -> str:
    trace = [
        "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused"
        " in /srv/shop/src/Db.php:14",
        "Stack trace:",
        "#0 /srv/shop/src/Db.php(14): PDO->__construct('mysql:host=db', 'shop', Object)",
    ]
    trace += [
        f"#{i} /srv/shop/vendor/laravel/framework/src/Illuminate/Pipeline/Pipeline{i}.php({i}):"
        f" Illuminate\\Pipeline\\Pipeline->handle{i}(Object(Illuminate\\Http\\Request))"
        for i in range(1, 150)
    ]
    trace += ["#150 {main}", "  thrown in /srv/shop/src/Db.php on line 14"]
    return _padded(trace, lines)


def _dotnet_log(lines: int) -> str:
    trace = [
        "Unhandled exception. System.InvalidOperationException: Could not start",
        " ---> System.NullReferenceException: Object reference not set to an instance of an"
        " object.",
        "   at Shop.Api.Orders.OrderService.Find(Int32 id) in /src/Shop.Api/Orders.cs:line 41",
    ]
    trace += [
        f"   at Microsoft.AspNetCore.Routing.EndpointMiddleware.<Invoke>g__Await{i}|6_0(Task t)"
        for i in range(120)
    ]
    trace += ["   --- End of inner exception stack trace ---"]
    trace += [
        f"   at Microsoft.Extensions.Hosting.Internal.Host.StartAsync{i}(CancellationToken t)"
        for i in range(40)
    ]
    trace += ["   at Shop.Api.Program.Main(String[] args) in /src/Shop.Api/Program.cs:line 9"]
    return _padded(trace, lines)


def _rust_log(lines: int) -> str:
    trace = [
        "thread 'tokio-runtime-worker' panicked at src/orders.rs:41:18:",
        "called `Option::unwrap()` on a `None` value",
        "stack backtrace:",
    ]
    for i in range(90):
        trace += [
            f"  {i}: tokio::runtime::task::harness::poll_future{i}::h{i:016x}",
            f"             at /root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/"
            f"tokio-1.41.0/src/runtime/task/harness.rs:{i}:19",
        ]
    trace += ["  90: shop::orders::find", "             at ./src/orders.rs:41:18"]
    return _padded(trace, lines)


def bench_pipeline(runs: int) -> None:
    spec = load_spec(FIXTURES / "specs" / "teens_openapi3.yaml")
    redactor = Redactor(["cnry-known-value-1"])
    cases = {
        "jvm": (_jvm_log(500), "im.toss.teens", FIXTURES / "src" / "teens"),
        "python": (_python_log(500), None, FIXTURES / "src" / "pyapp"),
        "node": (_node_log(500), None, FIXTURES / "src" / "nodeapp"),
        "go": (_go_log(500), "/srv/shop", None),
        "ruby": (_ruby_log(500), "/srv/shop", None),
        "php": (_php_log(500), "/srv/shop", None),
        "dotnet": (_dotnet_log(500), "Shop.Api", None),
        "rust": (_rust_log(500), "shop", None),
    }
    print("offline pipeline on a 500-line log (parse, filter, match, signatures, redact)")
    for name, (text, app, source) in cases.items():
        assert len(text.splitlines()) == 500, (name, len(text.splitlines()))
        assert from_trace(text, app=app).failure.app_frames(), name  # type: ignore[union-attr]
        times = []
        cpu_times = []  # CPU time too: on a shared machine wall time also counts waiting
        for _ in range(runs):
            started = time.perf_counter()
            cpu_started = time.process_time()
            data = from_trace(
                text,
                app=app,
                source=source,
                spec=spec,
                method="GET",
                url="/apis/1.0/card/images-cards?id=1",
            )
            redactor.redact(text)  # the whole input, as if it were sent as is
            prepared = prepare(data, redactor)
            times.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.process_time() - cpu_started) * 1000)
        times.sort()
        cpu_times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        cpu_p95 = cpu_times[int(len(cpu_times) * 0.95) - 1]
        frames = len(prepared.app_frames)
        print(
            f"  {name:<7} p50 {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms   "
            f"cpu p95 {cpu_p95:6.2f} ms   "
            f"(app frames {frames}, goal p95 < 50 ms: {'ok' if p95 < 50 else 'MISSED'})"
        )


def _corpus(lines: int) -> list[str]:
    rng = random.Random(11)
    secrets = [
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        'headers={"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz0123"}',
        "DATABASE_URL=postgres://shop:s3cretPW@db:5432/shop",
        'config = {"secret": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo="}',
    ]
    out = []
    for i in range(lines):
        roll = rng.random()
        if roll < 0.02:
            out.append(secrets[i % len(secrets)])
        elif roll < 0.10:
            out.append(f'  File "/srv/app/module{i % 50}.py", line {i % 400}, in handler{i % 7}')
        elif roll < 0.15:
            out.append(f"\tat com.example.shop.Service{i % 20}.call(Service{i % 20}.kt:{i % 300})")
        else:
            out.append(
                f"2026-11-21 08:00:{i % 60:02d} INFO request id={i} GET /api/items/{i % 997} "
                f"200 {i % 89}ms user=u{i % 31}"
            )
    return out


def bench_redaction(lines: int) -> None:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    corpus = _corpus(lines)
    text = "\n".join(corpus)
    print(f"\nredaction throughput on {lines} log lines (2% carry a secret)")
    results = {}
    for label, redactor in (
        ("pattern set only", Redactor(use_detect_secrets=False)),
        ("patterns + detect-secrets on candidate lines", Redactor()),
        ("patterns + detect-secrets on every line", Redactor(every_line=True)),
    ):
        started = time.perf_counter()
        out = redactor.redact(text)
        seconds = time.perf_counter() - started
        results[label] = lines / seconds
        print(f"  {label:<46} {lines / seconds:>10,.0f} lines/s  ({out.count} redactions)")
    peer_lines = min(lines, 5000)
    with default_settings():
        started = time.perf_counter()
        found = sum(1 for line in corpus[:peer_lines] for _ in scan_line(line))
        seconds = time.perf_counter() - started
    peer = peer_lines / seconds
    print(
        f"  {'peer: detect-secrets scan_line, every line':<46} {peer:>10,.0f} lines/s  "
        f"({found} findings on {peer_lines} lines)"
    )
    for label, rate in results.items():
        print(f"  ratio {label} / peer: {rate / peer:,.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    bench_pipeline(args.runs)
    bench_redaction(args.lines)


if __name__ == "__main__":
    main()
