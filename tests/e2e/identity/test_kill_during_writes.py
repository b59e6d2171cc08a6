"""`kill -9` of `cohorthub serve` under concurrent writes: every acknowledged change survives.

Four clients track new users and add users to a cohort as fast as the server answers (on SQLite
their requests share commits); the server is killed mid-stream. Whatever got a 201 must be in
the database afterwards: the user with its attribute, the member in its cohort.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.cohorts.services import cohort_bitmap
from cohorthub.store.tables import users
from tests.conftest import free_port, stop_process
from tests.e2e.currents.test_cli_crash import CLI, _wait
from tests.integration.cohorts.factories import Tenant, add_user, make_tenant

SEEDED = 3000


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Clients:
    """Writers that note every change the server acknowledged, until it stops answering."""

    def __init__(self, url: str, tenant: Tenant) -> None:
        self.url, self.tenant = url, tenant
        self.tracked: list[str] = []
        self.members: list[str] = []
        self.stop = threading.Event()

    def track(self, client: int) -> None:
        headers = {"Authorization": f"Bearer {self.tenant.rest_key}"}
        with httpx.Client(base_url=self.url, timeout=10, headers=headers) as http:
            for r in range(10_000):
                ids = [f"t-{client}-{r}-{k}" for k in range(20)]
                body = {"attributes": [{"external_id": x, "plan": "pro"} for x in ids]}
                if not self._post(http, "/users/track", body):
                    return
                self.tracked += ids

    def import_(self, client: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for r in range(SEEDED // 100):
                ids = [f"s-{n}" for n in range(r * 100 + client * 50, r * 100 + client * 50 + 50)]
                body = self.tenant.body(cohort_id="crash", cohort_changes=[{"user_ids": ids}])
                if not self._post(http, "/partners/heap/cohorts/users", body):
                    return
                self.members += ids

    def _post(self, http: httpx.Client, path: str, body: object) -> bool:
        try:
            response = http.post(path, json=body)
        except httpx.HTTPError:
            return False  # killed: this request may or may not have committed
        assert response.status_code == 201, response.text
        return True


def test_every_change_acknowledged_before_a_kill_is_there_after_it(
    container: Container, database_url: str
) -> None:
    tenant = make_tenant(container)
    for n in range(SEEDED):
        add_user(container, tenant.workspace_id, external_id=f"s-{n}")
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--database", database_url, "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _healthy(port) or proc.poll() is not None)
        clients = Clients(f"http://127.0.0.1:{port}", tenant)
        work = [(clients.track, 0), (clients.track, 1), (clients.import_, 0), (clients.import_, 1)]
        threads = [threading.Thread(target=fn, args=(n,)) for fn, n in work]
        for thread in threads:
            thread.start()
        _wait(lambda: len(clients.tracked) >= 400 and len(clients.members) >= 200)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        for thread in threads:
            thread.join(max(1.0, 20 - (time.monotonic() - killed)))
    finally:
        stop_process(proc)
    with container.uow(readonly=True) as uow:
        stored = set(uow.conn.execute(select(users.c.external_id)).scalars())
        members = cohort_bitmap(
            uow=uow,
            cache=container.membership,
            workspace_id=tenant.workspace_id,
            partner="heap",
            cohort_id="crash",
        )
        nums = {
            row.external_id: row.num for row in uow.conn.execute(select(users.c.external_id, users.c.num))
        }
    assert set(clients.tracked) <= stored
    assert {nums[x] for x in clients.members} <= set(members)
