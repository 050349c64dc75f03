"""The web page at /ui in a real browser: Debian's chromium driven by Playwright, against a
real `kb serve --worker` on 127.0.0.1 (hash embedder; a fake OpenAI-compatible server on
loopback streams the answers, word by word). Each flow is walked as a person would: the
token field, search and its filters (Ask's too), a streamed answer and its cited passages,
uploads followed to their job's end, removal, jobs and retry, the stats charts; by keyboard
where it matters. Every page asserts at teardown that no request left 127.0.0.1 and that
its console showed no error (tests/service/browser.py). Screenshots land in each test's tmp
folder, under screenshots/: every view, light and dark, at 1280×900 and at a phone's 390×844.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from kb.metrics.store import Event, MetricsStore
from kb.service.page import UI_DIR
from tests.conftest import ROOT, SAMPLE, provider_config, run_kb, write_config
from tests.openai_server import FakeOpenAI
from tests.service import browser
from tests.service.processes import Server, wait_for

REASON = browser.missing()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

ADMIN = "ui-admin-token-0123456789abcdef"
ANSWER = (
    "Treat with oxalic acid while the colony is broodless [1]. Formic acid reaches the mites under the cappings [2]."
)
SAMPLE_DOCS = 11
VIEWS = ("search", "ask", "documents", "jobs", "stats")
# The knowledge base "library": sample documents in folders, the manuals older than the rest
# (a file's modification time, as ingest records it, is what a filter's since compares).
LIBRARY = {
    "manuals": (["bee_health_field_manual.pdf", "winter_preparation.pdf"], "2020-06-01"),
    "notes": (["bee_biology.md", "hive_inspection.md", "honey_harvest.md", "swarming.txt"], "2024-06-01"),
    "web": (["varroa_mites.html", "equipment.html"], "2024-06-01"),
}


@dataclass
class Site:
    server: Server
    home: Path
    docs: Path
    library: Path
    tokens: dict[str, str]
    fake: FakeOpenAI

    def url(self, fragment: str = "") -> str:
        return f"{self.server.url}/ui/{'#' + fragment if fragment else ''}"


def _seed_metrics(home: Path) -> None:
    """A day of searches and asks, and an earlier baseline, so that the charts have a shape:
    the last six hours are slower, and their questions match the knowledge base less well."""
    store = MetricsStore(home / "metrics.db")
    rnd, now = random.Random(7), time.time()
    for i in range(40):
        store.record(Event("search", "default", 12.0, retrieve_ms=12.0, top1=rnd.uniform(0.55, 0.8),
                           ts=now - 30 * 3600 + i * 60))  # fmt: skip
    for i in range(96):  # 24 h in 15-minute steps
        ts, late = now - 24 * 3600 + i * 900 + rnd.uniform(0, 600), i >= 72
        slow = 2.0 if late else 1.0
        for _ in range(rnd.randint(1, 4)):
            total = rnd.uniform(8, 30) * slow
            store.record(Event("search", "default", total, retrieve_ms=total,
                               top1=rnd.uniform(0.45, 0.8) - (0.2 if late else 0.0), ts=ts))  # fmt: skip
        for _ in range(rnd.randint(0, 3)):
            cached = rnd.random() < 0.3
            tokens_in, tokens_out = (0, 0) if cached else (rnd.randint(600, 1200), rnd.randint(40, 160))
            store.record(Event("ask", "default", rnd.uniform(700, 1800) * slow, retrieve_ms=30.0,
                               generate_ms=700.0, provider="primary", model="gpt-4o-mini", input_tokens=tokens_in,
                               output_tokens=tokens_out, cost_usd=(tokens_in * 0.15 + tokens_out * 0.6) / 1e6,
                               cached=cached, error="ProviderTimeout" if rnd.random() < 0.05 else None,
                               top1=rnd.uniform(0.4, 0.8), ts=ts))  # fmt: skip
    store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    home, docs = root / "home", root / "docs"
    shutil.copytree(SAMPLE, docs)
    env = {"KB_MODEL": "hash", "KB_HOME": str(home)}
    assert run_kb("ingest", docs, env=env).code == 0
    assert run_kb("--kb", "notes", "ingest", docs / "honey_harvest.md", env=env).code == 0
    library = root / "library"
    for folder, (names, modified) in LIBRARY.items():
        (library / folder).mkdir(parents=True)
        stamp = datetime.fromisoformat(f"{modified}T12:00:00").timestamp()
        for name in names:
            shutil.copy(SAMPLE / name, library / folder / name)
            os.utime(library / folder / name, (stamp, stamp))
    assert run_kb("--kb", "library", "ingest", library, env=env).code == 0
    tokens = {}
    for name, scope in (("reader", "read"), ("writer", "write"), ("doomed", "read")):
        made = run_kb("tokens", "create", name, "--scope", scope, "--json", env=env)
        assert made.code == 0, made.err
        tokens[name] = made.json()["token"]
    fake = FakeOpenAI(ANSWER).start()
    fake.chunk_delay = 0.1  # about two seconds for the answer: long enough to see it grow
    write_config(home, provider_config(fake.url, timeout_s=30, max_retries=0))
    _seed_metrics(home)
    server = Server(home, {**env, "KB_SERVE_TOKENS": ADMIN, "KB_TEST_KEY": "sk-test"}, ["--worker"]).wait_ready()
    yield Site(server, home, docs, library, tokens, fake)
    server.stop()
    fake.stop()


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        running = browser.launch(playwright)
        yield running
        running.close()


@pytest.fixture
def pages(chromium, tmp_path):
    """Opens watched pages; when the test ends, none may have left 127.0.0.1 or logged an error."""
    opened: list[browser.Watched] = []

    def open_page(size: str = "wide", scheme: str = "light") -> browser.Watched:
        watched = browser.watched_page(chromium, tmp_path / "screenshots", size, scheme)
        opened.append(watched)
        return watched

    yield open_page
    for watched in opened:
        watched.page.context.close()
    for watched in opened:
        assert watched.outside == [], f"requests beyond 127.0.0.1: {watched.outside}"
        assert watched.unexpected() == [], f"console errors: {watched.unexpected()}"
        assert all(re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", u) for u in watched.requests), watched.requests


def sign_in(site: Site, page, token: str = ADMIN, fragment: str = "search") -> None:
    page.goto(site.url(fragment))
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()


def go(page, view: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=view.capitalize(), exact=True).click()
    expect(page.locator(f"#view-{view}")).to_be_visible()


def search(page, query: str) -> None:
    page.get_by_role("searchbox", name="Search").fill(query)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-status")).to_contain_text("for “")


def ask(page, question: str) -> None:
    page.get_by_role("textbox", name="Question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#answer-meta")).to_be_visible(timeout=30_000)


def test_the_page_and_its_assets_need_no_token_and_come_from_the_package(site):
    with httpx.Client(base_url=site.server.url) as http:
        moved = http.get("/ui")
        assert moved.status_code == 307 and moved.headers["location"] == "ui/"  # relative: fine behind a prefix
        page = http.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
        files = [f for f in UI_DIR.rglob("*") if f.is_file()]
        assert {f.name for f in files} >= {"index.html", "style.css", "app.js", "icon.svg"}
        for f in files:
            served = http.get(f"/ui/{f.relative_to(UI_DIR).as_posix()}")
            assert served.status_code == 200 and served.content == f.read_bytes(), f
            # Nothing from a CDN or font service: the only URL is the SVG namespace.
            assert re.findall(r"https?://[^\s\"')]+", served.text) in ([], ["http://www.w3.org/2000/svg"]), f
        assert http.get("/ui/server.json").json()["token_required"] is True
        missing = http.get("/ui/nothing.js")
        assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not_found"
        assert http.get("/uix").status_code == 401  # the open prefix is /ui/, not anything starting /ui
        assert http.get("/v1/token").status_code == 401  # data needs the token
    # The installed package carries every file of the page (setuptools package-data).
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kb"]
    package = ROOT / "src" / "kb"
    for f in files:
        assert any(fnmatch(f.relative_to(package).as_posix(), p) for p in patterns), f


def test_the_token_field_asks_for_a_token_and_a_401_brings_it_back(site, pages):
    w = pages()
    page = w.page
    page.goto(site.url())
    field = page.get_by_label("Token", exact=True)
    expect(field).to_be_focused()
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
    w.expect_console("status of 401")  # the wrong token and the revoked one, each refused once
    field.fill("not-a-token")
    field.press("Enter")
    expect(page.locator("#token-status")).to_have_text(re.compile("The server refused the token: unknown bearer token"))
    field.fill(site.tokens["doomed"])
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#who-name")).to_have_text("doomed · read")
    assert page.evaluate("sessionStorage.getItem('kb.token')") == site.tokens["doomed"]
    page.reload()  # kept for the tab: no question again
    expect(page.get_by_role("searchbox", name="Search")).to_be_visible()
    w.shot("signed-in")
    with httpx.Client(base_url=site.server.url, headers={"authorization": f"Bearer {ADMIN}"}) as http:
        assert http.delete("/v1/tokens/doomed").status_code == 200
    time.sleep(1.2)  # the server reads the token store at most once a second
    page.get_by_role("searchbox", name="Search").fill("swarm")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page.get_by_label("Token", exact=True)).to_be_visible()
    expect(page.locator("#token-status")).to_have_text(re.compile("was revoked"))
    assert page.evaluate("sessionStorage.getItem('kb.token')") is None
    w.shot("token-refused")
    page.get_by_role("button", name="Use token").click()  # empty: the browser says the field is required
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()


def test_search_from_the_keyboard_shows_sources_scores_and_marks_the_words(site, pages):
    w = pages()
    page = w.page
    sign_in(site, page)
    box = page.get_by_role("searchbox", name="Search")
    box.focus()
    page.keyboard.type("varroa mites treatment")
    page.keyboard.press("Enter")
    hits = page.locator("#search-results > li")
    expect(hits).to_have_count(10)
    first = hits.first
    assert first.locator(".file").inner_text().endswith((".html", ".md", ".txt", ".pdf", ".rst"))
    assert first.locator(".path").inner_text().startswith(str(site.docs))
    assert re.fullmatch(r"score \d\.\d{3}", first.locator(".score").inner_text())
    marks = [m.lower() for m in page.locator("#search-results mark").all_inner_texts()]
    assert marks and all(m.startswith(("varroa", "mite", "treatment")) for m in marks), marks
    w.shot("search")
    region = page.get_by_role("region", name="Search")
    region.get_by_label("Mode").select_option("keyword")
    region.get_by_label("One passage per document").check()
    search(page, "queen eggs per day")
    files = hits.locator(".file").all_inner_texts()
    assert len(files) == len(set(files)) >= 2  # one passage per document
    places = page.locator("#search-results .where").all_inner_texts()
    assert any(re.fullmatch(r"lines \d+–\d+|page \d+", p) for p in places), places
    page.get_by_label("Knowledge base").select_option("notes")  # searched again in the other one
    expect(page.locator("#search-results .file").first).to_have_text("honey_harvest.md")
    assert set(hits.locator(".file").all_inner_texts()) == {"honey_harvest.md"}


def test_ask_streams_the_answer_and_its_citations_open_the_passage(site, pages):
    w = pages()
    page = w.page
    sign_in(site, page, fragment="ask")
    question = page.get_by_role("textbox", name="Question")
    question.fill("When should I treat varroa with oxalic acid?")
    question.press("Enter")
    # Text arrives before the final event: the answer streams in.
    # (Polled from here: wait_for_function evaluates a string in the page, which its CSP forbids.)
    growing = "document.getElementById('answer-text').textContent.length > 0"
    wait_for(lambda: page.evaluate(growing), 30, "the first words of the answer", every=0.05)
    assert page.evaluate("document.getElementById('answer-meta').hidden")  # before the final event
    assert len(page.locator("#answer-text").inner_text()) < len(ANSWER)
    expect(page.locator("#answer-meta")).to_be_visible(timeout=30_000)
    assert site.fake.requests[-1]["stream"] is True
    expect(page.locator("#answer-text")).to_have_text(ANSWER)
    links = page.locator("#citations a")
    expect(links).to_have_count(2)
    for link in links.all():
        assert link.inner_text() == Path(link.get_attribute("title").split(" (")[0]).name  # named by the file
    meta = dict(
        zip(page.locator("#answer-meta dt").all_inner_texts(), page.locator("#answer-meta dd").all_inner_texts())
    )
    assert meta["Provider"] == "primary (gpt-4o-mini)" and meta["Cached"] == "no"
    assert re.fullmatch(r"[\d,]+ in, [\d,]+ out", meta["Tokens"]) and meta["Tokens"] != "0 in, 0 out"
    assert re.fullmatch(r"\$0\.\d+(e-\d+)?|\$\d\.\d\d", meta["Cost"]) and meta["Cost"] != "$0"
    assert re.match(r"\d+ ms|\d+\.\d+ s", meta["Latency"])
    w.shot("ask")
    first = links.first
    first.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text(first.inner_text())
    assert len(page.locator("#passage-text").inner_text()) > 40
    w.shot("passage")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.closest('#citations') !== null")  # back where it was
    page.locator("#answer-text a").first.click()  # the [1] in the text opens the same passage
    expect(dialog.get_by_role("heading")).to_have_text(first.inner_text())
    dialog.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#answer-meta")).to_contain_text("yes", timeout=30_000)  # the same question: cached


def filters(page, view: str):
    """The Filter group of the Search or Ask form."""
    return page.get_by_role("region", name=view.capitalize()).get_by_role("group", name="Filter")


def searched(page, query: str) -> dict:
    """Searches for `query` from the keyboard, the answer shown; the body the page sent."""
    page.get_by_role("searchbox", name="Search").fill(query)
    with page.expect_request(lambda request: request.url.endswith("/v1/search")) as sent:
        page.keyboard.press("Enter")
    expect(page.locator("#search-status")).not_to_have_text("Searching…")  # the answer is shown
    return sent.value.post_data_json


def folders_and_files(page, root: Path) -> set[tuple[str, str]]:
    """The folder and name of each passage's document, all under `root`."""
    paths = [Path(p).relative_to(root) for p in page.locator("#search-results .path").all_inner_texts()]
    return {(p.parent.as_posix(), p.name) for p in paths}


