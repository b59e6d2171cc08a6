"""Test data for cohort tests: a workspace with a partner enabled, and users written as rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from cohorthub.bootstrap import Container
from cohorthub.partners import services as partners
from cohorthub.store.tables import user_aliases, user_devices, users
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Tenant:
    """A workspace with one partner enabled, and the keys a partner and an operator hold."""

    workspace_id: str
    partner: str
    partner_api_key: str
    client_secret: str
    rest_key: str

    def body(self, **fields: object) -> dict[str, object]:
        """A partner request body with this tenant's keys."""
        return {"partner_api_key": self.partner_api_key, "client_secret": self.client_secret, **fields}


def make_tenant(c: Container, *, partner: str = "heap", name: str = "Acme") -> Tenant:
    """Create a workspace, a partner key and the workspace's data import key."""
    with c.uow() as uow:
        ws, issued = workspaces.create_workspace(uow=uow, name=name, now=NOW)
    with c.uow() as uow:
        pk = partners.issue_partner_key(uow=uow, partner=partner, now=NOW)
    with c.uow() as uow:
        cs = partners.enable_partner(uow=uow, workspace_id=ws.id, partner=partner, now=NOW).data_import_key
    return Tenant(ws.id, partner, pk, cs, issued.key)


def add_user(
    c: Container,
    workspace_id: str,
    *,
    external_id: str | None = None,
    devices: Iterable[str] = (),
    aliases: Iterable[tuple[str, str]] = (),
    num: int | None = None,
) -> int:
    """Insert a user (anonymous when `external_id` is None) with its devices and aliases; return its num."""
    explicit = {} if num is None else {"num": num}
    with c.engine.begin() as conn:
        num = conn.execute(
            insert(users)
            .values(
                **explicit,
                workspace_id=workspace_id,
                braze_id=uuid.uuid4().hex[:24],
                external_id=external_id,
                custom_attributes="{}",
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(users.c.num)
        ).scalar_one()
        for device in devices:
            conn.execute(
                insert(user_devices).values(workspace_id=workspace_id, device_id=device, user_num=num)
            )
        for label, alias_name in aliases:
            conn.execute(
                insert(user_aliases).values(
                    workspace_id=workspace_id, alias_label=label, alias_name=alias_name, user_num=num
                )
            )
    return int(num)


def add_users(c: Container, workspace_id: str, external_ids: Iterable[str]) -> list[int]:
    """Insert identified users in one transaction; return their nums in order."""
    ids = list(external_ids)
    rows = [
        {"workspace_id": workspace_id, "braze_id": uuid.uuid4().hex[:24], "external_id": e,
         "custom_attributes": "{}", "created_at": NOW, "updated_at": NOW}
        for e in ids
    ]  # fmt: skip
    with c.engine.begin() as conn:
        if rows:
            conn.execute(insert(users), rows)
        stmt = select(users.c.external_id, users.c.num).where(
            users.c.workspace_id == workspace_id, users.c.external_id.in_(ids)
        )
        found = dict(iter(conn.execute(stmt)))
    return [int(found[e]) for e in ids]


def user_count(c: Container) -> int:
    """How many user rows exist."""
    with c.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def braze_id_of(c: Container, num: int) -> str:
    """The public id of a user."""
    with c.engine.connect() as conn:
        return str(conn.execute(users.select().where(users.c.num == num)).one().braze_id)
