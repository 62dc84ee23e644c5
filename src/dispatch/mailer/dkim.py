"""DKIM signing of finished message bytes (RFC 6376), relaxed/relaxed, with OpenSSL's speed.

dkimpy signs RSA in pure Python (11-13 ms for a 2048-bit key, more than building the message);
here the canonicalisation and body hash are done directly on the bytes and the signature comes
from the ``cryptography`` package (OpenSSL), about 1 ms per message. ``rsa-sha256``
(PKCS#1 v1.5) is the default; ``ed25519-sha256`` (RFC 8463) is available for receivers that
check it (publish an RSA key too: many still do not). dkimpy's verifier checks these signatures
in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from dispatch.config import Settings
from dispatch.errors import ConfigError

#: Headers signed when present. From, To and Subject are also "oversigned" (listed once more
#: than they occur) so that nobody can add a second copy without breaking the signature.
DEFAULT_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "in-reply-to",
    "references",
)
OVERSIGNED = ("from", "to", "subject")

_WSP_RUN = re.compile(rb"[ \t]+")
_SPACE_RUN = re.compile(rb"  +")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9-]{2,63}$"
)


def to_crlf(message: bytes) -> bytes:
    """Line endings as SMTP sends them: every bare LF becomes CRLF."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message  # the usual case, checked at C speed
    return _BARE_LF.sub(b"\r\n", message)


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(header fields as (name, raw value incl. folding), body) of a CRLF message."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        if message.startswith(b"\r\n"):  # no headers at all
            head, body = b"", message[2:]
        else:
            head, body = message.rstrip(b"\r\n"), b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n") if head else []:
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            continue  # not a header field (a stray line); nothing to sign
        fields.append((name, value))
    return fields, body


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfold, compress whitespace, trim; ``name:value``."""
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.strip(b" \t").lower() + b":" + value


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: whitespace at line ends removed, runs compressed, blank lines at the end
    ignored; an empty body canonicalises to nothing (RFC 6376 errata 3986)."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    # A tab becomes a space, then runs of spaces one space. The pattern starts with a literal,
    # so the regex engine skips ahead at C speed (a [ \t]+ class would cost more than the RSA
    # signature on a 50 KB body).
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACE_RUN.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while end >= 2 and body[end - 2 : end] == b"\r\n":
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()


def _field_name(name: bytes) -> str:
    return name.strip(b" \t").lower().decode("ascii", "replace")


def _select(fields: list[tuple[bytes, bytes]], names: Sequence[str]) -> list[tuple[bytes, bytes]]:
    """Header instances for the h= list, each name taken from the bottom up (RFC 6376 5.4.2)."""
    chosen: list[tuple[bytes, bytes]] = []
    last_index: dict[str, int] = {}
    lowered = [_field_name(f[0]) for f in fields]
    for name in names:
        i = last_index.get(name, len(fields))
        while i > 0:
            i -= 1
            if lowered[i] == name:
                chosen.append(fields[i])
                break
        last_index[name] = i
    return chosen


def _fold_tags(tags: list[str]) -> str:
    """Join tag=value pairs with ``; `` and fold where a line would pass 76 characters: before a
    tag, or inside the h= list after a colon (RFC 6376 allows FWS there)."""
    atoms: list[tuple[str, str]] = []  # (text, what joins it to the previous atom on one line)
    for i, tag in enumerate(tags):
        end = ";" if i < len(tags) - 1 else ""
        if tag.startswith("h="):
            names = tag[2:].split(":")
            atoms.append(("h=" + names[0] + (":" if len(names) > 1 else end), " "))
            for j, name in enumerate(names[1:], start=2):
                atoms.append((name + (":" if j < len(names) else end), ""))
        else:
            atoms.append((tag + end, " "))
    lines, line = [], "DKIM-Signature:"
    for text, joiner in atoms:
        if len(line) + len(joiner) + len(text) > 76 and line.strip():
            lines.append(line)
            line = "\t" + text
        else:
            line += joiner + text
    lines.append(line)
    return "\r\n".join(lines)


def _fold_b64(prefix_len: int, value: str) -> str:
    """The b= value in 72-character pieces (verifiers ignore whitespace inside it)."""
    first = max(8, 76 - prefix_len)
    pieces = [value[:first]] + [value[i : i + 72] for i in range(first, len(value), 72)]
    return "\r\n\t".join(p for p in pieces if p)


class DkimSigner:
    """Signs finished messages for one (domain, selector, key): ``sign(bytes) -> bytes``."""

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key_pem: bytes,
        headers: Sequence[str] = DEFAULT_HEADERS,
        timestamp: bool = True,
    ) -> None:
        if not _DOMAIN.match(domain):
            raise ConfigError(
                f"The DKIM domain {domain!r} is not a domain name",
                "Set DISPATCH_DKIM_DOMAIN to your From domain, e.g. example.org.",
            )
        if not _SELECTOR.match(selector):
            raise ConfigError(
                f"The DKIM selector {selector!r} is not valid",
                "Use letters, digits, dots and hyphens, e.g. dispatch2026.",
            )
        self.domain = domain.lower()
        self.selector = selector
        self.headers = tuple(h.lower() for h in headers)
        self.timestamp = timestamp
        self._key = load_private_key(private_key_pem)
        self.algorithm = (
            "ed25519-sha256" if isinstance(self._key, ed25519.Ed25519PrivateKey) else "rsa-sha256"
        )

    def dns_record(self) -> str:
        """The TXT record value to publish at ``<selector>._domainkey.<domain>``."""
        return dns_record(self._key)

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, message: bytes) -> bytes:
        """The message (CRLF line endings) with a ``DKIM-Signature:`` header on top."""
        message = to_crlf(message)
        if not message.endswith(b"\r\n"):
            message += b"\r\n"  # what SMTP's DATA would add anyway; signed as sent
        fields, body = split_message(message)
        present = [_field_name(f[0]) for f in fields]
        names = [n for n in present if n in self.headers]
        names += [n for n in OVERSIGNED if n in self.headers]
        if "from" not in present:
            raise ValueError("a message without a From header cannot be DKIM-signed")
        tags = [
            "v=1",
            f"a={self.algorithm}",
            "c=relaxed/relaxed",
            f"d={self.domain}",
            f"s={self.selector}",
        ]
        if self.timestamp:
            tags.append(f"t={int(time.time())}")
        tags += [f"h={':'.join(names)}", f"bh={body_hash(body)}", "b="]
        unsigned = _fold_tags(tags)
        name, _, value = unsigned.encode().partition(b":")
        signed = self._sign_data(_hash_input(fields, names, name, value))
        last_line = unsigned.rsplit("\r\n", 1)[-1]
        header = unsigned + _fold_b64(len(last_line), base64.b64encode(signed).decode())
        return header.encode() + b"\r\n" + message

    def _sign_data(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(hashlib.sha256(data).digest())
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _hash_input(
    fields: list[tuple[bytes, bytes]], names: Sequence[str], sig_name: bytes, sig_value: bytes
) -> bytes:
    """The header hash input: each signed header canonicalised + CRLF, then the signature field
    with an empty b= and no trailing CRLF."""
    parts = [relaxed_header(n, v) + b"\r\n" for n, v in _select(fields, names)]
    parts.append(relaxed_header(sig_name, sig_value))
    return b"".join(parts)


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def load_private_key(pem: bytes) -> PrivateKey:
    """An RSA (at least 1024 bits) or Ed25519 private key from PEM; ValueError otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not an unencrypted PEM private key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise ValueError(f"an RSA key of {key.key_size} bits is too short (use 2048)")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ValueError(f"a {type(key).__name__} is neither RSA nor Ed25519")