def test_search_filters_by_source_type_and_date_and_shows_kbs_error(site, pages):
    w = pages()
    page = w.page
    sign_in(site, page)
    page.get_by_label("Knowledge base").select_option("library")
    group = filters(page, "search")
    source = group.get_by_role("textbox", name="Source")
    kind = group.get_by_role("combobox", name="Type")
    since = group.get_by_label("Modified since")
    # The types offered are those of the knowledge base's documents, with their numbers.
    expect(kind.locator("option")).to_have_text(["any", "html (2)", "md (3)", "pdf (2)", "txt (1)"])
    expect(source).to_have_accessible_description(re.compile("a file or folder name, or a glob"))
    expect(since).to_have_attribute("max", re.compile(r"^\d{4}-\d\d-\d\d$"))  # today: no date after it
    status = page.locator("#search-status")

    body = searched(page, "varroa mites treatment")
    expect(status).to_have_text(re.compile(r"^\d+ passages? for “varroa mites treatment”$"))
    assert "filter" not in body  # nothing filled in, nothing sent
    assert len({folder for folder, _ in folders_and_files(page, site.library)}) > 1

    # From the keyboard: the filters follow the search options in the tab order, and Enter
    # in one of them searches.
    page.get_by_label("One passage per document").focus()
    page.keyboard.press("Tab")
    expect(source).to_be_focused()
    page.keyboard.type("manuals")
    body = searched(page, "varroa mites treatment")
    assert body["filter"] == {"source": ["manuals"]}
    expect(status).to_have_text(re.compile("for “varroa mites treatment” in documents matching source “manuals”$"))
    found = folders_and_files(page, site.library)
    assert found and {folder for folder, _ in found} == {"manuals"}, found

    source.fill("")
    kind.select_option("md")
    body = searched(page, "queen eggs")
    assert body["filter"] == {"type": ["md"]}
    found = folders_and_files(page, site.library)
    assert found and all(name.endswith(".md") for _, name in found), found

    source.fill("notes")
    kind.select_option("txt")
    body = searched(page, "queen eggs")
    assert body["filter"] == {"source": ["notes"], "type": ["txt"]}
    expect(status).to_contain_text("in documents matching source “notes”, type txt")
    assert folders_and_files(page, site.library) == {("notes", "swarming.txt")}

    # Since: the manuals were last changed in 2020, the rest in 2024.
    source.fill("")
    kind.select_option("")
    since.fill("2023-01-01")
    body = searched(page, "winter preparation varroa")
    assert body["filter"] == {"since": "2023-01-01"}
    found = folders_and_files(page, site.library)
    assert found and "manuals" not in {folder for folder, _ in found}, found

    # A filter that leaves no document: kb's own message, in the form's status line.
    w.expect_console("status of 404")  # the browser logs the answer's status
    since.fill("")
    source.fill("attic")
    source.press("Enter")
    expect(status).to_have_text(
        re.compile(r"^no document of knowledge base 'library' matches the filter \(source 'attic'\)")
    )
    expect(status).to_have_class(re.compile("error"))
    expect(page.locator("#search-results > li")).to_have_count(0)
    w.shot("search-filter-error")
    source.fill("web")
    source.press("Enter")
    expect(status).to_have_text(re.compile("in documents matching source “web”$"))
    expect(status).not_to_have_class(re.compile("error"))
    # Another knowledge base: its own types; a type it lacks is let go.
    kind.select_option("html")
    page.get_by_label("Knowledge base").select_option("notes")
    expect(kind.locator("option")).to_have_text(["any", "md (1)"])
    expect(kind).to_have_value("")


