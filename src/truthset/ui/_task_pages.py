"""The task browser: a project's tasks, filtered, searched, sorted, in keyset pages.

The page is rendered on the server from the same query as ``GET /api/v1/tasks``
(``services.tasks.list_tasks``): the filters are a plain GET form, so a filtered view is a link to
share and works without script. Its module (``static/task-browser.js``) adds the selection and the
bulk actions, which go through the REST API (``POST /projects/{id}/tasks/actions``) with the session
cookie and its CSRF token, after a confirmation. Roles without ``READ_TASKS`` get 403; the bulk
actions are shown only to roles with ``MANAGE_TASKS`` (and the API checks it again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from truthset.api import session
from truthset.domain import ReviewStatus, TaskStatus
from truthset.errors import InvalidInput, TruthsetError
from truthset.questions import MEDIA_PREFIX, CompiledSpec
from truthset.services import accounts, history, projects, review, task_browse, tasks
from truthset.services.policy import Action, allowed
from truthset.ui._guard import Guarded, _db, _failure, guard
from truthset.ui._pages import _safe_next
from truthset.ui._render import page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: Workers offered in the worker filter's list (the first ones; the API takes any worker id).
WORKER_CHOICES = 200
SORT_LABELS = {  # short: the sort is one narrow column of the filter form
    "created": "Oldest first",
    "-created": "Newest first",
    "updated": "Updated longest ago",
    "-updated": "Updated last",
    "confidence": "Lowest confidence",
    "-confidence": "Highest confidence",
    "priority": "Lowest priority",
    "-priority": "Highest priority",
}
REVIEW_CHOICES = ("accepted", "rejected", "fixed", "pending", "reviewing", "none")
#: The form's parameters (the page refuses others silently: they are links, not API calls).
FORM_FIELDS = ("status", "batch", "min_confidence", "max_confidence", "worker", "gold", "review", "meta", "q", "sort")


@dataclass
class BrowserForm:
    """The filter form as typed (re-shown as is) and the errors found in it, by field."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


