"""Dispatch: a weekly email digest with per-recipient donation attribution."""

from __future__ import annotations

__version__ = "0.1.0"
