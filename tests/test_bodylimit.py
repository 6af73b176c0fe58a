"""Request bodies over max_frame_bytes get a 413 with the service's JSON error body."""

from __future__ import annotations

import json

from serving_stubs import EchoCompleter
from starlette.testclient import TestClient

from autocomplete.config import ServeConfig
from autocomplete.server import create_app

JSON = {"content-type": "application/json"}


def client(**config) -> TestClient:
    return TestClient(
        base_url="http://localhost", app=create_app(config=ServeConfig(**config), completer=EchoCompleter())
    )


def test_a_declared_body_over_the_limit_is_a_json_413_before_the_handler_runs():
    with client(max_frame_bytes=1000) as c:
        for headers in (JSON, {"content-type": "text/plain"}):
            response = c.post("/v1/submit", content=json.dumps({"text": "x" * 2000}), headers=headers)
            assert response.status_code == 413
            assert response.json() == {
                "type": "error",
                "seq": None,
                "code": "too_big",
                "message": "request bodies are limited to 1000 bytes",
            }
        assert c.get("/v1/session").json()["previous"] == []  # nothing was recorded


def test_a_streamed_body_growing_over_the_limit_is_a_json_413():
    def chunks():
        yield b'{"text": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}'

    with client(max_frame_bytes=1000) as c:
        response = c.post("/v1/submit", content=chunks(), headers=JSON)
        assert response.request.headers.get("content-length") is None
        assert response.status_code == 413 and response.json()["code"] == "too_big"


def test_a_body_at_the_limit_is_accepted():
    body = json.dumps({"text": "rose"}).encode()
    with client(max_frame_bytes=len(body)) as c:
        response = c.post("/v1/submit", content=body, headers=JSON)
        assert response.status_code == 200 and response.json()["text"] == "rose"


def test_a_cross_origin_page_can_read_the_413():
    with client(max_frame_bytes=100, allowed_origins=("https://shop.example",)) as c:
        headers = {**JSON, "origin": "https://shop.example"}
        response = c.post("/v1/submit", content=b"{" + b" " * 200 + b"}", headers=headers)
        assert response.status_code == 413
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
