"""Settings: read once at the entry point from the environment and `.env`, then passed down.

The real environment beats `.env` (python-dotenv's values fill only what is unset). Nothing
else in Dispatch reads ``os.environ``. Secrets are wrapped in :class:`Secret` so that a
settings object can be printed or logged without leaking them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from dispatch.errors import ConfigError, InputError
from dispatch.money import parse_language
from dispatch.store.target import PostgresURL, is_postgres_url, redact_url

#: The repository's templates/ folder, for an editable install made before setup.py mapped it
#: into the package (see default_templates_dir).
_REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


#: DISPATCH_SECRET_KEY signs forms and Message-IDs: a short one could be guessed.
MIN_SECRET_KEY_LENGTH = 24


class Secret:
    """A string that never shows itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _split_list(value: str) -> tuple[str, ...]:
    """Split a list setting on commas and line breaks (URLs and paths contain neither)."""
    parts = value.replace("\n", ",").split(",")
    return tuple(p.strip() for p in parts if p.strip())


def _to_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _to_int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def _to_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{name} must not be negative")
    return number


#: DISPATCH_SEND_LEASE's least value in seconds (its lease is renewed every second).
MIN_SEND_LEASE = 3.0

#: DISPATCH_GREETING: greet by first name (else the full name), by full name, or nobody by name.
GREETINGS = ("first", "full", "none")


