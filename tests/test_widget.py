"""The search-box widget and the demo page in a real browser against a real server.

Debian's Chromium driven by Playwright; the server is a uvicorn subprocess on a free loopback
port serving a model built from the synthetic log. The HTTP API of the same server is the
reference the suggestions on screen are compared with. Host pages (a shop's own search form, a
page of another origin) are fulfilled by ``page.route``; what no real model does on demand (a
1008 refusal, matched spans, ``"stored": false``) comes from the stub service in
``browser_support``. axe-core (``make axe``) checks every state for accessibility violations.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    LAUNCH_ARGS,
    REFUSAL_REASON,
    SOCKET_TAP,
    STUB_SESSION,
    StubServer,
    axe_source,
    axe_violations,
    contrast_ratio,
    requires_chromium,
)

from autocomplete.evaluation.server_process import ServerProcess
from indexer.synthetic import TOPICS

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, requires_chromium]

K = 8
SCREENSHOT_ENV = "AUTOCOMPLETE_SCREENSHOT"


def reference(base: str, text: str, session: str | None = None) -> list[str]:
    """The suggestions the HTTP API gives for ``text``, the widget's reference."""
    query = {"q": text, "k": K} | ({"session": session} if session else {})
    with urllib.request.urlopen(
        f"{base}/v1/complete?{urllib.parse.urlencode(query)}", timeout=10
    ) as response:
        return [item["text"] for item in json.load(response)["items"]]