def test_ask_takes_the_same_filters(site, pages):
    w = pages()
    page = w.page
    sign_in(site, page, fragment="ask")
    page.get_by_label("Knowledge base").select_option("library")
    group = filters(page, "ask")
    group.get_by_role("combobox", name="Type").select_option("pdf")
    with page.expect_request(lambda request: request.url.endswith("/v1/ask")) as sent:
        ask(page, "How do I keep a colony dry in winter?")
    assert sent.value.post_data_json["filter"] == {"type": ["pdf"]}
    cited = [link.get_attribute("title") for link in page.locator("#citations a").all()]
    assert cited and all(Path(c.split(" (")[0]).suffix == ".pdf" for c in cited), cited
    prompt = json.dumps(site.fake.requests[-1]["messages"])
    assert "winter_preparation.pdf" in prompt or "bee_health_field_manual.pdf" in prompt
    assert ".md" not in prompt and ".html" not in prompt  # no passage of another type reached the model
    w.shot("ask-filtered")
    group.get_by_role("textbox", name="Source").fill("attic")
    page.get_by_role("button", name="Ask", exact=True).click()
    status = page.locator("#ask-status")
    expect(status).to_have_text(
        re.compile(r"^no document of knowledge base 'library' matches the filter \(source 'attic'; type pdf\)")
    )
    expect(status).to_have_class(re.compile("error"))
    expect(page.locator("#answer")).to_be_hidden()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "phone"])