@dataclass(frozen=True)
class Settings:
    """Every setting Dispatch reads; `.env.example` documents each one (env name in metadata)."""

    db_path: Path | PostgresURL = field(
        default=Path("dispatch.sqlite3"), metadata={"env": "DISPATCH_DB"}
    )
    journal_dir: Path | None = field(default=None, metadata={"env": "DISPATCH_JOURNAL_DIR"})
    send_lease: float = field(default=30.0, metadata={"env": "DISPATCH_SEND_LEASE"})
    from_address: str = field(default="", metadata={"env": "DISPATCH_FROM"})
    reply_to: str = field(default="", metadata={"env": "DISPATCH_REPLY_TO"})
    outlet_name: str = field(default="Our newsroom", metadata={"env": "DISPATCH_OUTLET_NAME"})
    greeting: str = field(default="first", metadata={"env": "DISPATCH_GREETING"})
    postal_address: str = field(default="", metadata={"env": "DISPATCH_POSTAL_ADDRESS"})
    list_id: str = field(default="", metadata={"env": "DISPATCH_LIST_ID"})
    smtp_url: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "DISPATCH_SMTP_URL"}
    )
    smtp_concurrency: int = field(default=4, metadata={"env": "DISPATCH_SMTP_CONCURRENCY"})
    smtp_rate: float = field(default=0.0, metadata={"env": "DISPATCH_SMTP_RATE"})
    smtp_rate_per_connection: float = field(
        default=0.0, metadata={"env": "DISPATCH_SMTP_RATE_PER_CONNECTION"}
    )
    smtp_timeout: float = field(default=30.0, metadata={"env": "DISPATCH_SMTP_TIMEOUT"})
    public_url: str = field(default="", metadata={"env": "DISPATCH_PUBLIC_URL"})
    unsubscribe_mailto: str = field(default="", metadata={"env": "DISPATCH_UNSUBSCRIBE_MAILTO"})
    secret_key: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "DISPATCH_SECRET_KEY"}
    )
    confirm_hours: int = field(default=48, metadata={"env": "DISPATCH_CONFIRM_HOURS"})
    web_proxies: int = field(default=0, metadata={"env": "DISPATCH_WEB_PROXIES"})
    signup_mails_per_hour: int = field(
        default=50, metadata={"env": "DISPATCH_SIGNUP_MAILS_PER_HOUR"}
    )
    sources: tuple[str, ...] = field(default=(), metadata={"env": "DISPATCH_SOURCES"})
    templates_dir: Path | None = field(default=None, metadata={"env": "DISPATCH_TEMPLATES"})
    window_days: int = field(default=7, metadata={"env": "DISPATCH_WINDOW_DAYS"})
    excerpt_words: int = field(default=60, metadata={"env": "DISPATCH_EXCERPT_WORDS"})
    max_articles: int = field(default=30, metadata={"env": "DISPATCH_MAX_ARTICLES"})
    boilerplate_patterns: tuple[str, ...] = field(
        default=(), metadata={"env": "DISPATCH_BOILERPLATE_PATTERNS", "split": "lines"}
    )
    feed_timeout: float = field(default=20.0, metadata={"env": "DISPATCH_FEED_TIMEOUT"})
    prefill_email: bool = field(default=True, metadata={"env": "DISPATCH_PREFILL_EMAIL"})
    prefill_email_in_link: bool = field(
        default=False, metadata={"env": "DISPATCH_PREFILL_EMAIL_IN_LINK"}
    )
    appeal_headline: str = field(
        default="Support our reporting", metadata={"env": "DISPATCH_APPEAL_HEADLINE"}
    )
    appeal_text: str = field(
        default=(
            "If this newsletter is useful to you, please consider a gift. Every contribution,"
            " large or small, helps pay for the reporting in it."
        ),
        metadata={"env": "DISPATCH_APPEAL_TEXT"},
    )
    appeal_button: str = field(default="Donate now", metadata={"env": "DISPATCH_APPEAL_BUTTON"})
    donor_recent_days: int = field(default=30, metadata={"env": "DISPATCH_DONOR_RECENT_DAYS"})
    donor_lapsed_days: int = field(default=365, metadata={"env": "DISPATCH_DONOR_LAPSED_DAYS"})
    dkim_domain: str = field(default="", metadata={"env": "DISPATCH_DKIM_DOMAIN"})
    dkim_selector: str = field(default="", metadata={"env": "DISPATCH_DKIM_SELECTOR"})
    dkim_key_file: Path | None = field(default=None, metadata={"env": "DISPATCH_DKIM_KEY_FILE"})
    bounce_mailbox: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "DISPATCH_BOUNCE_MAILBOX"}
    )
    soft_bounce_limit: int = field(default=3, metadata={"env": "DISPATCH_SOFT_BOUNCE_LIMIT"})
    stripe_secret_key: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "STRIPE_SECRET_KEY"}
    )
    payment_link: str = field(default="", metadata={"env": "DISPATCH_PAYMENT_LINK"})
    stripe_webhook_secret: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "STRIPE_WEBHOOK_SECRET"}
    )
    stripe_api_base: str = field(default="", metadata={"env": "STRIPE_API_BASE"})
    stripe_max_retries: int = field(default=2, metadata={"env": "STRIPE_MAX_NETWORK_RETRIES"})
    currency: str = field(default="usd", metadata={"env": "DISPATCH_CURRENCY"})
    donation_amounts: str = field(default="", metadata={"env": "DISPATCH_DONATION_AMOUNTS"})
    donation_min: str = field(default="1", metadata={"env": "DISPATCH_DONATION_MIN"})
    donation_max: str = field(default="10000", metadata={"env": "DISPATCH_DONATION_MAX"})
    language: str = field(default="en", metadata={"env": "DISPATCH_LANGUAGE"})
    languages: tuple[str, ...] = field(default=(), metadata={"env": "DISPATCH_LANGUAGES"})
    locale_dir: Path | None = field(default=None, metadata={"env": "DISPATCH_LOCALE_DIR"})
    donation_product: str = field(default="", metadata={"env": "DISPATCH_DONATION_PRODUCT"})
    dns_servers: tuple[str, ...] = field(default=(), metadata={"env": "DISPATCH_DNS_SERVERS"})
    relay_dkim_selector: str = field(default="", metadata={"env": "DISPATCH_RELAY_DKIM_SELECTOR"})

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from a plain mapping of environment-style names to strings."""
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if name == "DISPATCH_DB":
                values[f.name] = database_target(raw)
            elif kind == "Secret":
                values[f.name] = Secret(raw)
            elif kind in ("Path", "Path | None"):
                values[f.name] = Path(raw).expanduser()
            elif kind == "int":
                values[f.name] = _to_int(name, raw)
            elif kind == "float":
                values[f.name] = _to_float(name, raw)
            elif kind == "bool":
                values[f.name] = _to_bool(name, raw)
            elif kind == "tuple[str, ...]" and f.metadata.get("split") == "lines":
                values[f.name] = tuple(p.strip() for p in raw.splitlines() if p.strip())
            elif kind == "tuple[str, ...]":
                values[f.name] = _split_list(raw)
            else:
                values[f.name] = raw
        secret = values.get("secret_key")
        if isinstance(secret, Secret) and len(secret.reveal()) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"DISPATCH_SECRET_KEY is too short to be secret "
                f"(fewer than {MIN_SECRET_KEY_LENGTH} characters)",
                'Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
        if "smtp_concurrency" in values and values["smtp_concurrency"] == 0:
            raise ConfigError("DISPATCH_SMTP_CONCURRENCY must be at least 1")
        if "greeting" in values and values["greeting"] not in GREETINGS:
            raise ConfigError(
                f"DISPATCH_GREETING is {values['greeting']!r}", "Set it to first, full or none."
            )
        if "send_lease" in values and float(values["send_lease"]) < MIN_SEND_LEASE:  # type: ignore[arg-type]
            raise ConfigError(
                f"DISPATCH_SEND_LEASE must be at least {MIN_SEND_LEASE:.0f} seconds, not "
                f"{values['send_lease']}",
                "It is renewed every second; 30 (the default) suits most networks.",
            )
        if "max_articles" in values and values["max_articles"] == 0:
            raise ConfigError("DISPATCH_MAX_ARTICLES must be at least 1")
        if "language" in values:
            try:
                parse_language(str(values["language"]))
            except InputError as exc:
                raise ConfigError(
                    f"DISPATCH_LANGUAGE is {values['language']!r}, not a language Dispatch knows",
                    "Set it to a BCP 47 tag such as en, de or pt-BR in .env.",
                ) from exc
        for tag in values.get("languages", ()):  # type: ignore[attr-defined]
            try:
                parse_language(str(tag))
            except InputError as exc:
                raise ConfigError(
                    f"DISPATCH_LANGUAGES lists {tag!r}, not a language Dispatch knows",
                    "List BCP 47 tags separated by commas, such as en,de,fr.",
                ) from exc
        return cls(**values)  # type: ignore[arg-type]

    # -- checked access -----------------------------------------------------------------

    def require(self, attr: str) -> str:
        """Return a setting that a command cannot do without, or say which variable to set."""
        value = getattr(self, attr)
        if isinstance(value, Secret):
            value = value.reveal()
        if not value:
            env = env_name(attr)
            raise ConfigError(
                f"{env} is not set",
                f"Set {env} in the environment or in the .env file next to where you run "
                "dispatch (see .env.example for what it means).",
            )
        return str(value)

    def resolved_templates_dir(self) -> Path:
        """The outlet's own templates folder if set, else the bundled defaults."""
        if self.templates_dir is not None:
            if not self.templates_dir.is_dir():
                raise ConfigError(
                    f"DISPATCH_TEMPLATES points to {self.templates_dir}, which is not a folder",
                    "Point DISPATCH_TEMPLATES at a folder of templates, or unset it.",
                )
            return self.templates_dir
        return default_templates_dir()


