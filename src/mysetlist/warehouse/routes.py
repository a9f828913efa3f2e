"""ETL management API (spec: ETL Management APIs). Operators only (admin or service_role).

- `POST /api/analytics/etl` starts a run (optional `from`, `to`, `steps`); 202 with the run,
  409 when one is already queued or running. Also the dashboard's Run ETL button: start and
  cancel admit an operator session (core.operator_auth; by cookie with its CSRF token).
- `GET /api/analytics/etl` the active run, recent history and the watermark;
  `GET /api/analytics/etl/{run_id}` one run with its quality checks and audit trail.
- `DELETE /api/analytics/etl` cancels the active run (its database work is cancelled) and
  answers once it has recorded `cancelled` (or after 5 s with its current state).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mysetlist.core.auth import Claims, Operator
from mysetlist.core.errors import problem_responses
from mysetlist.core.operator_auth import OperatorDep
from mysetlist.core.runtime import RuntimeDep
from mysetlist.warehouse import runs
from mysetlist.warehouse.contract import EtlStatus, RunChange, RunDetail
from mysetlist.warehouse.steps import ALL_STEPS, unknown_steps_message

router = APIRouter(
    prefix="/api/analytics/etl", tags=["warehouse"], responses=problem_responses(401, 403)
)

MAX_RANGE_DAYS = 3660


def _actor_role(claims: Claims) -> str:
    """The role the audit trail records: operators by admin flag are `admin`."""
    return "admin" if claims.is_admin else claims.role


class StartRun(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_day: date | None = Field(default=None, alias="from")
    to_day: date | None = Field(default=None, alias="to")
    steps: list[str] | None = Field(default=None, max_length=len(ALL_STEPS))

    @model_validator(mode="after")
    def _check(self) -> StartRun:
        if self.from_day and self.to_day:
            if self.from_day > self.to_day:
                raise ValueError("'from' must not be after 'to'")
            if (self.to_day - self.from_day).days >= MAX_RANGE_DAYS:
                raise ValueError(f"a range may span at most {MAX_RANGE_DAYS} days")
        problem = unknown_steps_message(self.steps or [])
        if problem:
            raise ValueError(problem)
        return self


@router.post("", status_code=202, responses=problem_responses(409))
async def start_run(
    runtime: RuntimeDep, claims: OperatorDep, response: Response, body: StartRun | None = None
) -> RunChange:
    body = body or StartRun()
    run = await runs.queue_run(
        runtime.db,
        from_day=body.from_day,
        to_day=body.to_day,
        steps=body.steps,
        actor_id=claims.user_id,
        actor_role=_actor_role(claims),
    )
    response.headers["Location"] = f"/api/analytics/etl/{run['id']}"
    return RunChange.model_validate({"run_id": run["id"], "status": run["status"], "run": run})


@router.get("")
async def status(
    runtime: RuntimeDep,
    claims: Operator,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> EtlStatus:
    async with runtime.db.transaction() as conn:
        return EtlStatus.model_validate(
            {
                "active": await runs.active_run(conn),
                "runs": await runs.list_runs(conn, limit),
                "watermark": await runs.watermark(conn),
                "steps": list(ALL_STEPS),
            }
        )


@router.get("/{run_id}", responses=problem_responses(404))
async def run_detail(runtime: RuntimeDep, claims: Operator, run_id: int) -> RunDetail:
    async with runtime.db.transaction() as conn:
        run = await runs.get_run(conn, run_id)
    return RunDetail.model_validate(run)


@router.delete("", responses=problem_responses(404))
async def cancel_run(runtime: RuntimeDep, claims: OperatorDep) -> RunChange:
    run = await runs.cancel_active(
        runtime.db, actor_id=claims.user_id, actor_role=_actor_role(claims)
    )
    return RunChange.model_validate({"run_id": run["id"], "status": run["status"], "run": run})
