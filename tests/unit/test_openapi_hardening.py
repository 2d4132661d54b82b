"""OpenAPI matching on spec shapes seen in the wild: ``$ref``'d path items, path- and
operation-level servers, server variables, encoded slashes, HEAD/OPTIONS, big files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.explain.openapi import OpenApiError, load_spec, match_operation, parse_spec

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "servers": [
        {
            "url": "https://{env}.example.com/{base}/v1",
            "variables": {"env": {"default": "api"}, "base": {"default": "shop"}},
        }
    ],
    "paths": {
        "/items/{id}": {
            "get": {"operationId": "getItem", "summary": "Get an item"},
            "head": {"operationId": "headItem"},
            "options": {"operationId": "itemOptions"},
        },
        "/a/{x}": {"get": {"operationId": "getA"}},
        "/a/{y}": {"post": {"operationId": "postA"}},
        "/orders": {"$ref": "#/components/pathItems/Orders"},
        "/files/{name}": {
            "servers": [{"url": "https://files.example.com/storage"}],
            "get": {"operationId": "getFile"},
            "put": {"operationId": "putFile", "servers": [{"url": "/upload"}]},
        },
    },
    "components": {
        "pathItems": {"Orders": {"get": {"operationId": "listOrders", "summary": "List orders"}}}
    },
}


@pytest.mark.parametrize(
    ("method", "url", "operation_id"),
    [
        ("GET", "https://api.example.com/shop/v1/items/42?x=1", "getItem"),
        ("HEAD", "/items/42", "headItem"),
        ("OPTIONS", "/shop/v1/items/42/", "itemOptions"),
        ("GET", "/a/1", "getA"),
        ("POST", "/a/1", "postA"),
        # a path item given by reference
        ("GET", "/shop/v1/orders", "listOrders"),
        # path-level servers carry their own base path
        ("GET", "https://files.example.com/storage/files/a%20b.txt", "getFile"),
        # operation-level servers override the path item's
        ("PUT", "/upload/files/report.pdf", "putFile"),
        # an encoded slash belongs to its segment
        ("GET", "/items/sku%2F42", "getItem"),
    ],
)
def test_real_world_spec_shapes(method: str, url: str, operation_id: str) -> None:
    operation = match_operation(SPEC, method, url)
    assert operation is not None, (method, url)
    assert operation.operation_id == operation_id


def test_referenced_path_item_gives_its_summary() -> None:
    operation = match_operation(SPEC, "GET", "/orders")
    assert operation is not None
    assert (operation.path, operation.summary) == ("/orders", "List orders")


def test_unresolvable_and_cyclic_refs_are_skipped() -> None:
    spec = {
        "openapi": "3.1.0",
        "paths": {
            "/x": {"$ref": "other.yaml#/paths/x"},
            "/y": {"$ref": "#/paths/~1y"},
        },
    }
    assert match_operation(spec, "GET", "/x") is None
    assert match_operation(spec, "GET", "/y") is None


def test_yaml_alias_bomb_is_not_expanded() -> None:
    lines = ["openapi: 3.0.0", "paths: {}", 'a: &a ["lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    spec = parse_spec("\n".join(lines))
    assert match_operation(spec, "GET", "/x") is None


def test_oversized_spec_file_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("console.explain.openapi._MAX_SPEC_BYTES", 1000)
    big = tmp_path / "openapi.json"
    big.write_text('{"openapi": "3.0.0", "paths": {}, "pad": "' + "x" * 2000 + '"}')
    with pytest.raises(OpenApiError, match="larger than"):
        load_spec(big)