def test_the_filters_fit_and_are_photographed(site, pages, size, scheme):
    w = pages(size, scheme)
    page = w.page
    w.expect_console("status of 404")  # the filter that leaves nothing
    sign_in(site, page)
    page.get_by_label("Knowledge base").select_option("library")
    group = filters(page, "search")
    expect(group.get_by_role("combobox", name="Type").locator("option")).to_have_count(5)
    group.get_by_role("textbox", name="Source").fill("notes")
    group.get_by_role("combobox", name="Type").select_option("md")
    group.get_by_label("Modified since").fill("2023-01-01")
    search(page, "how many eggs does a queen lay")
    assert w.fits(), f"the filters are wider than the {size} viewport"
    w.shot(f"search-filters-{size}-{scheme}")
    group.get_by_role("textbox", name="Source").fill("attic")
    group.get_by_role("textbox", name="Source").press("Enter")
    expect(page.locator("#search-status")).to_have_class(re.compile("error"))
    assert w.fits()
    w.shot(f"search-filter-error-{size}-{scheme}")
    go(page, "ask")
    group = filters(page, "ask")
    group.get_by_role("textbox", name="Source").fill("manuals")
    group.get_by_role("combobox", name="Type").select_option("pdf")
    ask(page, "How do I keep a colony dry in winter?")
    assert w.fits()
    w.shot(f"ask-filters-{size}-{scheme}")


