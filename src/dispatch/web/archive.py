"""The public archive: ``/archive/`` lists the digests that went out, ``/archive/<issue>`` shows
one as its email looked, with nothing personal in it (see jobs.archive.archive_page)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, url_for

from dispatch.jobs import archive as jobs
from dispatch.web.app_support import page, state

bp = Blueprint("archive", __name__)
CACHE = "public, max-age=300"


@bp.get("/archive/")
def listing() -> Response:
    issues = jobs.archive_listing(state().db())
    entries = [
        {
            "id": i.id,
            "subject": i.subject,
            "preheader": i.preheader,
            "sent_at": i.sent_at,
            "url": url_for("archive.issue", issue_id=i.id),
        }
        for i in issues
    ]
    response = page("archive", issues=entries, subscribe_url=url_for("signup.subscribe_get"))
    response.headers["Cache-Control"] = CACHE
    return response


@bp.get("/archive/<issue_id>")
def issue(issue_id: str) -> Response:
    web = state()
    html = jobs.archive_page(
        web.db(),
        web.settings,
        issue_id,
        subscribe_url=_absolute("signup.subscribe_get"),
        lang=request.args.get("lang", "")[:35],
    )
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = CACHE
    return response


def _absolute(endpoint: str) -> str:
    base = state().settings.public_url.rstrip("/")
    return base + url_for(endpoint) if base else url_for(endpoint)
