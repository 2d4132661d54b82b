"""Signatures of app frames: Python via ast, Kotlin/Java and JavaScript best effort."""

from __future__ import annotations

from pathlib import Path

from console.explain.signatures import (
    app_signatures,
    js_signature,
    jvm_signature,
    python_signature,
)
from console.explain.traces import extract_failure
from console.model import Frame

SRC = Path(__file__).parent.parent / "fixtures" / "explain" / "src"
TRACES = Path(__file__).parent.parent / "fixtures" / "explain" / "traces"


def test_seed_example_2_kotlin_signatures_by_package() -> None:
    failure = extract_failure((TRACES / "kotlin_seed2.txt").read_text(encoding="utf-8"))
    assert failure is not None
    # Frames name only "UserShareKeyEncrypter.kt"; the package finds the file under src/.
    assert app_signatures(failure.frames, SRC / "teens") == [
        "decrypt(decryptedArray: String) -> String",
        "getImageCard(shareCode: String) -> Response",
        None,  # the CGLIB proxy is not an app frame
    ]


def test_python_signature_with_annotations_defaults_and_varargs() -> None:
    source = (SRC / "pyapp" / "main.py").read_text(encoding="utf-8")
    signature = python_signature(source, "read_user", 14)
    assert signature is not None
    assert signature.text() == (
        "async read_user(user_id: int, verbose: bool, **extra: str) -> dict[str, str]"
    )
    helper = python_signature(source, "helper", 18)
    assert helper is not None and helper.text() == "helper(a, b, *rest)"
    assert python_signature(source, "read_user", 2) is None  # line outside the function
    assert python_signature(source, "<module>", 3) is None
    assert python_signature("def broken(:\n", "broken", 1) is None


def test_python_frame_located_under_project_root_by_path_suffix() -> None:
    frame = Frame(name="read_user", file="/home/dev/elsewhere/main.py", line=13, app=True)
    assert app_signatures([frame], SRC / "pyapp") == [
        "async read_user(user_id: int, verbose: bool, **extra: str) -> dict[str, str]"
    ]
    assert app_signatures([frame], None) == [None]  # the file is not on this machine


def test_javascript_named_and_anonymous_functions() -> None:
    source = (SRC / "nodeapp" / "routes" / "users.js").read_text(encoding="utf-8")
    named = js_signature(source, "getUser", 5)
    assert named is not None and named.text() == "getUser(id, { withOrders = false })"
    anonymous = js_signature(source, "<anonymous>", 11)
    assert anonymous is not None and anonymous.text() == "<anonymous>(req, res)"
    assert js_signature(source, "missingFn", 11) is None
    assert js_signature(source, "getUser", 500) is None


def test_java_signature_across_lines() -> None:
    source = (SRC / "javaapp/src/main/java/com/example/shop/OrderService.java").read_text()
    signature = jvm_signature(source, "OrderService.findOrders", 16, kotlin=False)
    assert signature is not None
    assert signature.text() == (
        "findOrders(customerId: String, filters: Map<String, Integer>) -> List<Order>"
    )
    assert jvm_signature(source, "OrderService.<init>", 10, kotlin=False) is None


def test_kotlin_lambda_frame_uses_enclosing_function() -> None:
    source = "class A {\n    fun load(id: Long): Card? {\n        return repo.find(id)\n    }\n}\n"
    signature = jvm_signature(source, "A.load$lambda$0", 3, kotlin=True)
    assert signature is not None and signature.text() == "load(id: Long) -> Card?"
