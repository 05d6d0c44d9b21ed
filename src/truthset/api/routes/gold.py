"""Gold: mark and unmark tasks, bulk marking from CSV, reinstating a worker paused by gold."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request

from truthset.api.deps import DB, Caller, Cursor, PageLimit
from truthset.errors import InvalidInput
from truthset.schemas import GoldCreate, GoldImportReport, GoldOut, Page, WorkerStanding
from truthset.services import gold

router = APIRouter(tags=["gold"])

CSV_TYPES = ("text/csv", "application/csv", "text/plain")


@router.put("/tasks/{task_id}/gold", response_model=GoldOut, operation_id="mark_gold")
def mark_gold(db: DB, caller: Caller, task_id: str, body: GoldCreate) -> dict:
    """Make the task gold with this answer (or replace a gold task's answer). Managers and above.

    The task leaves the normal queue and is mixed into workers' queues at the policy's gold rate.
    """
    return gold.mark_gold(db, caller, task_id, body.answer)


@router.delete("/tasks/{task_id}/gold", response_model=GoldOut, operation_id="unmark_gold")
def unmark_gold(db: DB, caller: Caller, task_id: str) -> dict:
    """Make a gold task ordinary again: completed if it has its judgments, else back in the queue."""
    return gold.unmark_gold(db, caller, task_id)


@router.get("/projects/{project_id}/gold", response_model=Page[GoldOut], operation_id="list_gold")
def list_gold(db: DB, caller: Caller, project_id: str, limit: PageLimit, cursor: Cursor = None) -> dict:
    """The project's gold tasks with their answers (`gold`), in keyset pages. Managers and above."""
    items, next_cursor = gold.list_gold(db, caller, project_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/projects/{project_id}/gold",
    response_model=GoldImportReport,
    operation_id="import_gold",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": "unique_id,animal\nimg-1,cat\n"}},
        }
    },
)
async def import_gold(request: Request, caller: Caller, project_id: str) -> dict:
    """Mark tasks gold from a CSV: `task_id` or `unique_id`, then one column per question.

    All lines or none: a bad line is refused by number (422), and nothing is marked.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in CSV_TYPES:
        message = f"unsupported content type {content_type!r}: send text/csv"
        raise InvalidInput(message, details={"field": "content-type"})
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV is not UTF-8 text: {exc}", details={"field": "body"}) from None
    db = request.app.state.db
    return await anyio.to_thread.run_sync(lambda: gold.import_gold_csv(db, caller, project_id, text))


@router.post(
    "/projects/{project_id}/workers/{worker_id}/reinstate",
    response_model=WorkerStanding,
    operation_id="reinstate_worker",
)
def reinstate_worker(db: DB, caller: Caller, project_id: str, worker_id: str) -> dict:
    """Let a worker paused by gold (or still qualifying) take tasks again. Managers and above.

    Their gold record starts again from zero; the reason keeps the old figures.
    """
    return gold.reinstate(db, caller, project_id, worker_id)
