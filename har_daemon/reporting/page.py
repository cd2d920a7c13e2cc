"""One self-contained HTML page from what `evaluate`, `train` and `cv` wrote.

The page is meant to be mailed, attached to a ticket or opened years later, so it makes no
request of any kind: every figure is an inline base64 PNG, the CSS is inline, there is no
script, and a Content-Security-Policy forbids anything else. Text taken from files is escaped
by the template engine (`reporting.render`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from har_daemon import __version__
from har_daemon.core.errors import HarError
from har_daemon.reporting import REPORT_FILE
from har_daemon.reporting.figures import (
    confusion_figure,
    curve_figures,
    data_uri,
    predictions_figure,
    strip_items,
)
from har_daemon.reporting.inputs import load_cv, load_evaluation, load_model, load_stream
from har_daemon.reporting.render import STREAM_PAGE, render_page, render_template
from har_daemon.reporting.view import (
    StreamView,
    confusion_rows,
    cv_view,
    model_card,
    page_titles,
    predictions_view,
    stream_view,
)

__all__ = ["build_report", "build_stream_report"]


def build_report(
    *,
    evaluation_dir: Path,
    out_path: Path,
    model_dir: Path | None = None,
    cv_json: Path | None = None,
    title: str | None = None,
    frames: bool = True,
    streams: Sequence[Path] = (),
) -> Path:
    """Write one self-contained HTML report and return its path.

    `frames=False` leaves out every picture of the evaluated clips (the strip and the
    predictions.png fallback): for a report that is published while the clips may not be.

    `evaluation_dir` is the `--report` folder of `har-daemon evaluate` (or a model directory,
    for its held-out test figures). `model_dir` defaults to the directory itself when it is a
    model directory, else to the model that `metrics.json` names if it still exists. Raises
    `DataError`/`ModelError` (one line) for missing or corrupt inputs, `HarError` if the page
    cannot be written.
    """
    ev = load_evaluation(Path(evaluation_dir))
    resolved, meta = load_model(model_dir, ev)
    cv = cv_view(load_cv(cv_json), Path(cv_json)) if cv_json is not None else None
    title, subtitle = page_titles(ev, meta, title)
    with tempfile.TemporaryDirectory(prefix="har-report-") as tmp:
        work = Path(tmp)
        curves = curve_figures(resolved, work) if resolved is not None else None
        cm_fig = confusion_figure(ev, title, work)
        strip = strip_items(ev, meta) if frames else []
    page = render_page(
        version=__version__,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        title=title,
        subtitle=subtitle,
        card=model_card(meta, resolved) if meta is not None and resolved is not None else None,
        m=ev.metrics,
        confusion=confusion_rows(ev.metrics),
        cm_fig=cm_fig,
        curves=curves,
        frames=frames,
        strip=strip,
        strip_fallback=(
            predictions_figure(ev) if frames and not any(it.uri for it in strip) else None
        ),
        predictions=predictions_view(ev),
        cv=cv,
        streams=[_stream(folder) for folder in streams],
    )
    return _write_atomic(Path(out_path), page)


def _stream(folder: Path) -> StreamView:
    doc, png = load_stream(folder)
    return stream_view(doc, data_uri(png) if png else None)


def build_stream_report(folder: Path, out_path: Path, title: str | None = None) -> Path:
    """A page of `evaluate-stream --report` results alone."""
    view = _stream(folder)
    page = render_template(
        STREAM_PAGE,
        version=__version__,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        title=title or f"Alerts on {view.name}",
        subtitle="event-level evaluation: the daemon's decision policy on an annotated recording",
        streams=[view],
    )
    return _write_atomic(Path(out_path), page)


def _write_atomic(out: Path, text: str) -> Path:
    """Write beside `out` and rename, so a reader never sees half a page."""
    if out.is_dir():
        raise HarError(
            f"{out} is a folder: give a file name for the report, e.g. {out / REPORT_FILE}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise HarError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return out
