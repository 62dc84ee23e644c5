"""Donations, refunds, campaigns and sync cursors (owned by the donations work, issue 4)."""

from __future__ import annotations

from datetime import datetime

from dispatch.models import CampaignProgress
from dispatch.store import Database


def donor_personas(
    db: Database, now: datetime, recent_days: int, lapsed_days: int
) -> dict[int, str]:
    """Persona (models.Persona value) of every subscriber who has ever given; others are non-donors.

    TEMPORARY: returns {} until the donations tables exist (issue 4 replaces this).
    """
    return {}


def active_campaign_progress(db: Database, now: datetime) -> CampaignProgress | None:
    """The campaign running at ``now`` with its progress, or None.

    TEMPORARY: returns None until the campaigns table exists (issue 4 replaces this).
    """
    return None