def test_upload_follows_its_job_to_the_end_and_documents_can_be_removed(site, pages, tmp_path):
    w = pages()
    page = w.page
    sign_in(site, page, token=site.tokens["writer"], fragment="documents")
    rows = page.locator("#documents tbody tr")
    expect(rows).to_have_count(SAMPLE_DOCS)
    assert re.search(r"\d+ chunks", page.locator("#documents-status").inner_text())
    note = tmp_path / "queen_rearing.md"
    note.write_text("# Queen rearing\n\nGraft larvae under a day old into cell cups; the cells are capped on day 5.\n")
    page.get_by_label("Upload", exact=True).set_input_files(note)
    expect(page.locator("#upload-status")).to_have_text(re.compile(r"Uploaded queen_rearing\.md: 1 added; \d+ chunks? added\."),
                                                       timeout=60_000)  # fmt: skip
    expect(rows).to_have_count(SAMPLE_DOCS + 1)
    w.shot("documents-uploaded")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    page.get_by_label("Upload", exact=True).set_input_files(broken)
    expect(page.locator("#upload-status")).to_have_text(
        re.compile(r"Uploaded broken\.pdf: 1 failed; 0 chunks added\."), timeout=60_000
    )
    expect(page.locator("#upload-status")).to_have_class(re.compile("error"))
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove queen_rearing.md").click()
    expect(page.locator("#documents-status")).to_have_text(re.compile(r"Removed queen_rearing\.md \(\d+ chunks?\)"))
    expect(rows).to_have_count(SAMPLE_DOCS)
    expect(page.get_by_role("heading", name="Documents")).to_be_focused()
    page.once("dialog", lambda d: d.dismiss())  # changing one's mind removes nothing
    page.get_by_role("button", name="Remove swarming.txt").click()
    expect(rows).to_have_count(SAMPLE_DOCS)
    page.get_by_label("Knowledge base").select_option("notes")
    expect(rows).to_have_count(1)


