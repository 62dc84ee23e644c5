"""`dispatch dkim keygen|record`: make a DKIM signing key and show the DNS record to publish."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.errors import ConfigError, InputError
from dispatch.mailer import dkim as dkim_signing


@click.group("dkim")
def dkim() -> None:
    """DKIM signing keys: make one, show the DNS record for the configured one.

    \b
    Once the TXT record is published, set DISPATCH_DKIM_DOMAIN, DISPATCH_DKIM_SELECTOR
    and DISPATCH_DKIM_KEY_FILE and every message Dispatch sends is signed.

    \b
    Example:
      dispatch dkim keygen --selector dispatch2026 --domain outlet.org --out dkim.pem
    """


def _txt_for_zone(record: str) -> str:
    """A TXT value in quoted pieces of at most 255 characters (one DNS string's limit)."""
    pieces = [record[i : i + 255] for i in range(0, len(record), 255)]
    return " ".join(f'"{p}"' for p in pieces)


@dkim.command("keygen")
@click.option("--selector", required=True, help="Selector name, e.g. dispatch2026.")
@click.option("--domain", required=True, help="The From address's domain, e.g. outlet.org.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (PEM, mode 0600).",
)
@click.option(
    "--algorithm",
    type=click.Choice(["rsa", "ed25519"]),
    default="rsa",
    show_default=True,
    help="rsa (2048-bit, checked everywhere) or ed25519 (RFC 8463).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def keygen(
    selector: str, domain: str, out: Path, algorithm: str, force: bool, as_json: bool
) -> None:
    """Write a new private key and print the DNS TXT record to publish.

    \b
    Example:
      dispatch dkim keygen --selector dispatch2026 --domain outlet.org --out /etc/dispatch/dkim.pem
      # then publish the printed TXT record and set in .env:
      #   DISPATCH_DKIM_DOMAIN=outlet.org
      #   DISPATCH_DKIM_SELECTOR=dispatch2026
      #   DISPATCH_DKIM_KEY_FILE=/etc/dispatch/dkim.pem
    """
    if out.exists() and not force:
        raise InputError(
            f"{out} already exists", "Choose another --out, or add --force to replace that key."
        )
    pem = dkim_signing.generate_key(algorithm)
    signer = dkim_signing.DkimSigner(domain, selector, pem)  # validates domain and selector
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(out, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.chmod(out, 0o600)  # also when --force replaced a file with wider permissions
    except OSError as exc:
        raise InputError(
            f"Cannot write the key to {out}: {exc.strerror or exc}",
            "Check that the folder exists and is writable.",
        ) from exc
    if as_json:
        echo_json(
            {
                "key_file": str(out),
                "name": signer.dns_name,
                "type": "TXT",
                "value": signer.dns_record(),
                "algorithm": signer.algorithm,
            }
        )
        return
    click.echo(f"Wrote the private key to {out} (mode 0600; keep it secret).")
    click.echo("Publish this DNS TXT record:")
    click.echo(f"  {signer.dns_name}.  IN  TXT  {_txt_for_zone(signer.dns_record())}")


@dkim.command("record")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def record(app: App, as_json: bool) -> None:
    """Show the DNS TXT record for the key in DISPATCH_DKIM_KEY_FILE.

    \b
    Example:
      dispatch dkim record
    """
    signer = dkim_signing.signer_from_settings(app.settings)
    if signer is None:
        raise ConfigError(
            "DKIM is not configured",
            "Set DISPATCH_DKIM_DOMAIN, DISPATCH_DKIM_SELECTOR and DISPATCH_DKIM_KEY_FILE "
            "(`dispatch dkim keygen` makes a key).",
        )
    if as_json:
        echo_json(
            {
                "name": signer.dns_name,
                "type": "TXT",
                "value": signer.dns_record(),
                "algorithm": signer.algorithm,
            }
        )
        return
    click.echo(f"{signer.dns_name}.  IN  TXT  {_txt_for_zone(signer.dns_record())}")


COMMANDS = [dkim]
