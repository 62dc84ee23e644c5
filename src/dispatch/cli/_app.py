"""What every command shares: the lazily loaded settings, the store, and output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dispatch.config import Settings, load_settings
from dispatch.store import Database, open_db


@dataclass
class App:
    """Per-invocation state, stored as click's ``ctx.obj``."""

    env_file: Path | None = None
    use_dotenv: bool = True
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(env_file=self.env_file, use_dotenv=self.use_dotenv)
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value

    def db(self, *, create: bool = False) -> Database:
        """The store named by DISPATCH_DB, opened and migrated once per invocation. Only the
        commands that start an outlet (build, subscribers import) pass ``create=True``: any
        other refuses a missing database rather than work on a stray empty one."""
        if self._db is None:
            self._db = open_db(self.settings.db_path, create=create)
            self._db.journal_dir = self.settings.journal_dir
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


pass_app = click.make_pass_decorator(App)


def echo_json(data: Any) -> None:
    """Machine output: one JSON document on stdout, keys in a stable order."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def is_tty() -> bool:
    return sys.stdout.isatty()