def dns_record(key: PrivateKey) -> str:
    """``v=DKIM1; k=...; p=...`` for a private key's public half."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def generate_key(algorithm: str = "rsa", bits: int = 2048) -> bytes:
    """A new private key as unencrypted PKCS#8 PEM."""
    key: PrivateKey
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise ValueError(f"unknown key algorithm {algorithm!r} (rsa or ed25519)")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signer_from_settings(settings: Settings) -> DkimSigner | None:
    """The outlet's signer, or None when DKIM is not configured (none of the three set)."""
    values = {
        "DISPATCH_DKIM_DOMAIN": settings.dkim_domain,
        "DISPATCH_DKIM_SELECTOR": settings.dkim_selector,
        "DISPATCH_DKIM_KEY_FILE": settings.dkim_key_file,
    }
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(values):
        return None
    if missing:
        given = ", ".join(n for n in values if n not in missing)
        raise ConfigError(
            f"DKIM is half configured: {given} set but {', '.join(missing)} not",
            "Set all three of DISPATCH_DKIM_DOMAIN, DISPATCH_DKIM_SELECTOR and "
            "DISPATCH_DKIM_KEY_FILE to sign mail, or none of them to send unsigned "
            "(`dispatch dkim keygen` makes a key).",
        )
    path = Path(settings.dkim_key_file)  # type: ignore[arg-type]
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"DISPATCH_DKIM_KEY_FILE {path} cannot be read ({exc.strerror or exc})",
            "Point DISPATCH_DKIM_KEY_FILE at the private key PEM `dispatch dkim keygen` wrote, "
            "readable by the user running dispatch.",
        ) from exc
    try:
        return DkimSigner(settings.dkim_domain, settings.dkim_selector, pem)
    except ValueError as exc:
        raise ConfigError(
            f"DISPATCH_DKIM_KEY_FILE {path} is not a usable DKIM key: {exc}",
            "Use an unencrypted PEM RSA (2048-bit) or Ed25519 private key, e.g. from "
            "`dispatch dkim keygen`.",
        ) from exc
