"""`kb tokens`: the access tokens of `kb serve` (kb/tokens.py)."""

from __future__ import annotations

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.options import JSON

app = typer.Typer(help="Access tokens for kb serve: create (shown once), list, revoke.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name for the token (letters, digits, '-' and '_')."),
    scope: str = typer.Option("read", "--scope", help="read (search, ask), write (+ ingest, remove) or admin."),
    kbs: list[str] = typer.Option([], "--kb", help="Only this knowledge base (repeatable); default: every one."),
    rpm: int | None = typer.Option(None, "--rpm", min=1, help="At most this many requests per minute."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime, e.g. 12h, 30d, 2w (default: none)."),
    as_json: bool = JSON,
) -> None:
    """Create a token and print its secret, once: the server keeps only its digest."""
    from kb.tokens import scope_of

    secret, token = context.library(ctx).create_token(name, scope_of(scope), kbs, rpm, expires)
    if as_json:
        ui.emit_json({**token.to_json(), "token": secret})
        return
    ui.out.print(secret, markup=False)
    limits = f"{token.scope}" + (f", knowledge bases {', '.join(token.kbs)}" if token.kbs else "")
    ui.note(f"token {token.name!r} ({limits}): shown once; send it as `Authorization: Bearer <token>`")


@app.command("list")
def list_tokens(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the tokens (never their secrets), revoked ones included."""
    rows = context.library(ctx).tokens()
    if as_json:
        ui.emit_ndjson(rows)
        return
    if not rows:
        ui.note("no tokens yet; `kb tokens create NAME --scope read` makes one")
        return
    ui.table(("name", "scope", "kbs", "rpm", "expires", "revoked"),
             [(t.name, t.scope, ", ".join(t.kbs) or "all", str(t.rpm or "–"), r["expires_at"] or "never",
               r["revoked_at"] or "") for t in rows for r in [t.to_json()]])  # fmt: skip


@app.command("revoke")
def revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The token to revoke.")) -> None:
    """Revoke a token: every kb serve that shares this store refuses it within a second."""
    token = context.library(ctx).revoke_token(name)
    ui.out.print(f"revoked token {token.name!r}")
