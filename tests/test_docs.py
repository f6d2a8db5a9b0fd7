"""The documentation site builds offline and shows its math without any network.

The site is built with ``mkdocs build --strict`` (proxies pointed at a closed port, so a
build step that reached for the network would fail). TeX is turned into MathML at build
time by ``docs/hooks/math.py``; these tests check that no raw TeX is left in the pages'
text, that the pages with math carry ``<math>`` elements, and that no page loads a script,
stylesheet, font or image from another host. Where Debian's Chromium is installed, one
page is also opened in it, with every non-local request refused, to see the math laid out.
"""

import os
import pathlib
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = pathlib.Path("/usr/bin/chromium")

# Raw TeX that would mean a formula was not converted: display delimiters, \( \) \[ \],
# a TeX command such as \frac or \lambda, or a $...$ pair on one line.
RAW_TEX = re.compile(r"\$\$|\\[()\[\]]|\\[A-Za-z]+|\$(?=\S)[^$\n]*?(?<=\S)\$")
# Elements whose text is code, not prose.
CODE_TAGS = {"code", "pre", "script", "style", "kbd", "samp"}
EXTERNAL = re.compile(r"^(?:https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, connections fail
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = closed
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    env["NO_MKDOCS_2_WARNING"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _pages(site):
    pages = sorted(site.rglob("*.html"))
    assert pages, "the build wrote no pages"
    return pages


def _page_for(source: pathlib.Path, site: pathlib.Path) -> pathlib.Path:
    rel = source.relative_to(DOCS).with_suffix("")
    if rel.name == "index":
        return site / rel.parent / "index.html"
    return site / rel / "index.html"


def _has_math(markdown: str) -> bool:
    """Whether a page's Markdown holds $...$ or $$...$$ outside code."""
    text = re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)
    text = re.sub(r"(`+).+?\1", "", text, flags=re.S)
    return "$" in text


class _Page(HTMLParser):
    """A page's prose text (outside code) and the resources it loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text = []
        self.resources = []
        self._code = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in CODE_TAGS:
            self._code += 1
        if tag == "link":
            self.resources.append((f"link rel={attrs.get('rel')}", attrs.get("href")))
        elif tag in {"script", "img", "iframe", "source", "audio", "video", "embed", "track"}:
            self.resources.append((tag, attrs.get("src")))
        elif tag == "object":
            self.resources.append((tag, attrs.get("data")))

    def handle_endtag(self, tag):
        if tag in CODE_TAGS and self._code:
            self._code -= 1

    def handle_data(self, data):
        if not self._code:
            self.text.append(data)


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def test_math_is_mathml_and_no_raw_tex_remains(site):
    for path in _pages(site):
        text = "".join(_parse(path).text)
        leftover = [m.group(0) for m in RAW_TEX.finditer(text)]
        assert not leftover, f"{path.relative_to(site)}: raw TeX in the text: {leftover[:5]}"

        html = path.read_text(encoding="utf-8")
        wrappers = re.findall(r'class="arithmatex">(.{0,5})', html)
        assert all(w.startswith("<math") for w in wrappers), path.relative_to(site)

    with_math = [p for p in sorted(DOCS.rglob("*.md")) if _has_math(p.read_text("utf-8"))]
    assert DOCS / "method.md" in with_math
    for source in with_math:
        html = _page_for(source, site).read_text(encoding="utf-8")
        assert "<math" in html, f"{source.relative_to(DOCS)} has math but its page has none"


def test_no_page_loads_anything_from_another_host(site):
    for path in _pages(site):
        external = [(k, url) for k, url in _parse(path).resources if url and EXTERNAL.match(url)]
        assert not external, f"{path.relative_to(site)} loads {external}"
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        urls = re.findall(r"""@import\s+["']([^"']+)|url\(\s*["']?([^"')\s]+)""", text)
        external = [u for pair in urls for u in pair if u and EXTERNAL.match(u)]
        assert not external, f"{css.relative_to(site)} loads {external}"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_math_is_laid_out_in_chromium_offline(site):
    from playwright.sync_api import sync_playwright

    page_path = site / "method" / "index.html"
    expected = page_path.read_text(encoding="utf-8").count("<math")
    outside = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()

            def only_local(route):
                url = route.request.url
                if url.startswith(("file:", "data:", "blob:", "about:")):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(page_path.as_uri(), wait_until="load")
            boxes = page.eval_on_selector_all(
                "math",
                "els => els.map(e => { const r = e.getBoundingClientRect();"
                " return [r.width, r.height, e.getAttribute('display')]; })",
            )
            # A fraction is stacked only where the browser lays out MathML; as plain inline
            # text its numerator would sit beside the denominator, not above it.
            fraction = page.evaluate(
                "() => { const f = document.querySelector('math mfrac'); if (!f) return null;"
                " const [n, d] = [...f.children].map(c => c.getBoundingClientRect());"
                " return [n.bottom, d.top, n.left < d.right && d.left < n.right]; }"
            )
        finally:
            browser.close()

    assert not outside, f"the page asked for {outside}"
    assert expected and len(boxes) == expected, boxes
    assert all(w > 0 and h > 0 for w, h, _ in boxes), boxes
    assert any(display == "block" for _, _, display in boxes)
    assert fraction is not None, "no <mfrac> on the page"
    numerator_bottom, denominator_top, overlap = fraction
    assert numerator_bottom <= denominator_top + 1 and overlap, fraction
