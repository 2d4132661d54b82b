"""OpenAPI/Swagger loading and operation matching."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.explain.openapi import OpenApiError, load_spec, match_operation

SPECS = Path(__file__).parent.parent / "fixtures" / "explain" / "specs"


@pytest.fixture(scope="module")
def petstore() -> dict[str, Any]:
    return load_spec(SPECS / "petstore_swagger2.json")


@pytest.fixture(scope="module")
def teens() -> dict[str, Any]:
    return load_spec(SPECS / "teens_openapi3.yaml")


def op_id(spec: dict[str, Any], method: str, url: str) -> str | None:
    operation = match_operation(spec, method, url)
    return None if operation is None else operation.operation_id


def test_seed_example_routes(teens: dict[str, Any]) -> None:
    first = match_operation(teens, "get", "/apis/1.0/image-cards/{id}")
    assert first is not None
    assert first.to_json() == {
        "method": "GET",
        "path": "/apis/1.0/image-cards/{id}",
        "operationId": "getImageCard",
        "summary": "이미지카드 조회",
    }
    second = match_operation(teens, "GET", "/apis/1.0/card/images-cards")
    assert second is not None
    assert second.operation_id == "listImageCards"
    assert second.summary is None  # no summary/description: the caller uses the trace
    concrete = match_operation(
        teens, "get", "https://api.example.test/teens/apis/1.0/image-cards/17"
    )
    assert concrete is not None and concrete.path == "/apis/1.0/image-cards/{id}"


def test_literal_segment_beats_template(petstore: dict[str, Any]) -> None:
    assert op_id(petstore, "GET", "/user/login") == "loginUser"
    assert op_id(petstore, "GET", "/user/alice") == "getUserByName"
    assert op_id(petstore, "GET", "/pet/findByStatus") == "findPetsByStatus"
    assert op_id(petstore, "GET", "/pet/12") == "getPetById"


def test_base_path_query_trailing_slash_and_full_url(petstore: dict[str, Any]) -> None:
    assert op_id(petstore, "get", "/v2/user/login?username=a&password=b") == "loginUser"
    assert op_id(petstore, "get", "https://petstore.swagger.io/v2/pet/12/#frag") == "getPetById"
    assert op_id(petstore, "delete", "/pet/12/") == "deletePet"
    assert op_id(petstore, "get", "/v2/user/a%20b") == "getUserByName"


def test_method_and_unknown_paths(petstore: dict[str, Any]) -> None:
    assert match_operation(petstore, "POST", "/pet/12") is None
    assert match_operation(petstore, "GET", "/nothing/here") is None
    assert match_operation(petstore, "GET", "/pet") is None
    assert match_operation(petstore, "GET", "/pet/1/2") is None


def test_description_when_no_summary_and_partial_template(petstore: dict[str, Any]) -> None:
    order = match_operation(petstore, "GET", "/store/order/5")
    assert order is not None and order.summary == "For valid response try integer IDs"
    assert op_id(petstore, "GET", "/files/report.json") == "getJsonFile"
    assert op_id(petstore, "GET", "/files/report.xml") is None


def test_project_directory_and_server_variables() -> None:
    spec = load_spec(SPECS / "project")
    assert op_id(spec, "GET", "/api/v1/orders/9") == "getOrder"
    assert op_id(spec, "POST", "/orders/9/") == "updateOrder"
    assert op_id(spec, "GET", "/api/v2/orders/9") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("broken.json", "not valid JSON or YAML"),
        ("not_a_spec.yaml", "not an OpenAPI or Swagger document"),
        ("missing.json", "cannot read"),
    ],
)
def test_bad_specs_raise_one_line_errors(name: str, problem: str) -> None:
    with pytest.raises(OpenApiError) as info:
        load_spec(SPECS / name)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_directory_has_no_spec(tmp_path: Path) -> None:
    with pytest.raises(OpenApiError, match="no OpenAPI/Swagger file"):
        load_spec(tmp_path)


@pytest.fixture
def spec_server() -> Iterator[str]:
    body = (SPECS / "petstore_swagger2.json").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/v3/api-docs":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_and_running_app(spec_server: str) -> None:
    direct = load_spec(spec_server + "/v3/api-docs")
    assert op_id(direct, "GET", "/user/login") == "loginUser"
    # Only the app's base URL: the well-known endpoints are tried in turn.
    found = load_spec(spec_server, timeout=2.0)
    assert found["swagger"] == "2.0"
    with pytest.raises(OpenApiError, match="cannot load"):
        load_spec(spec_server + "/nope.json", timeout=2.0)
