"""The report page from its jinja2 templates (``reporting/templates``), autoescaped.

Every value a template prints is escaped by the engine, so names, paths and provenance taken
from files (model and class names, clip paths) can never add markup to the page. Undefined
names fail loudly instead of printing nothing.
"""

from __future__ import annotations

from typing import Any

import jinja2

from har_daemon.reporting.view import Num

__all__ = ["PAGE_TEMPLATE", "STREAM_PAGE", "render_page", "render_template"]

PAGE_TEMPLATE = "report.html.j2"
STREAM_PAGE = "stream_page.html.j2"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("har_daemon.reporting", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.globals["Num"] = Num


def render_template(name: str, **context: Any) -> str:
    """A whole page; `context` holds what the template and its partials name."""
    return _ENV.get_template(name).render(**context)


def render_page(**context: Any) -> str:
    """The evaluation report (`report.html.j2`)."""
    return render_template(PAGE_TEMPLATE, **context)