@router.get("/projects/{project_id}/tasks")
def task_browser(request: Request, project_id: str, cursor: str | None = None) -> Response:
    """A project's tasks with the browser's filters; ``cursor`` is the previous page's next_cursor."""
    guarded = guard(request, Action.READ_TASKS, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    info, project, db = guarded.info, guarded.project, _db(request)
    form = BrowserForm({name: request.query_params.get(name, "").strip() for name in FORM_FIELDS})
    filters, sort = _filters(project_id, form)
    rows: list[dict[str, Any]] = []
    next_cursor = None
    if not form.errors:
        try:
            rows, next_cursor = tasks.list_tasks(db, info.principal, filters, cursor=cursor, limit=PAGE_SIZE, sort=sort)
        except InvalidInput as exc:
            field_name = str((exc.details or {}).get("field", "q")).removeprefix("query.")
            form.errors[{"search": "q", "cursor": "q"}.get(field_name, field_name)] = exc.message
    may_manage = allowed(info.principal, Action.MANAGE_TASKS)
    query = {k: v for k, v in form.values.items() if v}
    return page(
        request,
        "tasks.html",
        project=project,
        form=form,
        rows=rows,
        previews={row["id"]: preview(project, row["data"]) for row in rows},
        cursor=cursor,
        next_url=f"?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
        first_url=f"?{urlencode(query)}",
        this_url=f"/projects/{project_id}/tasks?{urlencode(query)}",
        statuses=[str(s) for s in TaskStatus],
        review_choices=REVIEW_CHOICES,
        sort_labels=SORT_LABELS,
        batches=_batches(db, info, project_id),
        workers=_workers(db, info),
        may_manage=may_manage,
        browser_config={  # static/task-browser.js
            "project_id": project_id,
            "may_manage": may_manage,
            "filter": _api_filter(filters),
            "archived": project["archived_at"] is not None,
        },
    )


@dataclass(frozen=True)
class Preview:
    """What the browser's Data column shows of a task: its first image, as a thumbnail, and its first
    text. A stored image is a ``media:<id>`` reference, which means nothing to a reader."""

    text: str = ""
    image_src: str | None = None
    image_alt: str = ""


def preview(project: dict[str, Any], data: dict[str, Any]) -> Preview:
    """The task's first stored image (a thumbnail from the media route, which checks the session)
    and its first text value that is not a media reference."""
    image_src, image_alt = None, ""
    for spec_field in project["spec"].get("fields", []):
        value = data.get(spec_field["name"])
        if spec_field.get("type") == "image" and isinstance(value, str) and value.startswith(MEDIA_PREFIX):
            image_src = f"/api/v1/media/{quote(value.removeprefix(MEDIA_PREFIX), safe='')}"
            image_alt = f"{spec_field['name']} (image)"
            break
    texts = (v for v in data.values() if isinstance(v, str) and not v.startswith(MEDIA_PREFIX))
    return Preview(next(texts, ""), image_src, image_alt)


def _filters(project_id: str, form: BrowserForm) -> tuple[tasks.TaskFilter, str]:
    """The form as a TaskFilter and a sort; what cannot be read goes to ``form.errors`` by field."""
    v = form.values
    filters = tasks.TaskFilter(project_id=project_id, batch_id=v["batch"] or None, worker_id=v["worker"] or None)
    if v["status"]:
        if v["status"] in {str(s) for s in TaskStatus}:
            filters.status = TaskStatus(v["status"])
        else:
            form.errors["status"] = f"status must be one of {', '.join(str(s) for s in TaskStatus)}"
    for name in ("min_confidence", "max_confidence"):
        if v[name]:
            number = _fraction(v[name])
            if number is None:
                form.errors[name] = f"{name.replace('_', ' ')} must be a number from 0 to 1"
            setattr(filters, name, number)
    filters.gold = {"yes": True, "no": False}.get(v["gold"])
    if v["review"] == "none":
        filters.unreviewed = True
    elif v["review"] in {str(s) for s in ReviewStatus}:
        filters.review_status = ReviewStatus(v["review"])
    elif v["review"]:
        form.errors["review"] = f"review must be one of {', '.join(REVIEW_CHOICES)}"
    for line in v["meta"].split(","):
        if line.strip():
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                form.errors["meta"] = "metadata filters are key=value, separated by commas"
                break
            filters.metadata[key.strip()] = value.strip()
    filters.search = v["q"] or None
    sort = v["sort"] or "created"
    if sort not in task_browse.SORTS:
        form.errors["sort"] = f"sort must be one of {', '.join(task_browse.SORTS)}"
        sort = "created"
    return filters, sort


def _fraction(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if 0 <= number <= 1 else None


def _api_filter(filters: tasks.TaskFilter) -> dict[str, Any]:
    """The filter as the bulk action API takes it (``TaskBulkFilter``): "every task matching"."""
    body: dict[str, Any] = {
        "status": str(filters.status) if filters.status else None,
        "batch_id": filters.batch_id,
        "min_confidence": filters.min_confidence,
        "max_confidence": filters.max_confidence,
        "worker_id": filters.worker_id,
        "gold": filters.gold,
        "review_status": str(filters.review_status) if filters.review_status else None,
        "unreviewed": filters.unreviewed or None,
        "metadata": filters.metadata or None,
        "search": filters.search,
    }
    return {key: value for key, value in body.items() if value is not None}


def _batches(db: Any, info: session.SessionInfo, project_id: str) -> list[dict[str, Any]]:
    return task_browse.batch_choices(db, info.principal, project_id, limit=200)


def _workers(db: Any, info: session.SessionInfo) -> list[dict[str, Any]]:
    if not allowed(info.principal, Action.READ_MEMBERS):
        return []
    rows, _ = accounts.list_workers(db, info.principal, cursor=None, limit=WORKER_CHOICES)
    return rows


# --- one task ---------------------------------------------------------------------------------------

#: What each history step says in words (its stored data stays on the page, folded, as stored).
STEP_WORDS = {
    "created": "Task created",
    "leased": "Leased to a worker",
    "lease_skipped": "The worker skipped it",
    "lease_released": "The worker released it",
    "lease_expired": "The lease expired",
    "response": "Answered",
    "prediction": "Predicted by a model",
    "completed": "Completed",
    "overlap_raised": "One more judgment asked",
    "refit_changed": "The quality model's refit changed the result",
    "review_requested": "Sent to review",
    "review_claimed": "A reviewer took it",
    "review_skipped": "A reviewer skipped it",
    "reviewed": "Reviewed",
    "gold_marked": "Marked gold",
    "gold_unmarked": "Gold mark removed",
    "requeued": "Re-queued by a manager",
    "canceled": "Canceled by a manager",
    # auto-labeling (docs/models.md, "Auto-labeling and audits")
    "auto_labeled": "Auto-labeled by a model, without people",
    "auto_label_audit": "Left to people as an audit of a model",
    "audit_outcome": "Audit outcome",
    "auto_label_reopened": "Sent back to people: the model that auto-labeled it was paused",
}


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str, back: str | None = None) -> Response:
    """One task: its data as the worker saw it, every response (worker, time, duration), the result
    with confidence and method per question, its reviews, and its history in words."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info, db = guarded.info, _db(request)
    try:
        task = tasks.get_task(db, info.principal, task_id)
        project = projects.get_project(db, info.principal, task["project_id"])
        steps = history.task_history(db, info.principal, task_id)
        reviews = review.list_reviews(db, info.principal, task_id)
        spec = CompiledSpec(project["spec"])
    except TruthsetError as exc:
        return _failure(request, exc)
    # as compiled (labels as {value, label}, defaults filled): the page's module describes answers
    configs = [{**q.model_dump(mode="json"), "group": q.group} for q in spec.questions]
    browser = f"/projects/{project['id']}/tasks"
    return page(
        request,
        "task.html",
        task=task,
        project=project,
        questions=_result_rows(task, configs),
        auto_label=_auto_label_note(task, steps),
        configs=configs,
        steps=[{**step, "words": _step_words(step)} for step in steps],
        responses=[step for step in steps if step["kind"] == "response"],
        predictions=_prediction_rows(steps),
        reviews=reviews,
        back=back if back and back.startswith(browser) and _safe_next(back) == back else browser,
        may_manage=allowed(info.principal, Action.MANAGE_TASKS),
        task_config={
            "task_id": task["id"],
            "questions": configs,
            "data": task["data"],
            "fields": [f.model_dump(mode="json") for f in spec.fields],
        },
    )


def _prediction_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task's predictions (docs/models.md), one row per model version and question."""
    rows = []
    for step in steps:
        if step["kind"] != "prediction":
            continue
        model, _, version = (step["worker_name"] or "").partition("@")
        scores = step["data"].get("scores") or {}
        for question, answer in (step["data"].get("answer") or {}).items():
            rows.append(
                {"at": step["at"], "model": model, "version": version, "question": question, "answer": answer}
                | {"score": scores.get(question)}
            )
    return rows


def _auto_label_note(task: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who auto-labeled the task and the verified record it rested on (docs/models.md), or None."""
    record = (task["result"] or {}).get("auto_label")
    if not isinstance(record, dict):
        return None
    labeled = [s for s in steps if s["kind"] == "auto_labeled" and s["worker_id"] == record.get("worker_id")]
    low, high = record.get("verified_interval") or (None, None)
    return {
        "model": labeled[-1]["worker_name"] if labeled else record.get("worker_id"),
        "verified": record.get("verified_tasks"),
        "accuracy": record.get("verified_accuracy"),
        "low": low,
        "high": high,
    }


def _result_rows(task: dict[str, Any], configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = task["result"] or {}
    answers, people = result.get("answer") or {}, result.get("people_answer")
    rows = []
    for q in configs:
        row = {
            "name": q["name"],
            "answer": answers.get(q["name"]),
            "confidence": (result.get("confidence") or {}).get(q["name"]),
            "method": (result.get("methods") or {}).get(q["name"]),
        }
        # where a model's vote counted and people alone answer otherwise (or tie), say so
        if isinstance(people, dict) and q["name"] in people and people[q["name"]] != row["answer"]:
            row["people_alone"] = {"answer": people[q["name"]]}
        rows.append(row)
    return rows


def _step_words(step: dict[str, Any]) -> str:
    """A step's details in words: who, what changed (answer changes are described by task.js)."""
    data = step["data"] or {}
    words = STEP_WORDS.get(step["kind"], step["kind"].replace("_", " ").capitalize())
    if step["kind"] == "reviewed":
        words = f"Reviewed: {data.get('verdict', '?')}" + (f" ({data['reason']})" if data.get("reason") else "")
    elif step["kind"] == "response" and data.get("duration_ms") is not None:
        words += f" in {data['duration_ms'] / 1000:.1f} s" + (" (a reviewer's fix)" if data.get("review_fix") else "")
    if step["kind"] == "response" and data.get("prefill"):  # which pre-filled predictions were kept
        kept = [f"{q} {'kept' if p.get('accepted') else 'changed'}" for q, p in sorted(data["prefill"].items())]
        words += " · pre-filled: " + ", ".join(kept)
    elif step["kind"] in ("completed", "overlap_raised") and isinstance(data.get("confidence"), int | float):
        words += f" · confidence {data['confidence']:.0%}"
    elif step["kind"] == "refit_changed" and isinstance(data.get("confidence"), dict):
        before, after = data["confidence"].get("from"), data["confidence"].get("to")
        if isinstance(before, int | float) and isinstance(after, int | float):
            words += f" · confidence {before:.0%} → {after:.0%}"
    elif step["kind"] == "requeued":
        words += f" · now {data.get('to_status')}, {data.get('overlap')} judgments in all"
    elif step["kind"] == "overlap_raised" and data.get("overlap"):
        words += f" · {data['overlap']} in all"
    elif step["kind"] == "audit_outcome":
        verdict = {True: "people agreed with the model", False: "people disagreed with the model"}
        words += " · " + verdict.get(data.get("agreed"), "people tied: no verdict")
    elif step["kind"] == "auto_label_reopened" and data.get("reason"):
        words += f" ({data['reason']})"
    return words
