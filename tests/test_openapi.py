"""The OpenAPI document: in step with the app's routes, and schemathesis against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from serving_stubs import EchoCompleter
from starlette.routing import Route
from starlette.testclient import TestClient

from autocomplete.config import ServeConfig
from autocomplete.openapi import SCHEMA
from autocomplete.server import create_app


def http_operations(app) -> set[tuple[str, str]]:
    """(path, method) of every HTTP route; websockets and the static mount are not OpenAPI's."""
    return {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"  # Starlette answers HEAD for every GET
    }


def test_every_http_route_of_the_app_is_in_the_document_and_nothing_else():
    app = create_app(config=ServeConfig(), completer=EchoCompleter())
    documented = {(path, method) for path, ops in SCHEMA["paths"].items() for method in ops}
    assert http_operations(app) == documented


def test_the_served_document_states_this_server_s_limits():
    config = ServeConfig(k=3, max_k=5, max_prefix_chars=30, max_query_chars=50)
    with TestClient(
        base_url="http://localhost", app=create_app(config=config, completer=EchoCompleter())
    ) as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    q, k, *_ = doc["paths"]["/v1/complete"]["get"]["parameters"]
    assert (q["schema"]["maxLength"], k["schema"]["maximum"]) == (30, 5)
    body = doc["paths"]["/v1/submit"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["text"]["maxLength"] == 50
    assert SCHEMA["paths"]["/v1/complete"]["get"]["parameters"][1]["schema"]["maximum"] == 20  # untouched


@pytest.fixture(scope="module")
def running_server(mpc_model: Path) -> Iterator[str]:
    from autocomplete.evaluation.server_process import ServerProcess

    with ServerProcess(mpc_model) as server:
        yield server.url


# Invalid data may also be refused as too large (413) or of the wrong media type (415); an admin
# request without its token as unauthorized (401), or forbidden (403: no admin token configured).
CHECKS = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 413, 415]
"""


def operations(url: str) -> list:
    config = schemathesis.config.SchemathesisConfig.from_str(CHECKS)
    loaded = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    return [result.ok() for result in loaded.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_running_server_keeps_to_its_openapi_document(running_server, mode):
    """schemathesis' checks (no server error, documented status codes, content types, response
    schemas, valid data accepted, invalid data rejected) on every operation, a few examples each."""
    found = operations(running_server)
    app = create_app(config=ServeConfig(), completer=EchoCompleter())
    expected = {f"{m.upper()} {p}" for p, m in http_operations(app)} - {"GET /openapi.json"}
    assert {op.label for op in found} == expected  # schemathesis leaves out the document it loaded
    for operation in found:
        if mode is GenerationMode.NEGATIVE and not (list(operation.iter_parameters()) or operation.body):
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.call_and_validate()

        check()