def default_templates_dir() -> Path:
    """The bundled templates, package data read through importlib.resources: the package
    ``dispatch.templates``, which setup.py maps onto the top-level templates/ folder (so an
    installed wheel carries them, and an editable install reads the folder itself)."""
    try:
        return Path(str(resources.files("dispatch.templates")))
    except ModuleNotFoundError:  # an older editable install: the checkout's folder
        return _REPO_TEMPLATES


def database_target(value: str) -> Path | PostgresURL:
    """DISPATCH_DB: a ``postgresql://`` URL (PostgreSQL), else a SQLite file (sqlite_path)."""
    if value.lower().startswith(("postgresql:", "postgres:")):
        parts = urlsplit(value)
        if not is_postgres_url(value) or not (parts.path.strip("/") or "service=" in parts.query):
            raise ConfigError(
                f"DISPATCH_DB is {redact_url(value)!r}, which does not name a PostgreSQL database",
                "Write it as postgresql://user@host:5432/dbname (the password from PGPASSWORD "
                "or a libpq service/password file rather than the URL).",
            )
        return PostgresURL.parse(value)
    return sqlite_path(value)


def sqlite_path(value: str) -> Path:
    """DISPATCH_DB as a path or a SQLAlchemy-style URL: ``sqlite:///relative.db`` or
    ``sqlite:////absolute/path.db`` (three slashes, then the path)."""
    if not value.lower().startswith("sqlite:"):
        return Path(value).expanduser()
    rest = value[len("sqlite:") :]
    if not rest.startswith("///") or not rest[3:] or "?" in rest or rest[3:] == ":memory:":
        raise ConfigError(
            f"DISPATCH_DB is {value!r}, which does not name a database file",
            "Write it as a path, sqlite:///relative/dispatch.sqlite3 or "
            "sqlite:////absolute/dispatch.sqlite3 (in .env or the environment).",
        )
    return Path(unquote(rest[3:])).expanduser()


