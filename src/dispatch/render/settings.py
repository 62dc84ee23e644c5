"""The renderer, the outlet and the links of a send, built from settings (the Payment Link's
URL is dispatch.donations.donation_link_base, the relay mailer.relay_from_settings)."""

from __future__ import annotations

from dispatch.config import Settings, default_templates_dir
from dispatch.render.templates import AppealCopy, Links, Outlet, Renderer


def outlet_from(settings: Settings) -> Outlet:
    return Outlet(
        name=settings.outlet_name,
        url=settings.public_url.rstrip("/"),
        postal_address=settings.postal_address,
        lang=settings.language,
        monthly=bool(
            settings.public_url.strip()
            and settings.donation_amounts.strip()
            and settings.stripe_secret_key
        ),
    )


def renderer_from(settings: Settings) -> Renderer:
    return Renderer(
        settings.resolved_templates_dir(),
        outlet_from(settings),
        defaults_dir=default_templates_dir(),
        appeal=AppealCopy(settings.appeal_headline, settings.appeal_text, settings.appeal_button),
        languages=settings.languages,
        locale_dir=settings.locale_dir,
    )


def archive_url(settings: Settings, issue_id: str) -> str:
    """The public "view in browser" page of an issue, when the web service is configured."""
    base = settings.public_url.rstrip("/")
    return f"{base}/archive/{issue_id}" if base else ""


def send_links(settings: Settings, issue_id: str) -> Links:
    """Links for the variants the send fills in: personal parts stay placeholders."""
    return Links(archive=archive_url(settings, issue_id))