def session_queries(base: str, session: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/v1/session?session={session}", timeout=10) as response:
        return json.load(response)["previous"]


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(mpc_model: Path) -> Iterator[str]:
    with ServerProcess(mpc_model) as process:
        yield process.url


def open_demo(browser: playwright_api.Browser, base: str, **context_options) -> playwright_api.Page:
    """A fresh browser context (so a fresh session) on the demo page, once the websocket said hello."""
    context = browser.new_context(**({"viewport": {"width": 1000, "height": 760}} | context_options))
    context.add_init_script(SOCKET_TAP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_log = []  # type: ignore[attr-defined]
    page.on("console", lambda message: page.console_log.append((message.type, message.text)))  # type: ignore[attr-defined]
    page.goto(base + "/")
    playwright_api.expect(page.locator("#transport")).to_have_attribute("data-transport", "websocket")
    page.page_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture(scope="module")
def demo_server(demo_model: Path) -> Iterator[str]:
    """The server on the context-aware demo model, whose suggestions depend on the previous query."""
    with ServerProcess(demo_model) as process:
        yield process.url


@contextlib.contextmanager
def demo_page(browser: playwright_api.Browser, base: str, **context_options) -> Iterator[playwright_api.Page]:
    page = open_demo(browser, base, **context_options)
    try:
        yield page
        assert page.page_errors == []  # type: ignore[attr-defined]
    finally:
        page.context.close()


@pytest.fixture
def page(browser: playwright_api.Browser, server: str) -> Iterator[playwright_api.Page]:
    """A fresh demo page (and session) for a test that types, submits or breaks things."""
    with demo_page(browser, server) as page:
        yield page


@pytest.fixture(scope="module")
def untouched_page(browser: playwright_api.Browser, server: str) -> Iterator[playwright_api.Page]:
    """One demo page, never typed into, shared by the read-only checks."""
    with demo_page(browser, server) as page:
        yield page


@pytest.fixture(scope="module")
def typed_page(browser: playwright_api.Browser, server: str) -> Iterator[playwright_api.Page]:
    """One demo page showing the suggestions for "ro", the first one active; for read-only checks."""
    with demo_page(browser, server) as page:
        page.shown = type_and_wait(page, server, "ro")  # type: ignore[attr-defined]
        page.locator("#q").press("ArrowDown")
        yield page


def options(page: playwright_api.Page) -> list[str]:
    return page.locator("[role=option]").all_inner_texts()


def type_and_wait(page: playwright_api.Page, base: str, text: str, session: str | None = None) -> list[str]:
    """Type ``text`` key by key and wait until the list shows the server's answer for it."""
    expected = reference(base, text, session)
    assert expected, f"the test model has no completions for {text!r}; pick another prefix"
    page.locator("#q").press_sequentially(text, delay=20)
    playwright_api.expect(page.locator("[role=option]")).to_have_text(expected)
    return expected


def widget_session(page: playwright_api.Page) -> str:
    return page.evaluate("autocomplete.session")


# ---------------------------------------------------------------- what a person sees


def test_typing_shows_the_servers_completions_with_the_completed_part_emphasized(page, server):
    shown = type_and_wait(page, server, "ro")
    assert all(text.startswith("ro") for text in shown)
    emphasized = page.locator("[role=option] mark").all_inner_texts()
    assert emphasized == [text[2:] for text in shown]
    assert page.locator("#q").get_attribute("aria-expanded") == "true"


def test_every_keystroke_goes_over_the_websocket_with_increasing_seq(page, server):
    # Each key waits for its frame: a key typed while one input is in flight replaces the pending
    # one by design (the fast-typing test covers that), so a slow answer must not merge keystrokes.
    for typed in ("r", "ro", "ros"):
        page.locator("#q").press(typed[-1])
        page.wait_for_function(
            "(text) => socketTap.sent.some((frame) => frame.type === 'input' && frame.text === text)",
            arg=typed,
        )
    playwright_api.expect(page.locator("[role=option]")).to_have_text(reference(server, "ros"))
    sent = page.evaluate("socketTap.sent.filter((frame) => frame.type === 'input')")
    assert [frame["text"] for frame in sent] == ["r", "ro", "ros"]
    assert [frame["seq"] for frame in sent] == sorted({frame["seq"] for frame in sent})


def test_pasted_text_is_completed(page, server):
    expected = reference(server, "ho")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("navigator.clipboard.writeText('ho')")
    page.locator("#q").focus()
    page.keyboard.press("Control+V")
    playwright_api.expect(page.locator("[role=option]")).to_have_text(expected)


def test_ime_composition_sends_only_the_committed_text(page, server):
    expected = reference(server, "ro")
    page.locator("#q").focus()
    cdp = page.context.new_cdp_session(page)
    for partial in ("r", "ro"):
        cdp.send(
            "Input.imeSetComposition",
            {"text": partial, "selectionStart": len(partial), "selectionEnd": len(partial)},
        )
    assert page.evaluate("socketTap.sent.filter((frame) => frame.type === 'input')") == []
    cdp.send("Input.insertText", {"text": "ro"})
    playwright_api.expect(page.locator("[role=option]")).to_have_text(expected)
    sent = page.evaluate(
        "socketTap.sent.filter((frame) => frame.type === 'input').map((frame) => frame.text)"
    )
    assert sent == ["ro"]


def test_narrow_viewport_fits_without_horizontal_scrolling(browser, server):
    with demo_page(browser, server, viewport={"width": 320, "height": 640}) as page:
        type_and_wait(page, server, "ro")
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        for box in (page.locator("#q").bounding_box(), page.locator("[role=listbox]").bounding_box()):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320


def test_zoomed_to_200_percent_the_page_still_fits(browser, server):
    """A 1280 x 800 window at 200 % zoom lays out like 640 x 400 CSS pixels at twice the density."""
    with demo_page(browser, server, viewport={"width": 640, "height": 400}, device_scale_factor=2) as page:
        type_and_wait(page, server, "ro")
        assert page.evaluate("document.documentElement.scrollWidth") <= 640
        assert page.locator("[role=option]").first.is_visible()


EMBEDDING_PAGE = """<!doctype html><html lang="en"><head><title>shop</title></head><body>
<label for="find">Find</label> <input id="find">
<script src="/static/autocomplete.js"></script>
<script>new Autocomplete(document.getElementById('find'), {k: 5});</script>
</body></html>"""


def test_two_lines_embed_the_widget_in_any_page(browser, server):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.route(
            f"{server}/shop", lambda route: route.fulfill(body=EMBEDDING_PAGE, content_type="text/html")
        )
        page.goto(f"{server}/shop")
        expected = reference(server, "ro")[:5]
        page.locator("#find").press_sequentially("ro")
        playwright_api.expect(page.locator("[role=option]")).to_have_text(expected)
        assert page.locator("#find").get_attribute("role") == "combobox"
        links = page.locator("link[rel=stylesheet]").evaluate_all("(links) => links.map((link) => link.href)")
        assert links == [f"{server}/static/autocomplete.css"]
        assert (
            page.locator("[role=listbox]").evaluate("(el) => getComputedStyle(el.parentElement).position")
            == "absolute"
        )
    finally:
        context.close()


# ---------------------------------------------------------------- keyboard and ARIA


def test_keyboard_moves_aria_activedescendant_and_focus_stays_in_the_input(page, server):
    shown = type_and_wait(page, server, "ro")
    box = page.locator("#q")
    ids = page.locator("[role=option]").evaluate_all("(options) => options.map((option) => option.id)")
    steps = [
        ("ArrowDown", 0),
        ("ArrowDown", 1),
        ("ArrowUp", 0),
        ("ArrowUp", len(shown) - 1),
        ("ArrowDown", 0),
        ("End", None),
        ("ArrowDown", 0),
        ("Home", None),
    ]
    for key, expected in steps:
        box.press(key)
        if expected is None:
            assert box.get_attribute("aria-activedescendant") is None, key
            assert page.locator("[role=option][aria-selected=true]").count() == 0
        else:
            assert box.get_attribute("aria-activedescendant") == ids[expected], key
            assert page.locator("[role=option][aria-selected=true]").all_inner_texts() == [shown[expected]]
        assert page.evaluate("document.activeElement.id") == "q"


def test_escape_closes_the_list_then_clears_the_input(page, server):
    type_and_wait(page, server, "ro")
    box = page.locator("#q")
    box.press("ArrowDown")
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    assert box.get_attribute("aria-activedescendant") is None
    assert page.locator("[role=listbox]").is_hidden()
    assert box.input_value() == "ro"
    box.press("Escape")
    assert box.input_value() == ""


def test_arrow_keys_leave_the_typed_text_alone_by_default(page, server):
    type_and_wait(page, server, "ro")
    box = page.locator("#q")
    box.press("ArrowDown")
    box.press("ArrowDown")
    assert box.input_value() == "ro"  # as the APG list-autocomplete example: visual focus only


def test_with_preview_the_arrow_keys_show_the_option_and_escape_restores_the_typed_text(page, server):
    page.evaluate("autocomplete.options.previewOnArrow = true")
    shown = type_and_wait(page, server, "ro")
    box = page.locator("#q")
    box.press("ArrowDown")
    assert box.input_value() == shown[0]
    box.press("ArrowDown")
    assert box.input_value() == shown[1]
    box.press("Escape")
    assert box.input_value() == "ro"
    assert box.get_attribute("aria-expanded") == "false"


def test_tab_accepts_the_active_suggestion_without_submitting(page, server):
    shown = type_and_wait(page, server, "ro")
    box = page.locator("#q")
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("Tab")
    assert box.input_value() == shown[1]
    assert box.get_attribute("aria-expanded") == "false"
    assert page.evaluate("socketTap.sent.filter((frame) => frame.type === 'submit')") == []


@pytest.mark.parametrize(
    ("selector", "attribute", "expected"),
    [
        ("#q", "role", "combobox"),
        ("#q", "aria-autocomplete", "list"),
        ("#q", "aria-expanded", "false"),
        ("#q", "autocomplete", "off"),
        ("[role=listbox]", "aria-labelledby", "LABEL"),
        (".ac-status", "role", "status"),
        (".ac-status", "aria-live", "polite"),
    ],
)
def test_aria_attribute_before_typing(untouched_page, selector, attribute, expected):
    page = untouched_page
    if expected == "LABEL":
        expected = page.locator("label[for=q]").get_attribute("id")
        assert page.locator(f"#{expected}").inner_text() == "Search"
    assert page.locator(selector).get_attribute(attribute) == expected
    assert page.locator("#q").get_attribute("aria-activedescendant") is None


def test_aria_controls_names_the_listbox(untouched_page):
    controlled = untouched_page.locator("#q").get_attribute("aria-controls")
    assert untouched_page.locator(f"#{controlled}").get_attribute("role") == "listbox"


def test_aria_expanded_follows_the_list(page, server):
    box = page.locator("#q")
    type_and_wait(page, server, "ro")
    assert box.get_attribute("aria-expanded") == "true"
    page.locator("h1").click()  # focus leaves: the list closes
    assert box.get_attribute("aria-expanded") == "false"


def test_options_have_role_option_and_only_the_active_one_is_selected(typed_page):
    listbox = typed_page.locator("[role=listbox]")
    assert listbox.locator("> [role=option]").count() == len(typed_page.shown)
    assert listbox.locator("> [aria-selected=false]").count() == len(typed_page.shown) - 1
    assert listbox.locator("> [aria-selected=true]").all_inner_texts() == typed_page.shown[:1]


def test_live_region_announces_the_number_of_suggestions(typed_page):
    status = typed_page.locator("[role=status].ac-status")
    playwright_api.expect(status).to_contain_text(f"{len(typed_page.shown)} suggestion")


# ---------------------------------------------------------------- submitting and context


def test_enter_submits_the_active_suggestion_and_the_trail_shows_it(page, server):
    shown = type_and_wait(page, server, "ro")
    page.evaluate(
        "window.selected = []; document.addEventListener('autocomplete:select', "
        "(event) => selected.push(event.detail))"
    )
    box = page.locator("#q")
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == shown[0]
    assert page.evaluate("selected") == [{"text": shown[0], "index": 0, "rank": 1}]
    playwright_api.expect(page.locator("#trail li")).to_have_text([shown[0]])
    assert session_queries(server, widget_session(page)) == [shown[0]]
    assert box.get_attribute("aria-expanded") == "false"


def test_enter_without_an_active_option_submits_the_typed_text(page, server):
    type_and_wait(page, server, "ro")
    page.locator("#q").press("Enter")
    playwright_api.expect(page.locator("#trail li")).to_have_text(["ro"])


def test_clicking_a_suggestion_submits_it(page, server):
    shown = type_and_wait(page, server, "ro")
    page.locator("[role=option]").nth(2).click()
    playwright_api.expect(page.locator("#trail li")).to_have_text([shown[2]])
    assert page.evaluate("document.activeElement.id") == "q"


def test_a_cancelled_select_event_submits_nothing(page, server):
    type_and_wait(page, server, "ro")
    page.evaluate("document.addEventListener('autocomplete:select', (event) => event.preventDefault())")
    box = page.locator("#q")
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "ro"
    assert page.evaluate("socketTap.sent.filter((frame) => frame.type === 'submit')") == []
    assert session_queries(server, widget_session(page)) == []


# ---------------------------------------------------------------- ordering and failures


def test_newer_text_waits_for_the_answer_in_flight_and_the_stale_answer_is_never_shown(page, server):
    older, newer = reference(server, "r"), reference(server, "ro")
    assert older != newer, "the test needs prefixes whose answers differ"
    page.evaluate("() => { socketTap.hold = (frame) => frame.type === 'completions' && frame.text === 'r'; }")
    box = page.locator("#q")
    box.press_sequentially("r")
    page.wait_for_function("socketTap.held.length === 1")  # the answer for 'r' exists and is held back
    box.press_sequentially("o")
    sent = page.evaluate(
        "socketTap.sent.filter((frame) => frame.type === 'input').map((frame) => frame.text)"
    )
    assert sent == ["r"]  # one input in flight: "ro" waits for the answer to "r"
    assert page.locator("[role=listbox]").is_hidden()
    assert page.evaluate("socketTap.release()") == 1
    playwright_api.expect(page.locator("[role=option]")).to_have_text(newer)
    sent = page.evaluate(
        "socketTap.sent.filter((frame) => frame.type === 'input').map((frame) => frame.text)"
    )
    assert sent == ["r", "ro"]


def test_websocket_going_away_falls_back_to_http_and_recovers(page, server):
    type_and_wait(page, server, "ro")
    http_paths: list[str] = []
    page.on("request", lambda request: http_paths.append(urllib.parse.urlparse(request.url).path))
    page.evaluate("socketTap.blocked = true; socketTap.dropAll()")
    playwright_api.expect(page.locator("#transport")).to_have_attribute("data-transport", "http")

    box = page.locator("#q")
    box.fill("")
    shown = type_and_wait(page, server, "ho")
    assert "/v1/complete" in http_paths
    box.press("ArrowDown")
    box.press("Enter")  # submitted over POST /v1/submit while the websocket is down
    playwright_api.expect(page.locator("#trail li")).to_have_text([shown[0]])
    assert "/v1/submit" in http_paths

    page.evaluate("socketTap.blocked = false")
    playwright_api.expect(page.locator("#transport")).to_have_attribute(
        "data-transport", "websocket", timeout=20_000
    )
    http_paths.clear()
    box.fill("")
    type_and_wait(page, server, "ro", session=widget_session(page))
    assert "/v1/complete" not in http_paths
    assert page.evaluate("socketTap.sent.at(-1)")["text"] == "ro"


# ---------------------------------------------------------------- look


@pytest.mark.parametrize(
    ("name", "foreground", "background", "minimum"),
    [
        ("typed part of a suggestion", "[role=option][aria-selected=false]", ".ac-list", 4.5),
        ("completed part of a suggestion", "[role=option][aria-selected=false] mark", ".ac-list", 4.5),
        ("active suggestion", "[role=option][aria-selected=true]", "[role=option][aria-selected=true]", 4.5),
        ("input text", "#q", "#q", 4.5),
        ("explanation", ".lead", "body", 4.5),
        ("input border", "#q:border", "body", 3.0),
    ],
)
def test_contrast(typed_page, name, foreground, background, minimum):
    page = typed_page
    selector, _, part = foreground.partition(":")
    color = page.locator(selector).first.evaluate(
        f"(el) => getComputedStyle(el).{'borderTopColor' if part == 'border' else 'color'}"
    )
    fill = page.locator(background).first.evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert contrast_ratio(color, fill) >= minimum, name


def test_focus_is_visible_on_the_input(page):
    box = page.locator("#q")
    page.locator("h1").click()
    before = box.evaluate("(el) => getComputedStyle(el).outlineStyle")
    box.focus()
    style = box.evaluate(
        "(el) => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert before == "none"
    assert style[0] == "solid" and float(style[1].removesuffix("px")) >= 2


def submit_session(base: str, text: str) -> str:
    """A fresh session whose only query is ``text``, made through POST /v1/submit."""
    request = urllib.request.Request(
        f"{base}/v1/submit",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["session"]


def context_example(base: str) -> tuple[str, str]:
    """A previous query and a prefix whose suggestions differ with and without that query as context."""
    previous_queries = [queries[0] for queries, _ in TOPICS.values()]
    for prefix in ("ro", "r", "ho", "ca"):
        plain = reference(base, prefix)
        for previous in previous_queries:
            if plain and reference(base, prefix, submit_session(base, previous)) != plain:
                return previous, prefix
    raise AssertionError("no synthetic topic changes the suggestions for ro, r, ho or ca: context is ignored")


def test_enter_submits_and_the_next_prefix_is_completed_in_context(browser, demo_server):
    previous, prefix = context_example(demo_server)
    with demo_page(browser, demo_server) as page:
        before = type_and_wait(page, demo_server, prefix)
        box = page.locator("#q")
        box.fill("")
        box.press_sequentially(previous, delay=10)
        box.press("Escape")  # close the list so Enter submits the typed text
        box.press("Enter")
        playwright_api.expect(page.locator("#trail li")).to_have_text([previous])
        box.fill("")
        after = type_and_wait(page, demo_server, prefix, session=widget_session(page))
        assert after != before


# ---------------------------------------------------------------- inside a host page's form

OTHER_ORIGIN = "http://other.test"
RESULTS_PAGE = """<!doctype html><html lang="en"><title>Results</title><p id="echo"></p>
<script>const q = new URLSearchParams(location.search).get('q');
document.getElementById('echo').textContent = q;</script>"""


def host_page(
    script_base: str, *, css: str = "", options: str = "{}", attach: bool = True, prevent: bool = False
) -> str:
    """A shop's page with its own search form (the README's two lines added), as a user would write it."""
    construct = f"window.ac = new Autocomplete(document.getElementById('q'), {options});" if attach else ""
    stay = (
        "document.querySelector('form').addEventListener('submit', (e) => e.preventDefault());"
        if prevent
        else ""
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<style>{css}</style></head><body><main><h1>Shop</h1>
<form action="/results" role="search"><label for="q">Search the shop</label>
<input id="q" name="q"><button>Go</button></form>
<p>What the shop sells, under its search form.</p></main>
<script>window.acEvents = []; for (const name of ['autocomplete:select', 'autocomplete:submitted',
  'autocomplete:error']) document.addEventListener(name, (event) => acEvents.push([name, event.detail]));
{stay}</script>
<script src="{script_base}/static/autocomplete.js"></script>
<script>{construct}</script>
</body></html>"""


def serve_host(page: playwright_api.Page, origin: str, *, script_base: str | None = None, **kwargs) -> None:
    """Serve :func:`host_page` at ``origin``/shop and an echo of the query at ``origin``/results."""
    body = host_page(script_base or origin, **kwargs)
    page.route(f"{origin}/shop", lambda route: route.fulfill(body=body, content_type="text/html"))
    page.route(
        lambda url: url.startswith(f"{origin}/results"),
        lambda route: route.fulfill(body=RESULTS_PAGE, content_type="text/html"),
    )


@contextlib.contextmanager
def fresh_page(browser: playwright_api.Browser, **context_options) -> Iterator[playwright_api.Page]:
    """A page in a fresh context with the websocket tap, collecting console messages and page errors."""
    context = browser.new_context(**({"viewport": {"width": 1000, "height": 760}} | context_options))
    context.add_init_script(SOCKET_TAP)
    page = context.new_page()
    page.console_log = []  # type: ignore[attr-defined]
    page.on("console", lambda message: page.console_log.append((message.type, message.text)))  # type: ignore[attr-defined]
    page.page_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def open_host(page: playwright_api.Page, base: str, **kwargs) -> None:
    serve_host(page, base, **kwargs)
    page.goto(f"{base}/shop")
    if kwargs.get("attach", True):
        page.wait_for_function("window.ac && ac.wsReady")


def submit_posts(page: playwright_api.Page) -> list[dict]:
    """The bodies of the POST /v1/submit requests the page makes from now on."""
    posts: list[dict] = []
    page.on(
        "request",
        lambda request: (
            posts.append(json.loads(request.post_data or "{}"))
            if request.method == "POST" and urllib.parse.urlparse(request.url).path.endswith("/v1/submit")
            else None
        ),
    )
    return posts


def results_query(page: playwright_api.Page) -> str:
    """Wait for the host form's results page and return the query it was sent."""
    page.wait_for_url(lambda url: urllib.parse.urlparse(url).path == "/results")
    return urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"][0]


def eventually(
    check: Callable[[], bool], page: playwright_api.Page | None = None, timeout: float = 5.0
) -> None:
    """Wait until ``check()`` holds; with a ``page``, its events (requests, console) arrive meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold within the time")
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)


def test_enter_in_a_host_form_submits_it_with_the_typed_text(browser, server):
    with fresh_page(browser) as page:
        open_host(page, server)
        type_and_wait(page, server, "ro")
        session = page.evaluate("ac.session")
        posts = submit_posts(page)
        page.locator("#q").press("Enter")
        assert results_query(page) == "ro"
        playwright_api.expect(page.locator("#echo")).to_have_text("ro")
        eventually(lambda: len(posts) == 1, page)
        assert [(post["text"], post["rank"]) for post in posts] == [("ro", None)]
        eventually(lambda: session_queries(server, session) == ["ro"])  # recorded though the page left


def test_enter_on_a_chosen_option_submits_the_host_form_with_it_and_its_rank(browser, server):
    with fresh_page(browser) as page:
        open_host(page, server)
        shown = type_and_wait(page, server, "ro")
        session = page.evaluate("ac.session")
        posts = submit_posts(page)
        box = page.locator("#q")
        box.press("ArrowDown")
        box.press("ArrowDown")
        box.press("Enter")
        assert results_query(page) == shown[1]
        eventually(lambda: len(posts) == 1, page)
        assert [(post["text"], post["rank"]) for post in posts] == [(shown[1], 2)]
        eventually(lambda: session_queries(server, session) == [shown[1]])


def test_a_cancelled_select_keeps_the_host_form_from_submitting(browser, server):
    with fresh_page(browser) as page:
        open_host(page, server)
        type_and_wait(page, server, "ro")
        page.evaluate("document.addEventListener('autocomplete:select', (event) => event.preventDefault())")
        posts = submit_posts(page)
        box = page.locator("#q")
        box.press("Enter")  # the typed text
        box.press("ArrowDown")
        box.press("ArrowDown")
        box.press("Enter")  # a chosen option
        page.wait_for_timeout(300)  # a form submission would have navigated by now
        assert urllib.parse.urlparse(page.url).path == "/shop"
        selects = [detail for name, detail in page.evaluate("acEvents") if name == "autocomplete:select"]
        assert [detail["rank"] for detail in selects] == [None, 2]
        assert box.input_value() == "ro"
        assert posts == [] and page.evaluate("socketTap.sent.filter((f) => f.type === 'submit')") == []


def test_a_page_of_a_listed_origin_gets_suggestions_and_its_submits_are_recorded(browser, mpc_model):
    """The usual embedding: the shop's page on its own origin, listed in the service's allowed_origins;
    the submit of a navigating form crosses origins as a keepalive POST (CORS preflight and cookie)."""
    shop = "http://shop.test"
    env = {"AUTOCOMPLETE_ALLOWED_ORIGINS": shop}
    with ServerProcess(mpc_model, env=env) as process, fresh_page(browser) as page:
        serve_host(page, shop, script_base=process.url)
        page.goto(f"{shop}/shop")
        page.wait_for_function("window.ac && ac.wsReady")
        shown = type_and_wait(page, process.url, "ro")
        session = page.evaluate("ac.session")
        page.locator("#q").press("ArrowDown")
        page.locator("#q").press("Enter")
        assert results_query(page) == shown[0]
        eventually(lambda: session_queries(process.url, session) == [shown[0]])
        assert [text for kind, text in page.console_log if kind == "error"] == []  # type: ignore[attr-defined]


LAYOUTS = {
    "inline": "",  # the form: input and button side by side
    "stacked": "#q, form button { display: block; margin: 4px 0; }",  # the button right under the input
}


def overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_host_forms_layout_is_kept_and_its_button_never_covered(browser, server, layout):
    with fresh_page(browser) as page:
        open_host(page, server, css=LAYOUTS[layout], attach=False)

        def boxes() -> list[dict]:
            return [page.locator(selector).bounding_box() for selector in ("#q", "form button")]

        before = boxes()
        page.evaluate("window.ac = new Autocomplete(document.getElementById('q'))")
        page.wait_for_function("ac.wsReady")
        assert boxes() == before
        type_and_wait(page, server, "ro")
        assert boxes() == before
        field, button = before
        listbox = page.locator("[role=listbox]").bounding_box()
        assert listbox is not None and not overlap(listbox, button)
        assert listbox["x"] == pytest.approx(field["x"]) and listbox["width"] == pytest.approx(field["width"])
        assert listbox["y"] >= field["y"] + field["height"] - 1
        first = page.locator("[role=option]").first.bounding_box()
        assert first is not None and first["y"] + first["height"] <= 760
        page.locator("form button").click()  # Go, with the list open
        assert results_query(page) == "ro"


def test_below_680px_the_suggestions_fill_the_screen_in_a_dialog(browser, server):
    phone = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True}
    with demo_page(browser, server, **phone) as page:
        box = page.locator("#q")
        before = box.bounding_box()
        dialog = page.locator("dialog.ac-dialog")
        box.focus()
        playwright_api.expect(dialog).to_be_visible()
        assert dialog.bounding_box() == {"x": 0, "y": 0, "width": 360, "height": 640}
        assert box.evaluate("(el) => el.closest('dialog') !== null && el === document.activeElement")
        shown = type_and_wait(page, server, "ro")
        for option in page.locator("[role=option]").all():  # every option on screen, none cut
            edge = option.bounding_box()
            assert edge is not None and edge["x"] >= 0 and edge["x"] + edge["width"] <= 360
            assert edge["y"] + edge["height"] <= 640
        box.press("Escape")
        playwright_api.expect(page.locator("[role=listbox]")).to_be_hidden()
        playwright_api.expect(dialog).to_be_visible()
        box.press("Escape")
        playwright_api.expect(dialog).to_be_hidden()
        assert box.evaluate("(el) => el.closest('form').id") == "search-form"
        assert box.bounding_box() == before
        box.tap()  # back in: the suggestions for "ro" again; tapping one submits it and leaves
        playwright_api.expect(page.locator("[role=option]")).to_have_text(shown)
        page.locator("[role=option]").nth(1).tap()
        playwright_api.expect(page.locator("#trail li")).to_have_text([shown[1]])
        playwright_api.expect(dialog).to_be_hidden()


def test_the_detached_mode_follows_its_media_query_option(browser, server):
    with fresh_page(browser, viewport={"width": 360, "height": 640}) as page:
        open_host(page, server, options="{detachedMediaQuery: '(max-width: 300px)'}")
        type_and_wait(page, server, "ro")
        assert page.locator("dialog").count() == 0
        field = page.locator("#q").bounding_box()
        listbox = page.locator("[role=listbox]").bounding_box()
        assert field is not None and listbox is not None
        assert listbox["y"] >= field["y"] + field["height"] - 1


# ---------------------------------------------------------------- a service that refuses the page


@pytest.fixture(scope="module", autouse=True)
def refused_pages(request: pytest.FixtureRequest) -> Iterator[dict[str, playwright_api.Page] | None]:
    """Two pages of another origin, opened before the module's first test so that the 10 s the
    refusal test watches them overlap the other tests: one loads the widget from the real server
    (which refuses the origin), one from the stub (which accepts and closes with 1008)."""
    if not any(item.name.startswith("test_a_refused_origin") for item in request.session.items):
        yield None
        return
    browser = request.getfixturevalue("browser")
    server = request.getfixturevalue("server")
    stub = request.getfixturevalue("stub")
    with fresh_page(browser) as handshake, fresh_page(browser) as closing:
        serve_host(handshake, OTHER_ORIGIN, script_base=server)
        serve_host(closing, OTHER_ORIGIN, script_base=stub.url, options=f"{{url: '{stub.url}/refuse/'}}")
        pages = {"handshake": handshake, "closing": closing}
        for page in pages.values():
            page.goto(f"{OTHER_ORIGIN}/shop")
            page.locator("#q").press_sequentially("ro", delay=30)
        yield pages


def test_a_refused_origin_shows_one_message_and_backs_off(refused_pages):
    """The real server fails the handshake (403: close 1006 before open) or accepts and closes with
    1008; the stub closes with 1008 and a reason. Each page gets one message, one event, and
    reconnects that back off, watched for its first 10 s."""
    pages = refused_pages
    handshake, closing = pages["handshake"], pages["closing"]
    for page in pages.values():
        message = page.locator(".ac-message[role=status]")
        playwright_api.expect(message).to_be_visible()
        playwright_api.expect(message).to_contain_text("Suggestions are unavailable")
        page.locator("#q").press_sequentially("se", delay=30)  # typing on does not reconnect
    playwright_api.expect(closing.locator(".ac-message")).to_contain_text(REFUSAL_REASON)
    handshake.wait_for_function("performance.now() > 10_500", polling=100, timeout=15_000)
    closing.wait_for_function("performance.now() > 10_500", polling=100, timeout=15_000)
    for name, page in pages.items():
        created = page.evaluate("socketTap.created")
        in_ten_seconds = [at for at in created if at <= created[0] + 10_000]
        assert 2 <= len(in_ten_seconds) <= 5, name  # 1, 2, 4 s apart: not a reconnect storm
        gaps = [later - earlier for earlier, later in zip(created, created[1:], strict=False)]
        # each delay doubles (1 s, 2 s, 4 s, ... up to 30 s), give or take the 20 % jitter
        assert all(gap >= 0.8 * min(1000 * 2**i, 30_000) for i, gap in enumerate(gaps)), (name, gaps)
        errors = [detail for event, detail in page.evaluate("acEvents") if event == "autocomplete:error"]
        assert len(errors) == 1, name
        assert page.locator(".ac-message:not(:empty)").count() == 1
        assert page.page_errors == []  # type: ignore[attr-defined]
    refusals = [(d["kind"], d["code"]) for e, d in closing.evaluate("acEvents") if e == "autocomplete:error"]
    assert refusals == [("refused", 1008)]
    # The real server either fails the handshake (403: the browser tells only "unreachable") or
    # accepts and closes with 1008 and its reason ("refused").
    kinds = [d["kind"] for e, d in handshake.evaluate("acEvents") if e == "autocomplete:error"]
    assert kinds in (["unreachable"], ["refused"])
    console_errors = {
        name: [text for kind, text in page.console_log if kind == "error"]  # type: ignore[attr-defined]
        for name, page in pages.items()
    }
    assert console_errors["closing"] == []  # a clean close, no HTTP attempt
    # the browser logs each failed handshake; the widget adds one failed HTTP fallback
    assert len(console_errors["handshake"]) <= handshake.evaluate("socketTap.sockets.length") + 2


# ---------------------------------------------------------------- fast typing and long text


def test_fast_typing_keeps_one_input_in_flight_and_never_meets_the_rate_limit(page, server):
    text = reference(server, "rose b")[0]  # a whole query of the log, typed at machine speed
    expected = reference(server, text)
    assert expected, f"the test model has no completions for {text!r}"
    box = page.locator("#q")
    box.press_sequentially(text, delay=0)
    playwright_api.expect(page.locator("[role=option]")).to_have_text(expected)
    outstanding = peak = 0
    for direction, kind, _seq in page.evaluate("socketTap.timeline"):
        if direction == "sent" and kind == "input":
            outstanding += 1
        elif direction == "delivered" and kind in ("completions", "superseded", "error"):
            outstanding -= 1
        peak = max(peak, outstanding)
    assert peak == 1
    assert [frame for frame in page.evaluate("socketTap.delivered") if frame["type"] == "error"] == []
    sent = [frame["text"] for frame in page.evaluate("socketTap.sent") if frame["type"] == "input"]
    assert sent[-1] == text

    longer = (text + " in early spring before the new growth starts, after the last frost" * 3)[:150]
    box.press_sequentially(longer[len(text) :], delay=0)
    playwright_api.expect(page.locator(".ac-message")).to_have_text(
        "No suggestions for text longer than 100 characters."
    )
    playwright_api.expect(page.locator("[role=listbox]")).to_be_hidden()
    for _ in range(len(longer) - 100):
        box.press("Backspace")
    playwright_api.expect(page.locator(".ac-message")).to_have_text("")
    page.wait_for_function(f"socketTap.sent.at(-1).text === {json.dumps(longer[:100])}")  # asked again
    box.fill("")
    box.focus()
    page.keyboard.insert_text(longer)  # a paste
    playwright_api.expect(page.locator(".ac-message")).to_contain_text("No suggestions for text longer")
    frames = page.evaluate("socketTap.sent")
    assert max(len(frame.get("text", "")) for frame in frames) <= 100
    assert [f for f in page.evaluate("socketTap.delivered") if f["type"] == "error"] == []
    assert [m for m in page.console_log if m[0] in ("error", "warning")] == []  # type: ignore[attr-defined]


# ---------------------------------------------------------------- what the service says back (stub)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def open_canned(page: playwright_api.Page, stub: StubServer) -> None:
    open_host(page, stub.url, options=f"{{url: '{stub.url}/canned/'}}", prevent=True)


def test_a_matched_span_is_highlighted_and_a_corrected_suggestion_says_so(browser, stub):
    with fresh_page(browser) as page:
        open_canned(page, stub)
        page.locator("#q").press_sequentially("hose")
        options = page.locator("[role=option]")
        playwright_api.expect(options.first).to_have_text("hose reel")  # the answer to the whole text
        parts = options.evaluate_all(
            "(options) => options.map((option) => [...option.childNodes].map((node) =>"
            " [node.nodeName === 'MARK' ? 'mark' : node.className || 'text', node.textContent]))"
        )
        assert parts == [
            [["text", "hose"], ["mark", " reel"]],
            [["mark", "garden "], ["text", "hose"], ["mark", " fitting"]],
            [["text", "house"], ["mark", " plants"], ["ac-visually-hidden", ", corrected spelling"]],
            [["text", "hose"], ["mark", " span out of range"]],  # a span past the text: the typed prefix
        ]
        corrected = options.nth(2)
        assert corrected.get_attribute("class") == "ac-option ac-corrected"
        hidden = corrected.locator(".ac-visually-hidden").bounding_box()
        assert hidden is not None and hidden["width"] <= 1 and hidden["height"] <= 1
        page.locator("#q").press("ArrowDown")
        page.locator("#q").press("ArrowDown")
        page.locator("#q").press("ArrowDown")
        page.locator("#q").press("Enter")
        assert page.locator("#q").input_value() == "house plants"  # not the hidden note


def test_a_submit_the_service_did_not_store_is_retried_once_over_http(browser, stub):
    with fresh_page(browser) as page:
        open_canned(page, stub)
        stub.app.state.frames.clear()
        stub.app.state.posts.clear()
        box = page.locator("#q")
        box.press_sequentially("hose")
        playwright_api.expect(page.locator("[role=option]").first).to_have_text("hose reel")
        box.press("Enter")  # typed: the websocket says stored false, HTTP is asked once and stores it
        page.wait_for_function("acEvents.some(([name]) => name === 'autocomplete:submitted')")
        box.fill("")
        box.press_sequentially("pending h")
        playwright_api.expect(page.locator("[role=option]").first).to_have_text("pending h reel")
        box.press("ArrowDown")
        box.press("Enter")  # chosen, rank 1: "pending" is an answer, not a failure
        page.wait_for_function("acEvents.filter(([name]) => name === 'autocomplete:submitted').length === 2")
        submitted = [detail for name, detail in page.evaluate("acEvents") if name == "autocomplete:submitted"]
        assert submitted == [
            {
                "text": "hose",
                "rank": None,
                "stored": True,
                "via": "http",
                "retried": True,
                "session": STUB_SESSION,
            },
            {
                "text": "pending h reel",
                "rank": 1,
                "stored": "pending",
                "via": "websocket",
                "retried": False,
                "session": STUB_SESSION,
            },
        ]
        submits = [frame for frame in stub.app.state.frames if frame["type"] == "submit"]
        keys = [frame.pop("idempotency_key") for frame in submits]
        assert submits == [
            {"type": "submit", "text": "hose", "rank": None},
            {"type": "submit", "text": "pending h reel", "rank": 1},
        ]
        assert len(set(keys)) == 2 and all(len(key) == 32 for key in keys)
        # the retry carries its submit's key, so a service that did store it the first time can tell
        assert stub.app.state.posts == [
            {"session": STUB_SESSION, "text": "hose", "rank": None, "idempotency_key": keys[0]}
        ]
        assert urllib.parse.urlparse(page.url).path == "/shop"  # the page kept its own submit


# ---------------------------------------------------------------- recent searches

HOST_SECRET = "the host's shared secret, 16+"


def submit_typed(page: playwright_api.Page, base: str, text: str) -> None:
    """Type ``text`` on the demo page, submit it with Enter, and wait until the trail shows it."""
    box = page.locator("#q")
    box.fill("")
    type_and_wait(page, base, text)
    box.press("Enter")
    playwright_api.expect(page.locator("#trail li").last).to_have_text(text)


def recent_texts(page: playwright_api.Page) -> list[str]:
    return page.locator("[role=option].ac-recent .ac-recent-text").all_inner_texts()


def stored_history(page: playwright_api.Page, base: str) -> list[str]:
    """The person's history as the service has it, asked with the page's own cookies."""
    body = page.request.get(f"{base}/v1/history?k=20").json()
    return [item["text"] for item in body["items"]]


def test_focusing_the_empty_box_shows_recent_searches_marked_as_such(page, server):
    for text in ("ro", "ho"):
        submit_typed(page, server, text)
    box = page.locator("#q")
    box.fill("")  # emptied while focused: the recent searches, most recent first
    playwright_api.expect(page.locator("[role=option]")).to_have_count(2)
    assert recent_texts(page) == ["ho", "ro"]
    assert page.locator("[role=option].ac-recent").count() == 2
    name = page.locator("[role=option]").first.evaluate("(el) => el.textContent")
    assert "recent search" in name and "ho" in name  # what a screen reader says about it
    assert page.locator(".ac-recent .ac-recent-icon").first.is_visible()  # and what an eye sees
    playwright_api.expect(page.locator(".ac-status")).to_contain_text("2 recent searches")
    page.locator("h1").click()
    assert box.get_attribute("aria-expanded") == "false"
    box.focus()  # focusing it again shows them again
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(2)
    assert box.get_attribute("aria-expanded") == "true"
    box.press_sequentially("r")  # typing: suggestions again
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(0)
    playwright_api.expect(page.locator("[role=option]")).to_have_text(reference(server, "r"))


def test_arrow_down_on_the_empty_box_opens_the_recent_searches_at_the_first(page, server):
    submit_typed(page, server, "ro")
    box = page.locator("#q")
    box.fill("")
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(1)
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    box.press("ArrowDown")
    playwright_api.expect(box).to_have_attribute("aria-expanded", "true")
    active = box.get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").locator(".ac-recent-text").inner_text() == "ro"
    box.press("Enter")  # choosing a recent search submits it
    playwright_api.expect(page.locator("#trail li")).to_have_text(["ro", "ro"])
    submits = page.evaluate("socketTap.sent.filter((frame) => frame.type === 'submit')")
    assert submits[-1]["text"] == "ro" and submits[-1]["rank"] is None  # not a suggestion's rank


def test_delete_on_the_active_recent_search_forgets_it_for_good(page, server):
    for text in ("ro", "ho", "ca"):
        submit_typed(page, server, text)
    box = page.locator("#q")
    box.fill("")
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(3)
    box.press("ArrowDown")
    box.press("ArrowDown")  # "ho"
    box.press("Delete")
    assert recent_texts(page) == ["ca", "ro"]
    active = box.get_attribute("aria-activedescendant")  # the next one is active: Delete again works
    assert page.locator(f"#{active}").locator(".ac-recent-text").inner_text() == "ro"
    assert box.input_value() == ""
    playwright_api.expect(page.locator(".ac-status")).to_contain_text("ho removed from recent searches")
    forgets = page.evaluate("socketTap.sent.filter((frame) => frame.type === 'forget')")
    assert forgets == [{"type": "forget", "query": "ho"}]
    eventually(lambda: stored_history(page, server) == ["ca", "ro"])
    page.locator("h1").click()
    box.focus()
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(2)
    assert recent_texts(page) == ["ca", "ro"]  # and it does not come back
    page.reload()
    page.locator("#q").focus()
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(2)
    assert recent_texts(page) == ["ca", "ro"]


def test_the_x_removes_a_recent_search_and_submits_nothing(page, server):
    for text in ("ro", "ho"):
        submit_typed(page, server, text)
    box = page.locator("#q")
    box.fill("")
    playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(2)
    submitted = len(page.evaluate("socketTap.sent.filter((frame) => frame.type === 'submit')"))
    remove = page.locator("[role=option].ac-recent").nth(1).locator(".ac-remove")
    assert remove.get_attribute("aria-hidden") == "true" and remove.get_attribute("title")
    remove.click()
    assert recent_texts(page) == ["ho"]
    assert len(page.evaluate("socketTap.sent.filter((frame) => frame.type === 'submit')")) == submitted
    assert page.evaluate("document.activeElement.id") == "q"
    eventually(lambda: stored_history(page, server) == ["ho"])


@pytest.fixture(scope="module")
def user_server(mpc_model: Path) -> Iterator[str]:
    """A server that knows the host's secret: pages may pass signed user keys."""
    with ServerProcess(mpc_model, env={"AUTOCOMPLETE_HISTORY_SECRET": HOST_SECRET}) as process:
        yield process.url


def test_a_signed_user_key_brings_the_history_to_another_browser_and_a_forged_one_nothing(
    browser, user_server
):
    from sessions.users import sign_user

    alice = sign_user("alice-4711", HOST_SECRET)
    forged = "alice-4711." + "0" * 64
    with fresh_page(browser) as page:
        open_host(page, user_server, options=f"{{user: '{alice}'}}", prevent=True)
        box = page.locator("#q")
        box.press_sequentially("ro")
        box.press("Enter")
        eventually(lambda: any(name == "autocomplete:submitted" for name, _ in page.evaluate("acEvents")))
    for key, expected in ((alice, ["ro"]), (forged, [])):
        with fresh_page(browser) as page:  # another browser: no cookie in common
            open_host(page, user_server, options=f"{{user: '{key}'}}")
            page.locator("#q").focus()
            page.wait_for_function("socketTap.delivered.some((frame) => frame.type === 'recent')")
            assert recent_texts(page) == expected
            assert page.page_errors == []  # type: ignore[attr-defined]


def test_with_history_false_no_recent_searches_are_asked_and_nothing_is_kept(browser, server):
    with fresh_page(browser) as page:
        open_host(page, server, options="{history: false}", prevent=True)
        box = page.locator("#q")
        box.press_sequentially("ro")
        box.press("Enter")
        eventually(lambda: any(name == "autocomplete:submitted" for name, _ in page.evaluate("acEvents")))
        box.fill("")
        box.press("ArrowDown")
        assert page.evaluate("socketTap.sent.filter((frame) => frame.type === 'recent')") == []
        assert page.locator("[role=option]").count() == 0
        assert stored_history(page, server) == []


# ---------------------------------------------------------------- axe-core


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


def test_axe_finds_no_violations_in_any_state(browser, server, stub, axe):
    found: dict[str, list] = {}
    with demo_page(browser, server) as page:
        found["closed"] = axe_violations(page, axe)
        type_and_wait(page, server, "ro")
        found["open"] = axe_violations(page, axe)
        page.locator("#q").press("ArrowDown")
        found["option active"] = axe_violations(page, axe)
        page.locator("#q").press("Enter")
        page.locator("#q").fill("")
        playwright_api.expect(page.locator("[role=option].ac-recent")).to_have_count(1)
        found["recent searches"] = axe_violations(page, axe)
        page.locator("#q").press("ArrowDown")
        found["recent search active"] = axe_violations(page, axe)
    with demo_page(browser, server, viewport={"width": 360, "height": 640}) as page:
        page.locator("#q").focus()
        type_and_wait(page, server, "ro")
        page.locator("#q").press("ArrowDown")
        found["detached"] = axe_violations(page, axe)
    with fresh_page(browser) as page:
        serve_host(page, OTHER_ORIGIN, script_base=stub.url, options=f"{{url: '{stub.url}/refuse/'}}")
        page.goto(f"{OTHER_ORIGIN}/shop")
        playwright_api.expect(page.locator(".ac-message")).to_contain_text(REFUSAL_REASON)
        found["error message"] = axe_violations(page, axe)
    assert found == {state: [] for state in found}


def test_demo_screenshot(browser, demo_server, tmp_path):
    """The README's picture; ``make screenshot`` writes it to docs/img/demo.png."""
    previous, prefix = context_example(demo_server)
    with demo_page(browser, demo_server, viewport={"width": 900, "height": 780}) as page:
        box = page.locator("#q")
        box.press_sequentially(previous, delay=10)
        box.press("Escape")
        box.press("Enter")
        playwright_api.expect(page.locator("#trail li")).to_have_text([previous])
        box.fill("")
        type_and_wait(page, demo_server, prefix, session=widget_session(page))
        box.press("ArrowDown")
        out = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "demo.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        assert out.stat().st_size > 10_000
