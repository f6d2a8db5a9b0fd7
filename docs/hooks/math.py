"""MkDocs hook: TeX to MathML at build time, so the pages need no script to show math.

``pymdownx.arithmatex`` (``generic: true``) turns ``$...$`` into
``<span class="arithmatex">\\(...\\)</span>`` and ``$$...$$`` into
``<div class="arithmatex">\\[...\\]</div>``, leaving code alone. This hook replaces the
TeX inside those elements with MathML from ``latex2mathml``, which browsers render
natively, so math shows offline without MathJax or KaTeX. The wrappers are kept: the
theme styles ``div.arithmatex`` (centred, scrolls when too wide).

A formula the converter cannot parse, or one that still holds a backslash command
afterwards (an unknown command is passed through as text), is logged as a warning,
which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.hooks.math")

_ELEMENT = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">(?P<tex>.*?)</(?P=tag)>',
    re.DOTALL,
)
_DELIMITED = re.compile(r"\A\s*\\[(\[](?P<body>.*)\\[)\]]\s*\Z", re.DOTALL)
# In MathML text a backslash can only come from a TeX command the converter did not know.
_LEFTOVER = re.compile(r">[^<]*\\[^<]*<")


def _to_mathml(tex: str, display: str, page: str) -> str | None:
    try:
        mathml = convert(tex, display=display)
    except Exception as err:  # the converter raises several bare error types
        name = type(err).__name__
        log.warning("%s: cannot convert TeX %r to MathML: %s: %s", page, tex, name, err)
        return None
    if _LEFTOVER.search(mathml):
        log.warning("%s: TeX %r has a command the MathML converter does not know", page, tex)
        return None
    return mathml


def on_page_content(html_text: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        tag = match["tag"]
        source = html.unescape(match["tex"])
        delimited = _DELIMITED.match(source)
        tex = delimited["body"] if delimited else source
        display = "block" if tag == "div" else "inline"
        mathml = _to_mathml(tex.strip(), display, page.file.src_uri)
        if mathml is None:
            return match[0]
        return f'<{tag} class="arithmatex">{mathml}</{tag}>'

    return _ELEMENT.sub(replace, html_text)
