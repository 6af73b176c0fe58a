"""Browser search bars: the OpenSearch description (``/opensearch.xml``) and the OpenSearch
Suggestions endpoint (``/v1/suggest?q=...`` answering ``["ro", ["roses", ...]]``).

A page links the description from its ``<head>`` (``<link rel="search"
type="application/opensearchdescription+xml" href="/opensearch.xml">``); a browser that adds the
site as a search engine then asks ``/v1/suggest`` for the suggestions under its address bar and
sends a search to ``[serve] search_url`` (the site's results page; the demo page when unset).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autocomplete import protocol
from autocomplete.protocol import ProtocolError
from autocomplete.service import Service
from sessions.base import is_session_id

SUGGESTIONS_TYPE = "application/x-suggestions+json"
DESCRIPTION_TYPE = "application/opensearchdescription+xml"
SHORT_NAME = "Autocomplete"  # OpenSearch: at most 16 characters
DESCRIPTION = "Session-aware query suggestions"


def description_document(base_url: str, search_url: str) -> str:
    """The OpenSearch 1.1 description of a service at ``base_url`` (no trailing slash)."""
    results = search_url or f"{base_url}/?q={{searchTerms}}"
    urls = [
        ("text/html", results, ""),
        (SUGGESTIONS_TYPE, f"{base_url}/v1/suggest?q={{searchTerms}}", ""),
        (DESCRIPTION_TYPE, f"{base_url}/opensearch.xml", ' rel="self"'),
    ]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/">',
        f"  <ShortName>{escape(SHORT_NAME)}</ShortName>",
        f"  <Description>{escape(DESCRIPTION)}</Description>",
        "  <InputEncoding>UTF-8</InputEncoding>",
        *(f'  <Url type="{kind}" method="get" template={quoteattr(url)}{rel}/>' for kind, url, rel in urls),
        "</OpenSearchDescription>",
    ]
    return "\n".join(lines) + "\n"


async def opensearch_endpoint(request: Request) -> Response:
    service: Service = request.state.service
    base = str(request.base_url).rstrip("/")
    return Response(description_document(base, service.config.search_url), media_type=DESCRIPTION_TYPE)


async def suggest_endpoint(request: Request) -> Response:
    """``GET /v1/suggest?q=ro``: ``["ro", ["roses", "rock band", ...]]``, best first.

    A browser's search bar sends the site's cookies, so a session cookie gives the context; no
    session is started here.
    """
    service: Service = request.state.service
    if "q" not in request.query_params:
        raise ProtocolError("bad_field", 'the query parameter "q" (the typed text) is required')
    text = protocol.check_text(request.query_params["q"], "q", service.limits.max_prefix_chars)
    service.metrics.inputs.labels("opensearch").inc()
    session = request.cookies.get(service.config.cookie_name)
    previous = []
    if session is not None and is_session_id(session):
        previous = await service.sessions.previous(session, service.config.context_queries)
    found, _ = service.complete(text, previous, None)
    return Response(orjson.dumps([text, [c.text for c in found]]), media_type=SUGGESTIONS_TYPE)


ROUTES = [Route("/opensearch.xml", opensearch_endpoint), Route("/v1/suggest", suggest_endpoint)]
