"""The built documentation site (`make docs`): no broken link, the API page lists StableResNet's
parameters, every gallery page shows its figures, in real headless Chromium.

The site is built by `make docs`, not by this suite (the gallery runs for minutes). Without a build
these tests skip, except where STABLERESNET_REQUIRE_DOCS=1 (.ci/run sets it after `make docs`): there
a missing build fails.
"""

import inspect
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from stableresnet import StableResNet

SITE = Path(__file__).resolve().parent.parent / "docs" / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if not (SITE / "index.html").exists():
    if os.environ.get("STABLERESNET_REQUIRE_DOCS") == "1":
        raise RuntimeError(f"STABLERESNET_REQUIRE_DOCS=1 but {SITE}/index.html is missing: run `make docs` first")
    pytest.skip("the docs are not built (make docs)", allow_module_level=True)


class Links(HTMLParser):
    """Every href/src of a page and every id it defines."""

    def __init__(self):
        super().__init__()
        self.targets, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                self.targets.append(attrs[name])


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_no_page_has_a_broken_link():
    # _static holds the theme's own files (Jinja templates among them), not pages of the site.
    pages = sorted(page for page in SITE.rglob("*.html") if "_static" not in page.relative_to(SITE).parts)
    parsed = {page: parse(page) for page in pages}
    broken = []
    for page, links in parsed.items():
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme or target.startswith(("//", "mailto:", "javascript:")):
                continue  # the outside world is not this site's to check
            path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(SITE)} → {target}")
            elif parts.fragment and path.suffix == ".html":
                ids = parsed[path].ids if path in parsed else parse(path).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(SITE)} → {target} (no such anchor)")
    assert len(pages) > 30, f"only {len(pages)} pages built"
    assert not broken, "\n".join(broken[:40])


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (the [dev] extra)")
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium); CI installs it")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def open_page(browser, problems):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # Only files of the site may load: the site must work offline (MathJax ships in _static).
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"failed to load {request.url}"))
    return page


def test_the_api_page_of_stableresnet_lists_its_parameters(browser):
    problems = []
    page = open_page(browser, problems)
    page.goto((SITE / "index.html").as_uri())
    page.get_by_role("link", name="API reference").first.click()
    page.get_by_role("link", name="stableresnet.model.StableResNet").first.click()
    page.wait_for_load_state("load")
    assert "stableresnet.model" in page.url, page.url
    parameters = page.locator("dl.py.class:has(> dt[id='stableresnet.model.StableResNet'])").inner_text()
    expected = [name for name in inspect.signature(StableResNet).parameters]
    missing = [name for name in expected if name not in parameters]
    assert not missing, f"the API page of StableResNet lacks {missing}"
    assert not problems, problems


def test_every_gallery_page_shows_its_figures(browser):
    problems = []
    page = open_page(browser, problems)
    page.goto((SITE / "auto_examples" / "index.html").as_uri())
    examples = page.eval_on_selector_all("div.sphx-glr-thumbcontainer a", "links => links.map(a => a.href)")
    assert 6 <= len(set(examples)) <= 10, examples
    for url in sorted(set(examples)):
        page.goto(url)
        page.wait_for_load_state("load")
        figures = page.eval_on_selector_all(
            "img.sphx-glr-single-img, img.sphx-glr-multi-img",
            "images => images.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert figures, f"{url} shows no figure"
        assert all(loaded for _, loaded in figures), f"{url}: figures that did not load: {figures}"
    assert not problems, problems