def test_jobs_show_state_progress_report_and_retry(site, pages):
    with httpx.Client(base_url=site.server.url, headers={"authorization": f"Bearer {site.tokens['writer']}"}) as http:
        job = http.post("/v1/ingest", files={"files": ("drones.md", b"# Drones\n\nDrones have no sting.\n")}).json()
        wait_for(lambda: http.get(f"/v1/jobs/{job['job_id']}").json()["state"] == "done", 60, "the upload's job")
    w = pages()
    page = w.page
    sign_in(site, page, token=site.tokens["writer"], fragment="jobs")
    item = page.locator(".job", has=page.locator("code", has_text=job["job_id"]))
    expect(item.locator(".badge")).to_have_text("done")
    summary = item.locator("summary")
    expect(summary).to_have_text(re.compile(r"Report: 1 added; \d+ chunks? added"))
    summary.focus()
    page.keyboard.press("Enter")
    expect(item.locator("dl")).to_contain_text("files seen")
    w.shot("jobs")
    item.get_by_role("button", name=f"Retry {job['job_id']}").click()
    expect(page.locator("#jobs-status")).to_have_text(f"{job['job_id']} is queued again.")
    expect(item.locator(".badge")).to_have_text("done", timeout=60_000)  # read again each second until it ends
    page.get_by_label("State").select_option("failed")
    expect(item).to_have_count(0)
    with httpx.Client(base_url=site.server.url, headers={"authorization": f"Bearer {ADMIN}"}) as http:
        assert http.get(f"/v1/jobs/{job['job_id']}").json()["runs"] == 2


def test_a_read_token_sees_no_control_it_may_not_use(site, pages):
    page = pages().page
    sign_in(site, page, token=site.tokens["reader"], fragment="documents")
    expect(page.locator("#documents tbody tr").first).to_be_visible()
    expect(page.locator("#upload-box")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    go(page, "jobs")
    expect(page.locator(".job").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)


def test_stats_draws_latency_requests_cache_usage_and_drift_over_time(site, pages):
    w = pages()
    page = w.page
    sign_in(site, page)
    page.get_by_role("link", name="Stats", exact=True).click()
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(7)
    expect(page.locator("#stats-status")).to_have_text(re.compile("the last 24 hours, in buckets of 15m"))
    labels = page.locator("figure.chart svg[role=img]").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))"
    )
    assert len(labels) == 7 and all(labels), labels
    for title in ("Ask latency", "Search latency", "Requests and errors", "Cache hits", "Tokens", "Cost",
                  "Drift: top-1 similarity"):  # fmt: skip
        chart = charts.filter(has=page.locator("figcaption", has_text=title)).first
        assert chart.locator("path.line").count() >= 1, title  # drawn from the seeded day
    drift = charts.filter(has_text="Drift").first
    expect(drift.locator(".ref text").first).to_have_text(re.compile(r"baseline 0\.\d\d"))
    figures = dict(
        zip(page.locator(".figure .label").all_inner_texts(), page.locator(".figure .value").all_inner_texts())
    )
    assert int(figures["Requests"].replace(",", "")) > 100 and figures["Cache hits"].endswith("%")
    w.shot("stats", full_page=True)
    page.get_by_label("Window").select_option("7d")
    expect(page.locator("#stats-status")).to_have_text(re.compile("the last 7 days, in buckets of 2h"))
    values = charts.first.locator("details")
    values.locator("summary").click()
    assert values.locator("tbody tr").count() in (84, 85)


