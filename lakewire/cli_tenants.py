"""``lakewire tenant create|ls|disable|enable|rm|rotate-key|revoke-key``.

Through the storage service's ``/api/tenants`` with the admin key, never by writing the records
directly: the service is the one writer of the registry, and a change through it takes effect
for the next request.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from lakehouse.settings import Settings

tenant_app = typer.Typer(
    no_args_is_help=True, help="Tenants: who may use which buckets and prefixes (admin)."
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IdArg = Annotated[str, typer.Argument(help="The tenant's id.")]
ExpiresOption = Annotated[
    str | None, typer.Option("--expires", help="When the key expires (ISO 8601, UTC if no zone).")
]


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from storage_service.auth import load_or_create_api_key

    settings = Settings()
    headers = {"Authorization": f"Bearer {load_or_create_api_key(settings)}"}
    try:
        resp = httpx.request(
            method, f"{settings.storage_url}{path}", json=body, headers=headers, timeout=30
        )
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] the storage service is not reachable: {exc}")
        raise typer.Exit(1) from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            detail = resp.text[:300]
        err.print(f"[red]error:[/red] HTTP {resp.status_code}: {detail}", highlight=False)
        raise typer.Exit(1)
    return resp.json() if resp.content else None


def _show_key(answer: dict[str, Any]) -> None:
    err.print(
        f"tenant {answer['id']}: key {answer['key_id']} (shown once; only its hash is kept)",
        highlight=False,
    )
    out.print(answer["key"], highlight=False)  # stdout holds the key alone, for scripts


@tenant_app.command("create")
def create(
    tenant_id: IdArg,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="'bucket/prefix/' or 'bucket' (repeat); default: <bucket>/<id>/ "
            "in every shared bucket.",
        ),
    ] = None,
    expires: ExpiresOption = None,
) -> None:
    """Create a tenant; prints its first access key."""
    body: dict[str, Any] = {"id": tenant_id, "name": name, "scopes": scope or None}
    if expires:
        body["expires_at"] = expires
    _show_key(_call("POST", "/api/tenants", body))


@tenant_app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False) -> None:
    """Tenants, their scopes, status and keys (ids only)."""
    tenants = _call("GET", "/api/tenants")
    if as_json:
        out.print(json.dumps(tenants, indent=1), highlight=False)
        return
    table = Table("id", "name", "scopes", "status", "keys")
    for t in tenants:
        keys = ", ".join(
            k["key_id"] + (f" (expires {k['expires_at']})" if k["expires_at"] else "")
            for k in t["keys"]
        )
        status = "disabled" if t["disabled"] else "active"
        table.add_row(t["id"], t["name"], "\n".join(t["scopes"]), status, keys or "-")
    out.print(table)


@tenant_app.command("disable")
def disable(tenant_id: IdArg) -> None:
    """Refuse the tenant's keys (and its presigned links) until it is enabled again."""
    _call("PATCH", f"/api/tenants/{tenant_id}", {"disabled": True})
    out.print(f"tenant {tenant_id} disabled", highlight=False)


@tenant_app.command("enable")
def enable(tenant_id: IdArg) -> None:
    """Accept the tenant's keys again."""
    _call("PATCH", f"/api/tenants/{tenant_id}", {"disabled": False})
    out.print(f"tenant {tenant_id} enabled", highlight=False)


@tenant_app.command("rm")
def rm(
    tenant_id: IdArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a tenant and its keys; objects under its prefixes stay."""
    if not yes and not typer.confirm(f"delete tenant {tenant_id} and its keys?"):
        raise typer.Exit(1)
    _call("DELETE", f"/api/tenants/{tenant_id}")
    out.print(f"tenant {tenant_id} deleted", highlight=False)


@tenant_app.command("rotate-key")
def rotate_key(tenant_id: IdArg, expires: ExpiresOption = None) -> None:
    """Issue a second key; the old one works until it is revoked (no downtime)."""
    _show_key(_call("POST", f"/api/tenants/{tenant_id}/keys", {"expires_at": expires}))
    err.print(f"revoke the old key with: lakewire tenant revoke-key {tenant_id} <key id>")


@tenant_app.command("revoke-key")
def revoke_key(
    tenant_id: IdArg, key_id: Annotated[str, typer.Argument(help="The key's id (from ls).")]
) -> None:
    """Refuse one key from now on (the last step of a rotation)."""
    _call("DELETE", f"/api/tenants/{tenant_id}/keys/{key_id}")
    out.print(f"key {key_id} of tenant {tenant_id} revoked", highlight=False)
