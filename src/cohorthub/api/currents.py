"""Currents routes: connectors (create, list, pause, resume, delete), statistics, `/metrics`."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import JSONResponse, api_key, container, decode_as, in_thread, read_json
from cohorthub.api.openapi import Operation, documented
from cohorthub.bootstrap import Container
from cohorthub.currents import services
from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.model import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EVENTS,
    KINDS,
    MAX_BATCH_SIZE,
    Connector,
    ConnectorStats,
)
from cohorthub.workspaces.services import authenticate_rest_key


class ConnectorIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new connector; `token` is write-only."""

    kind: Annotated[str, documented(enum=list(KINDS))]
    url: Annotated[str, documented(pattern="^\\s*[Hh][Tt][Tt][Pp][Ss]?://[^\\x00]+$", format="uri")]
    token: Annotated[str, documented(pattern="^([A-Za-z0-9._~+/-]+=*)?$", maxLength=4096)] | None = None
    events: Annotated[str, documented(pattern="^[A-Za-z0-9_.*?, -]*[A-Za-z0-9_.*?-][A-Za-z0-9_.*?, -]*$")] = (
        DEFAULT_EVENTS
    )
    batch_size: Annotated[int, documented(minimum=1, maximum=MAX_BATCH_SIZE)] = DEFAULT_BATCH_SIZE
    api_key: str | None = None


class ConnectorOut(msgspec.Struct):
    """A connector as shown (never its token)."""

    id: str
    workspace_id: str
    kind: str
    url: str
    has_token: bool
    events: str
    batch_size: int
    paused: bool
    created_at: float


class ConnectorList(msgspec.Struct):
    """Every connector of the key's workspace."""

    connectors: list[ConnectorOut]


class StatsOut(msgspec.Struct):
    """A connector's delivery statistics (counts are events)."""

    connector_id: str
    state: str
    queued: int
    in_flight: int
    delivered: int
    retried: int
    dropped: int
    dead_letters: int
    oldest_undelivered_age: float | None
    last_status: int | None
    last_error: str | None
    last_error_at: float | None
    next_attempt_at: float | None


def connector_out(c: Connector) -> ConnectorOut:
    """The wire form of a connector."""
    return ConnectorOut(
        c.id,
        c.workspace_id,
        c.kind,
        c.url,
        c.token is not None,
        str(c.events),
        c.batch_size,
        c.paused,
        c.created_at,
    )


def stats_out(s: ConnectorStats) -> StatsOut:
    """The wire form of a connector's statistics."""
    values = {f: getattr(s, f) for f in StatsOut.__struct_fields__}
    values["state"] = s.state.value
    return StatsOut(**values)


def _workspace(c: Container, request: Request, body: Any, permission: str) -> str:
    with c.uow(readonly=True) as uow:
        return authenticate_rest_key(uow=uow, key=api_key(request, body), permission=permission).workspace_id


async def create(request: Request) -> Response:
    """`POST /currents`."""
    c = container(request)
    body = await read_json(request)

    def work() -> Connector:
        workspace_id = _workspace(c, request, body, "currents.write")
        if not isinstance(body, dict):
            raise InvalidConnector("Request body must be a JSON object")
        spec = msgspec.structs.asdict(decode_as(body, ConnectorIn))
        del spec["api_key"]
        with c.uow() as uow:
            return services.create_connector(uow=uow, workspace_id=workspace_id, now=c.now(), **spec)

    return JSONResponse(connector_out(await in_thread(work)), status_code=201)


async def list_(request: Request) -> Response:
    """`GET /currents`."""
    c = container(request)

    def work() -> ConnectorList:
        workspace_id = _workspace(c, request, None, "currents.read")
        with c.uow(readonly=True) as uow:
            found = services.list_connectors(uow=uow, workspace_id=workspace_id)
        return ConnectorList([connector_out(x) for x in found])

    return JSONResponse(await in_thread(work))


async def get(request: Request) -> Response:
    """`GET /currents/{id}`."""
    c, cid = container(request), request.path_params["id"]

    def work() -> ConnectorOut:
        workspace_id = _workspace(c, request, None, "currents.read")
        with c.uow(readonly=True) as uow:
            return connector_out(services.get_connector(uow=uow, connector_id=cid, workspace_id=workspace_id))

    return JSONResponse(await in_thread(work))


def _pause(paused: bool) -> Any:
    async def endpoint(request: Request) -> Response:
        c, cid = container(request), request.path_params["id"]

        def work() -> ConnectorOut:
            workspace_id = _workspace(c, request, None, "currents.write")
            with c.uow() as uow:
                found = services.set_paused(
                    uow=uow, connector_id=cid, paused=paused, workspace_id=workspace_id
                )
            return connector_out(found)

        return JSONResponse(await in_thread(work))

    return endpoint


async def remove(request: Request) -> Response:
    """`DELETE /currents/{id}`."""
    c, cid = container(request), request.path_params["id"]

    def work() -> None:
        workspace_id = _workspace(c, request, None, "currents.write")
        with c.uow() as uow:
            services.delete_connector(uow=uow, connector_id=cid, workspace_id=workspace_id)

    await in_thread(work)
    return Response(status_code=204)


