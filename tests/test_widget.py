"""The search-box widget and the demo page in a real browser against a real server.

Debian's Chromium driven by Playwright; the server is a uvicorn subprocess on a free loopback
port serving a model built from the synthetic log. The HTTP API of the same server is the
reference the suggestions on screen are compared with.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import CHROMIUM, LAUNCH_ARGS, SOCKET_TAP, contrast_ratio, requires_chromium

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
    type_and_wait(page, server, "ros")
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
        assert page.locator("[role=listbox]").evaluate("(el) => getComputedStyle(el).position") == "absolute"
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
    assert page.evaluate("selected") == [{"text": shown[0], "index": 0}]
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


def test_a_stale_answer_never_overwrites_a_newer_one(page, server):
    older, newer = reference(server, "r"), reference(server, "ro")
    assert older != newer, "the test needs prefixes whose answers differ"
    page.evaluate("() => { socketTap.hold = (frame) => frame.type === 'completions' && frame.text === 'r'; }")
    box = page.locator("#q")
    box.press_sequentially("r")
    page.wait_for_function("socketTap.held.length === 1")  # the answer for 'r' exists and is held back
    box.press_sequentially("o")
    playwright_api.expect(page.locator("[role=option]")).to_have_text(newer)
    assert page.evaluate("socketTap.release()") == 1
    page.wait_for_function(
        "socketTap.delivered.some((frame) => frame.type === 'completions' && frame.text === 'r')"
    )
    page.evaluate("new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))")
    assert options(page) == newer


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
