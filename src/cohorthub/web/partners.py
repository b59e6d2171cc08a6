"""Partner Integrations → Technology Partners: the list, a partner's page, its data import key."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.cohorts.model import Cohort
from cohorthub.cohorts.services import cohort_flow, list_cohorts
from cohorthub.partners import services as partners
from cohorthub.partners.model import REGISTRY, Partner
from cohorthub.web.charts import flow_chart
from cohorthub.web.context import Ctx, PageNotFound, page, render
from cohorthub.web.i18n import N_

FLOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class PartnerPage:
    """What the partner page shows."""

    partner: Partner
    state: bool | None
    cohorts: list[Cohort]
    flows: dict[str, list[tuple[float, int, int]]]


@page("read")
async def partner_list(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/partners`: every technology partner and its state here."""
    workspace_id = ctx.workspace_id

    def run() -> dict[str, bool | None]:
        with ctx.c.uow(readonly=True) as uow:
            return partners.integration_states(uow=uow, workspace_id=workspace_id)

    states = await in_thread(run)
    rows = sorted(REGISTRY.values(), key=lambda p: (states[p.name] is None, p.display_name))
    return render(ctx, "partners.html", title=ctx.gettext("Technology Partners"), nav="partners",
                  partners=rows, states=states)  # fmt: skip


def _load(ctx: Ctx, name: str) -> PartnerPage:
    partner = partners.get_partner(name)
    with ctx.c.uow(readonly=True) as uow:
        state = partners.integration_states(uow=uow, workspace_id=ctx.workspace_id)[name]
        cohorts = list_cohorts(uow=uow, workspace_id=ctx.workspace_id, partner=name)
        flows = {
            c.cohort_id: cohort_flow(uow=uow, workspace_id=ctx.workspace_id, partner=name,
                                     cohort_id=c.cohort_id, days=FLOW_DAYS, now=ctx.c.now())
            for c in cohorts[:50]
        }  # fmt: skip
    return PartnerPage(partner=partner, state=state, cohorts=cohorts, flows=flows)


def _show(ctx: Ctx, data: PartnerPage, *, new_key: str = "", notice: str = "") -> Response:
    settings = ctx.c.settings
    return render(
        ctx, "partner.html", title=data.partner.display_name, nav="partners", p=data.partner,
        state=data.state, cohorts=data.cohorts, new_key=new_key, notice=notice,
        charts={cohort_id: flow_chart(flow) for cohort_id, flow in data.flows.items()},
        rest_endpoint=settings.public_url, grace=settings.key_rotation_grace_seconds,
    )  # fmt: skip


@page("read")
async def partner_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/partners/{partner}`."""
    name = request.path_params["partner"]
    return _show(ctx, await in_thread(lambda: _load(ctx, name)))


@page("write")
async def partner_action(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/partners/{partner}/{action}`: enable, rotate, invalidate or disable."""
    name, action = request.path_params["partner"], request.path_params["action"]
    c, workspace_id = ctx.c, ctx.workspace_id

    def run() -> str:
        with c.uow() as uow:
            if action == "enable":
                return partners.enable_partner(uow=uow, workspace_id=workspace_id, partner=name,
                                               now=c.now()).data_import_key  # fmt: skip
            if action in ("rotate", "invalidate"):
                grace = c.settings.key_rotation_grace_seconds if action == "rotate" else 0.0
                return partners.rotate_data_import_key(
                    uow=uow, workspace_id=workspace_id, partner=name, now=c.now(), grace_seconds=grace
                )
            partners.disable_partner(uow=uow, workspace_id=workspace_id, partner=name, now=c.now())
            return ""

    if action not in NOTICES:
        raise PageNotFound(f"No partner action {action}")
    key = await in_thread(run)
    return _show(ctx, await in_thread(lambda: _load(ctx, name)), new_key=key,
                 notice=ctx.gettext(NOTICES[action]))  # fmt: skip


NOTICES = {
    "enable": N_("Enabled. Copy the data import key now: it is shown only once."),
    "rotate": N_("New data import key issued; the previous one keeps working during the grace period."),
    "invalidate": N_("Previous data import keys stopped working; a new key was issued."),
    "disable": N_("Disabled: imports with this partner's keys are refused."),
}


ROUTES: list[BaseRoute] = [
    Route("/partners", partner_list, methods=["GET"]),
    Route("/partners/{partner}", partner_page, methods=["GET"]),
    Route("/partners/{partner}/{action:str}", partner_action, methods=["POST"]),
]