async def stats(request: Request) -> Response:
    """`GET /currents/{id}/stats`."""
    c, cid = container(request), request.path_params["id"]

    def work() -> StatsOut:
        workspace_id = _workspace(c, request, None, "currents.read")
        with c.uow(readonly=True) as uow:
            found = services.connector_stats(
                uow=uow, connector_id=cid, now=c.now(), workspace_id=workspace_id
            )
        return stats_out(found)

    return JSONResponse(await in_thread(work))


class CurrentsCollector(Collector):
    """Reads every connector's statistics at scrape time."""

    def __init__(self, c: Container) -> None:
        self._c = c

    def collect(self) -> list[Metric]:
        """One sample per connector and figure."""
        labels = ["connector_id", "workspace_id", "kind"]
        gauges = {
            name: GaugeMetricFamily(f"cohorthub_currents_{name}", doc, labels=labels)
            for name, doc in [
                ("queued_events", "Events waiting to be sent"),
                ("in_flight_events", "Events in a request being sent"),
                ("dead_letter_events", "Dropped events kept for replay"),
                ("oldest_undelivered_age_seconds", "Age of the oldest undelivered event"),
                ("halted", "1 when the endpoint rejected the credentials"),
            ]
        }
        counters = {
            name: CounterMetricFamily(f"cohorthub_currents_{name}", doc, labels=labels)
            for name, doc in [
                ("delivered_events", "Events acknowledged with 2xx"),
                ("retried_events", "Events scheduled for another attempt"),
                ("dropped_events", "Events dropped into dead letters"),
            ]
        }
        now = self._c.now()
        with self._c.uow(readonly=True) as uow:
            for connector in services.list_connectors(uow=uow):
                s = services.connector_stats(uow=uow, connector_id=connector.id, now=now)
                lv = [connector.id, connector.workspace_id, connector.kind]
                gauges["queued_events"].add_metric(lv, s.queued)
                gauges["in_flight_events"].add_metric(lv, s.in_flight)
                gauges["dead_letter_events"].add_metric(lv, s.dead_letters)
                gauges["oldest_undelivered_age_seconds"].add_metric(lv, s.oldest_undelivered_age or 0.0)
                gauges["halted"].add_metric(lv, 1.0 if s.state.value == "halted" else 0.0)
                counters["delivered_events"].add_metric(lv, s.delivered)
                counters["retried_events"].add_metric(lv, s.retried)
                counters["dropped_events"].add_metric(lv, s.dropped)
        return [*gauges.values(), *counters.values()]


class HeapCollector(Collector):
    """How many objects the process left out of garbage collection when it started serving."""

    def collect(self) -> list[Metric]:
        frozen = GaugeMetricFamily(
            "cohorthub_gc_frozen_objects",
            "Objects left out of garbage collection since the server started (freeze_startup_heap)",
        )
        frozen.add_metric([], float(gc.get_freeze_count()))
        return [frozen]


async def metrics(request: Request) -> Response:
    """`GET /metrics`: Prometheus text format."""
    c = container(request)
    registry = c.extras.get("metrics_registry")
    if registry is None:
        registry = c.extras["metrics_registry"] = CollectorRegistry(auto_describe=False)
        registry.register(CurrentsCollector(c))
        registry.register(HeapCollector())
    data = await in_thread(lambda: generate_latest(registry))
    return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES: list[BaseRoute] = [
    Route("/currents", create, methods=["POST"]),
    Route("/currents", list_, methods=["GET"]),
    Route("/currents/{id}", get, methods=["GET"]),
    Route("/currents/{id}", remove, methods=["DELETE"]),
    Route("/currents/{id}/pause", _pause(True), methods=["POST"]),
    Route("/currents/{id}/resume", _pause(False), methods=["POST"]),
    Route("/currents/{id}/stats", stats, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
_E = (400, 401, 403, 415)
OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/currents",
        "Create a Currents connector (Custom HTTP or Heap)",
        "currents",
        request=ConnectorIn,
        response=ConnectorOut,
        status=201,
        errors=_E,
        description="Permission `currents.write`. Exports the workspace's events recorded from now on.",
    ),
    Operation(
        "GET",
        "/currents",
        "List Currents connectors",
        "currents",
        response=ConnectorList,
        errors=(401, 403),
        description="Permission `currents.read`.",
    ),
    Operation(
        "GET",
        "/currents/{id}",
        "Show a Currents connector",
        "currents",
        response=ConnectorOut,
        errors=(401, 403, 404),
        description="Permission `currents.read`.",
    ),
    Operation(
        "DELETE",
        "/currents/{id}",
        "Delete a Currents connector",
        "currents",
        status=204,
        errors=(401, 403, 404),
        description="Permission `currents.write`. Queued batches and dead letters go too.",
    ),
    Operation(
        "POST",
        "/currents/{id}/pause",
        "Pause a connector (events keep queueing)",
        "currents",
        response=ConnectorOut,
        errors=(401, 403, 404),
        description="Permission `currents.write`.",
    ),
    Operation(
        "POST",
        "/currents/{id}/resume",
        "Resume a paused connector",
        "currents",
        response=ConnectorOut,
        errors=(401, 403, 404),
        description="Permission `currents.write`.",
    ),
    Operation(
        "GET",
        "/currents/{id}/stats",
        "Delivery statistics of a connector",
        "currents",
        response=StatsOut,
        errors=(401, 403, 404),
        description="Permission `currents.read`.",
    ),
    Operation(
        "GET", "/metrics", "Prometheus metrics (Currents delivery per connector)", "metrics", auth="none"
    ),
]