def check_payment_link_shape(url: str) -> str:
    """The Payment Link URL without query, or ConfigError: it must be an absolute https URL,
    since a relative or bare-id link goes to every reader as a broken Donate button."""
    value = url.strip()
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.scheme != "https" or "." not in host or any(c.isspace() for c in value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ConfigError(
            f"DISPATCH_PAYMENT_LINK is {shown!r}, not an absolute https:// address of a "
            "Stripe Payment Link",
            "Set it to https://donate.stripe.com/... (or https://buy.stripe.com/..., the link's "
            "URL from Dashboard → Payment Links) in .env, or unset it and run "
            "`dispatch donations setup`.",
        )
    return value.split("?", 1)[0].split("#", 1)[0].rstrip("/")


def env_name(attr: str) -> str:
    for f in fields(Settings):
        if f.name == attr:
            return str(f.metadata["env"])
    raise KeyError(attr)


def all_env_names() -> list[str]:
    return [str(f.metadata["env"]) for f in fields(Settings)]


def _check_dotenv_syntax(path: Path) -> None:
    """python-dotenv skips a line it can't parse with only a warning; a skipped DISPATCH_DB
    would quietly open a new, empty database. Refuse instead, naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the settings file {path}: {exc}") from exc
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            name = binding.original.string.split("=", 1)[0].strip()[:40]  # never the value
            raise ConfigError(
                f"Line {binding.original.line} of {path} (starting {name!r}) is not a setting",
                'Write it as NAME=value (quote values with spaces: NAME="a b"); close any quote.',
            )


def load_settings(
    env_file: Path | None = None,
    use_dotenv: bool = True,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Merge `.env` (if used) under the real environment, then apply explicit overrides.

    ``environ`` defaults to ``os.environ``; this is the one place that reads it.
    """
    return Settings.from_mapping(_merged_environment(env_file, use_dotenv, environ, overrides))


def load_settings_leniently(
    env_file: Path | None = None,
    use_dotenv: bool = True,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, dict[str, ConfigError]]:
    """Settings with every malformed variable left at its default, and what was wrong with each
    (keyed by variable name; ".env" for an unreadable settings file): `dispatch doctor` reports
    a bad setting as a failed check instead of stopping at the first one."""
    problems: dict[str, ConfigError] = {}
    try:
        merged = _merged_environment(env_file, use_dotenv, environ, None)
    except ConfigError as exc:
        problems[".env"] = exc
        merged = _merged_environment(None, False, environ, None)
    known = set(all_env_names())
    values = {k: v for k, v in merged.items() if k in known}
    while True:  # each error names its variable: set that one aside and try again
        try:
            return Settings.from_mapping(values), problems
        except ConfigError as exc:
            named = [n for n in sorted(values, key=len, reverse=True) if n in exc.message]
            if not named:  # find the culprit by trying each variable on its own
                named = [n for n in sorted(values) if not _parses({n: values[n]})][:1]
            if not named:
                problems["settings"] = exc
                return Settings(), problems
            problems[named[0]] = exc
            del values[named[0]]


def _parses(env: Mapping[str, str]) -> bool:
    try:
        Settings.from_mapping(env)
    except ConfigError:
        return False
    return True


def _merged_environment(
    env_file: Path | None,
    use_dotenv: bool,
    environ: Mapping[str, str] | None,
    overrides: Mapping[str, str] | None,
) -> dict[str, str]:
    merged: dict[str, str] = {}
    if use_dotenv:
        path = env_file if env_file is not None else Path.cwd() / ".env"
        if env_file is not None and not path.is_file():
            raise ConfigError(
                f"The settings file {path} does not exist", "Check the --env-file path."
            )
        if path.is_file():
            _check_dotenv_syntax(path)
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    if overrides:
        merged.update(overrides)
    return merged
