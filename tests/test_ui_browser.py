"""The pages in a real browser: Debian's headless chromium, driven by Selenium, against
`vellum serve` on the real SeaweedFS with API keys and the seeds ingested.

What a person sees: the login form lets a `read` key in (and the cookie stays out of
reach of scripts), the find page finds a capture by URL and leads to its viewer, nested, multi-paragraph and unclosed quotes are drawn nested and
marked, sections and insertions are marked, and a hostile text is shown as text: no
script ran, no element came from it, the DOM's text is the record's. Screenshots of two
seeds are saved in the test's temporary folder. Where chromium or chromedriver is
missing the tests run `make browser` to install them; where that cannot, they skip with
its one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from service.keys import create_key
from service.storage.s3 import S3Settings
from tests.servers import ServerProcess, running_server, s3_environment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
HOSTILE = (
    '<script>document.title="pwned"; alert(1)</script> <img src=x onerror="alert(2)"> '
    "&amp; &lt;b&gt;bold&lt;/b&gt; “<b>quoted</b>”\n\nשלום “עולם” e\u0301\u0302 x\u202eevil"
)


def browser_binaries() -> tuple[str, str]:
    """chromium and chromedriver, installed by `make browser` if need be, else a skip."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if None in found:
        try:
            installing = subprocess.run(
                ["make", "--no-print-directory", "browser"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
            why = (installing.stderr.strip().splitlines() or ["make browser failed"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"make browser could not run: {exc}"
        found = shutil.which("chromium"), shutil.which("chromedriver")
        if None in found:
            pytest.skip(f"browser tests: no headless chromium here ({why})")
    chromium, driver = found
    assert chromium is not None
    assert driver is not None
    return chromium, driver


class Site(msgspec.Struct):
    server: ServerProcess
    ids: dict[str, str]  # seed name (or "hostile") -> document id
    read_key: str
    shots: Path


def post(server: ServerProcess, key: str, body: bytes, content_type: str) -> str:
    request = urllib.request.Request(
        f"{server.url}/v1/documents",
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        document_id: str = json.load(response)["id"]
        return document_id


@pytest.fixture(scope="module")
def site(s3_server: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    keys = tmp / "keys.jsonl"
    ingest, _ = create_key(keys, ["ingest"])
    read, _ = create_key(keys, ["read"])
    settings = msgspec.structs.replace(s3_server, prefix=f"tests/{uuid.uuid4().hex}")
    env = {**s3_environment(settings), "VELLUM_KEYS_FILE": str(keys)}
    with running_server(tmp, env) as server:
        ids = {}
        for path in sorted(SEEDS.glob("0[1-7]-*.txt")):
            ids[path.stem] = post(server, ingest, path.read_bytes(), "text/plain; charset=utf-8")
        asserted = SEEDS / "14-asserted-title.json"
        ids[asserted.stem] = post(server, ingest, asserted.read_bytes(), "application/json")
        hostile = {"text": HOSTILE, "source": {"title": "<i>t</i>", "url": "javascript:alert(3)"}}
        ids["hostile"] = post(server, ingest, json.dumps(hostile).encode(), "application/json")
        yield Site(server=server, ids=ids, read_key=read, shots=tmp)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    """A headless chromium, logged in through the form with the read key."""
    chromium, chromedriver = browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        driver.get(f"{site.server.url}/ui/documents/{site.ids['01-nested-quotes']}")
        assert driver.current_url.startswith(f"{site.server.url}/ui/login?next=")
        driver.find_element("id", "key").send_keys(site.read_key)
        click_and_load(driver, driver.find_element("css selector", ".login button"))
        assert "/ui/login" not in driver.current_url
        assert (
            driver.current_url == f"{site.server.url}/ui/documents/{site.ids['01-nested-quotes']}"
        )
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, site: Site, seed: str) -> None:
    browser.get(f"{site.server.url}/ui/documents/{site.ids[seed]}")
    assert browser.find_element("css selector", "article.record")


def click_and_load(browser: Any, element: Any) -> None:
    """Click `element` and wait until the page it leads to has replaced this one (a click
    returns once the event is sent, not once the next page is there)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = browser.find_element("tag name", "html")
    element.click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(page))
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def css(browser: Any, selector: str) -> list[Any]:
    return list(browser.find_elements("css selector", selector))


def text_of(element: Any) -> str:
    return str(element.get_property("textContent"))


def pseudo(browser: Any, element: Any, which: str, prop: str) -> str:
    return str(
        browser.execute_script(
            "return getComputedStyle(arguments[0], arguments[1]).getPropertyValue(arguments[2])",
            element,
            which,
            prop,
        )
    )


def record_of(site: Site, seed: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{site.server.url}/v1/documents/{site.ids[seed]}",
        headers={"Authorization": f"Bearer {site.read_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        record: dict[str, Any] = json.load(response)
        return record


def test_the_session_cookie_is_out_of_reach_of_scripts(browser: Any) -> None:
    cookie = browser.get_cookie("vellum_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert browser.execute_script("return document.cookie") == ""


def test_a_nested_quote_is_drawn_inside_its_outer_one(browser: Any, site: Site) -> None:
    open_page(browser, site, "01-nested-quotes")
    (inner,) = css(browser, ".text .quote[data-depth='1'] .quote[data-depth='2']")
    assert text_of(inner) == "the harbor can’t wait,"
    outer = inner.find_element("xpath", "./ancestor::span[@data-depth='1']")
    assert text_of(outer).startswith("When the mayor told us ‘the harbor")
    background = "background-color"
    assert inner.value_of_css_property(background) != outer.value_of_css_property(background)
    assert pseudo(browser, inner, "::before", "content") != "none"  # the depth badge
    assert len(css(browser, ".text .quote")) == 4
    browser.set_window_size(1120, 760)  # the README's picture (docs/img/viewer.png)
    browser.save_screenshot(str(site.shots / "01-nested-quotes.png"))
    browser.set_window_size(1280, 1100)


def test_a_quote_over_paragraphs_is_one_quote_in_each(browser: Any, site: Site) -> None:
    open_page(browser, site, "02-multi-paragraph-repeated")
    paragraphs = css(browser, ".text p.block")
    fragments = [p.find_elements("css selector", ".quote") for p in paragraphs]
    assert [len(f) for f in fragments] == [0, 1, 1, 1, 0]
    assert {f[0].get_attribute("data-quote") for f in fragments if f} == {"0"}
    assert "last" in fragments[3][0].get_attribute("class").split()


def test_an_unclosed_quote_is_marked_at_its_end(browser: Any, site: Site) -> None:
    open_page(browser, site, "04-malformed-quotes")
    (unclosed,) = css(browser, ".text .quote.unclosed")
    assert text_of(unclosed).startswith("We were never told")
    assert pseudo(browser, unclosed, "::after", "content") == '"never closed"'
    (nested,) = css(browser, ".text .quote[data-depth='1'] .quote[data-depth='2']")
    assert text_of(nested) == "no"
    browser.save_screenshot(str(site.shots / "04-malformed-quotes.png"))


def test_sections_and_insertions_are_marked(browser: Any, site: Site) -> None:
    open_page(browser, site, "07-labelled-sections")
    sections = css(browser, ".text section.section")
    assert [s.find_element("css selector", ".label").text for s in sections] == [
        "EDITOR’S NOTE",
        "CORRECTION",
    ]
    record = record_of(site, "07-labelled-sections")
    blocks = css(browser, ".text .block")
    text = record["text"]
    assert [text_of(b) for b in blocks] == [
        text[b["span"][0] : b["span"][1]] for b in record["blocks"]
    ]
    browser.save_screenshot(str(site.shots / "07-labelled-sections.png"))

    open_page(browser, site, "06-insertions-ellipses")
    assert [text_of(e) for e in css(browser, ".text .insertion")] == [
        "the government",
        "sic",
        "PDF, 2 pages",
    ]
    assert [text_of(e) for e in css(browser, ".text .ellipsis")] == ["…", "...", ". . ."]
    browser.save_screenshot(str(site.shots / "06-insertions-ellipses.png"))


def test_a_hostile_text_is_shown_as_text(browser: Any, site: Site) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    open_page(browser, site, "hostile")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    assert "pwned" not in browser.title
    assert css(browser, "article script, article img, article b, article i") == []
    assert css(browser, "script") == []
    record = record_of(site, "hostile")
    shown = "".join(text_of(b) for b in css(browser, ".text .block"))
    assert shown == record["text"].replace("\n\n", "")
    assert "<script>" in shown
    assert unicodedata.normalize("NFC", "e\u0301\u0302") in shown  # the record's text is NFC
    assert "\u202e" in shown
    assert "&amp;" in shown
    links = [a.get_attribute("href") or "" for a in css(browser, "a")]
    assert not any(link.startswith("javascript:") for link in links)
    browser.save_screenshot(str(site.shots / "hostile.png"))


def test_the_find_page_finds_a_capture_by_url(browser: Any, site: Site) -> None:
    from selenium.webdriver.support.select import Select

    browser.get(f"{site.server.url}/ui/")
    browser.find_element("id", "url").send_keys("http://www.EXAMPLE.org/library-hours")
    Select(browser.find_element("id", "match")).select_by_value("exact")
    browser.find_element("id", "from").send_keys("2026")
    click_and_load(browser, browser.find_element("css selector", "form.lookup button"))
    (link,) = css(browser, "table.captures a.document")
    assert link.text == site.ids["14-asserted-title"]
    (row,) = css(browser, "table.captures tbody tr")
    assert "Library extends opening hours" in row.text
    browser.save_screenshot(str(site.shots / "find.png"))
    click_and_load(browser, link)
    (headline,) = css(browser, "h1.headline")
    assert headline.text == "Library extends opening hours"
    assert "headline asserted" in browser.find_element("css selector", ".headline-source").text