def test_every_control_has_a_name_and_the_sections_are_reached_by_keyboard(site, pages):
    page = pages().page
    sign_in(site, page)
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_focused()  # where the token field was
    page.reload()
    expect(page.get_by_role("searchbox", name="Search")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Stats":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Stats", level=1)).to_be_focused()
    assert page.evaluate("location.hash") == "#stats"
    for view in VIEWS:
        go(page, view)
        if view == "search":
            search(page, "wax")
        if view == "ask":
            ask(page, "What is propolis?")
        page.wait_for_load_state("networkidle")
        tree = page.locator("body").aria_snapshot()
        unnamed = re.findall(
            r"^\s*- (button|link|textbox|searchbox|combobox|checkbox|img)(?: \[[^\]]*\])?:?$", tree, re.M
        )
        assert unnamed == [], (view, unnamed)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "phone"])
def test_every_view_fits_and_is_photographed(site, pages, size, scheme):
    w = pages(size, scheme)
    page = w.page
    sign_in(site, page)
    for view in VIEWS:
        go(page, view)
        if view == "search":
            search(page, "how many eggs does a queen lay")
        elif view == "ask":
            ask(page, "When should I treat varroa with oxalic acid?")
        elif view == "documents":
            expect(page.locator("#documents tbody tr").first).to_be_visible()
        elif view == "jobs":
            page.wait_for_load_state("networkidle")
        elif view == "stats":
            expect(page.locator("figure.chart svg").first).to_be_visible()
        assert w.fits(), f"{view} is wider than the {size} viewport"
        w.shot(f"{view}-{size}-{scheme}", full_page=view == "stats")
    go(page, "ask")
    page.locator("#citations a").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    w.shot(f"passage-{size}-{scheme}")


def test_an_open_server_asks_for_no_token_and_the_first_upload_makes_the_kb(tmp_path, pages):
    home = tmp_path / "home"
    server = Server(home, {"KB_MODEL": "hash"}, ["--worker"]).wait_ready()  # no tokens: loopback only
    try:
        w = pages("phone")
        page = w.page
        page.goto(f"{server.url}/ui/#stats")
        expect(page.locator("#stats-status")).to_have_text(re.compile("^No knowledge base yet: upload documents first"))
        go(page, "search")
        page.get_by_role("searchbox", name="Search").fill("anything")
        page.get_by_role("searchbox", name="Search").press("Enter")
        expect(page.locator("#search-status")).to_have_text(re.compile("^No knowledge base yet"))
        go(page, "documents")
        expect(page.locator("#documents-status")).to_have_text("No documents yet: upload some.")
        expect(page.get_by_label("Token", exact=True)).to_be_hidden()
        expect(page.get_by_role("button", name="Forget token")).to_be_hidden()
        expect(page.get_by_label("Knowledge base")).to_have_value("")  # none yet: the server's default
        first = tmp_path / "first.md"
        first.write_text("# First\n\nThe first note of an empty server.\n")
        page.get_by_label("Upload", exact=True).set_input_files(first)
        expect(page.locator("#upload-status")).to_have_text(re.compile(r"Uploaded first\.md: 1 added"), timeout=60_000)
        expect(page.get_by_label("Knowledge base")).to_have_value("default")
        expect(page.locator("#documents tbody tr")).to_have_count(1)
        assert w.fits()
        w.shot("open-server-first-upload")
        go(page, "stats")
        expect(page.locator("figure.chart")).to_have_count(7)
        go(page, "search")
        search(page, "first note")
        expect(page.locator("#search-results .file").first).to_have_text("first.md")
    finally:
        server.stop()
