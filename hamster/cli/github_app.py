"""`hamster github-app manifest|convert`: set Hamster up as a GitHub App (README, "GitHub App")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError
from hamster.github.app_manifest import create_url, form_page, manifest


@click.group("github-app")
def github_app() -> None:
    """Create the GitHub App Hamster reports as: its manifest, then its credentials."""


@github_app.command("manifest")
@click.option(
    "--url", required=True, help="Hamster's public base URL (webhooks go to <url>/webhooks/github)."
)
@click.option("--name", default="Hamster CI", show_default=True, help="The app's name (unique on GitHub).")
@click.option("--org", default=None, help="Create the app under this organisation (default: your account).")
@click.option("--host", default=None, help="A GitHub Enterprise Server host (default: HAMSTER_GITHUB_HOST).")
@click.option("--public", is_flag=True, help="Let other accounts install the app too.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a page with a button that sends the manifest to GitHub.",
)
def manifest_command(
    url: str, name: str, org: str | None, host: str | None, public: bool, html_file: Path | None
) -> None:
    """Print the app manifest (permissions and events Hamster needs) and where to create the app."""
    if not url.startswith(("https://", "http://")):
        fail("--url must be an http(s) URL, e.g. https://ci.example.com")
    host = host or settings_or_exit().github_host
    document = manifest(url, name, public)
    action = create_url(host, org)
    click.echo(json.dumps(document, indent=2))
    click.echo(f"\nCreate the app: POST this manifest as the form field 'manifest' to {action}", err=True)
    if html_file is not None:
        html_file.write_text(form_page(document, action))
        click.echo(f"Open {html_file} in a browser and press the button.", err=True)
    click.echo(
        "GitHub then sends you to <url>/github-app/created?code=…: run "
        "`hamster github-app convert <code>` within the hour.",
        err=True,
    )


@github_app.command("convert")
@click.argument("code")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("github-app.pem"),
    show_default=True,
    help="Where to write the app's private key (mode 600).",
)
def convert_command(code: str, key_file: Path) -> None:
    """Exchange the code GitHub gave after creating the app for its id, private key and webhook secret."""
    # Not at the top: it brings github3 (requests, cryptography), and `hamster --help` loads this module.
    from hamster.github.app import convert_manifest

    settings = settings_or_exit()
    try:
        app = convert_manifest(settings, code)
    except HamsterError as exc:
        fail(str(exc))
        return
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(app["pem"])
    secret_file = key_file.with_suffix(".webhook-secret")
    descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(app.get("webhook_secret") or "")
    click.echo(f"App {app.get('slug')} created: {app.get('html_url')}")
    click.echo(f"HAMSTER_GITHUB_APP_ID={app['id']}")
    click.echo(f"HAMSTER_GITHUB_APP_KEY={key_file.resolve()}")
    click.echo(f"HAMSTER_WEBHOOK_SECRET: in {secret_file.resolve()}")
    click.echo(f"Now install the app on your organisation: {app.get('html_url')}/installations/new")
