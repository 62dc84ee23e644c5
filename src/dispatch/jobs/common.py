"""Pieces several use cases share: the renderer and outlet built from settings."""

from __future__ import annotations

from dispatch.config import Settings, check_payment_link_shape, default_templates_dir
from dispatch.render.templates import AppealCopy, Links, Outlet, Renderer
from dispatch.store import Database
from dispatch.store import donations as donation_store


def outlet_from(settings: Settings) -> Outlet:
    return Outlet(
        name=settings.outlet_name,
        url=settings.public_url.rstrip("/"),
        postal_address=settings.postal_address,
        lang=settings.language,
    )


def renderer_from(settings: Settings) -> Renderer:
    return Renderer(
        settings.resolved_templates_dir(),
        outlet_from(settings),
        defaults_dir=default_templates_dir(),
        appeal=AppealCopy(
            settings.appeal_headline, settings.appeal_text, settings.appeal_button
        ),
    )


def archive_url(settings: Settings, issue_id: str) -> str:
    """The public "view in browser" page of an issue, when the web service is configured."""
    base = settings.public_url.rstrip("/")
    return f"{base}/archive/{issue_id}" if base else ""


def send_links(settings: Settings, issue_id: str) -> Links:
    """Links for the variants the send fills in: personal parts stay placeholders."""
    return Links(archive=archive_url(settings, issue_id))


def donation_link_base(db: Database, settings: Settings) -> str:
    """The Payment Link URL personal donation links start from: the setting wins, else the
    link stored by `dispatch donations setup`; '' when neither exists."""
    value = settings.payment_link.strip()
    if value:
        return check_payment_link_shape(value)
    row = donation_store.main_payment_link(db)
    return str(row["url"]) if row is not None else ""
