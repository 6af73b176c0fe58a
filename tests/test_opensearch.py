"""Browser search bars: the OpenSearch description and the suggestions endpoint."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_stubs import EchoCompleter
from starlette.testclient import TestClient

from autocomplete.completer import load_completer
from autocomplete.config import ConfigError, ServeConfig
from autocomplete.server import STATIC_DIR, create_app

NS = {"os": "http://a9.com/-/spec/opensearch/1.1/"}


@pytest.fixture
def client(mpc_model: Path) -> Iterator[TestClient]:
    config = ServeConfig(allowed_hosts=("localhost", "search.example"))  # the Host the test sends
    with TestClient(base_url="http://localhost", app=create_app(mpc_model, config)) as client:
        yield client


def urls(document: str) -> dict[str, str]:
    root = ET.fromstring(document)
    assert root.tag == "{http://a9.com/-/spec/opensearch/1.1/}OpenSearchDescription"
    assert len(root.findtext("os:ShortName", namespaces=NS) or "") <= 16
    assert root.findtext("os:InputEncoding", namespaces=NS) == "UTF-8"
    return {url.get("type"): url.get("template") for url in root.findall("os:Url", NS)}


def test_the_description_names_the_suggestions_and_search_urls_of_this_server(client):
    response = client.get("/opensearch.xml", headers={"host": "search.example:8443"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/opensearchdescription+xml")
    found = urls(response.text)
    assert found["application/x-suggestions+json"] == "http://search.example:8443/v1/suggest?q={searchTerms}"
    assert found["text/html"] == "http://search.example:8443/?q={searchTerms}"
    assert found["application/opensearchdescription+xml"] == "http://search.example:8443/opensearch.xml"


def test_search_url_sends_searches_to_the_site_s_results_page():
    config = ServeConfig(search_url="https://shop.example/search?q={searchTerms}&src=bar")
    with TestClient(
        base_url="http://localhost", app=create_app(config=config, completer=EchoCompleter())
    ) as client:
        found = urls(client.get("/opensearch.xml").text)
    assert found["text/html"] == "https://shop.example/search?q={searchTerms}&src=bar"  # & escaped in XML
    with pytest.raises(ConfigError, match="searchTerms"):
        ServeConfig(search_url="https://shop.example/search")


def test_suggestions_are_the_model_s_completions_in_the_opensearch_format(client, mpc_model):
    response = client.get("/v1/suggest", params={"q": "ro"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-suggestions+json"
    text, suggestions = json.loads(response.content)
    assert text == "ro"
    assert suggestions == [c.text for c in load_completer(mpc_model, warm_up=False).complete("ro", (), 10)]
    assert suggestions and all(s.startswith("ro") for s in suggestions)


def test_suggestions_use_the_session_cookie_s_context_and_start_no_session():
    with TestClient(
        base_url="http://localhost", app=create_app(config=ServeConfig(), completer=EchoCompleter())
    ) as client:
        assert json.loads(client.get("/v1/suggest?q=ro").content)[1][0] == "ro after nothing"
        assert "set-cookie" not in client.get("/v1/suggest?q=ro").headers
        submitted = client.post("/v1/submit", json={"text": "rose bush"})  # sets the session cookie
        assert submitted.status_code == 200
        assert json.loads(client.get("/v1/suggest?q=ro").content) == [
            "ro",
            ["ro after rose bush"] + [f"ro {i}" for i in range(9)],
        ]


def test_bad_suggestion_requests_are_clear_errors(client):
    missing = client.get("/v1/suggest")
    assert missing.status_code == 400 and missing.json()["code"] == "bad_field"
    assert client.get("/v1/suggest", params={"q": "x" * 101}).json()["code"] == "too_long"
    assert json.loads(client.get("/v1/suggest", params={"q": ""}).content)[0] == ""


def test_the_demo_page_links_the_description_from_its_head(client):
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    head = page[: page.index("</head>")]
    assert '<link rel="search" type="application/opensearchdescription+xml" href="/opensearch.xml"' in head
    assert '<link rel="search"' in client.get("/").text
