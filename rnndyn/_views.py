"""Rich views drawn by a higher layer for a record of a lower one.

``Analysis`` (layer ``analysis``) shows in a notebook a view that ``rnndyn.report`` draws
(a higher layer: figures, the report's tables). The record may not import the report, so
the package's ``__init__`` (the top layer, which may import every layer) registers the
view here by the record's name, and the record's ``_repr_html_`` looks it up. This module
imports nothing, so the registration costs ``import rnndyn`` nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["html_view", "register_html"]

_HTML: dict[str, Callable[[Any], str]] = {}


def register_html(name: str, view: Callable[[Any], str]) -> None:
    """Use ``view(record) -> str`` (an HTML fragment) as the notebook view of ``name``."""
    _HTML[name] = view


def html_view(name: str) -> Callable[[Any], str] | None:
    """The view registered for ``name``, else ``None``."""
    return _HTML.get(name)
