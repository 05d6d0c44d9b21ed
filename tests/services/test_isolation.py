"""Tenant isolation at the service level: another organization's objects are simply not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from truthset.domain import Principal, Role
from truthset.errors import NotFound
from truthset.schemas import ApiKeyCreate, BatchCreate, MemberUpdate, ProjectUpdate, ResponseCreate, TaskCreate
from truthset.services import accounts, projects, queue, tasks
from truthset.services.tasks import TaskFilter
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org


def _rows_of(org: Org) -> dict[str, list[dict[str, Any]]]:
    """Every row that belongs to ``org``, table by table (to prove nothing changed)."""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    with org.db.read() as conn:
        orgs = conn.execute(select(t.organizations).where(t.organizations.c.id == org.id)).mappings()
        snapshot["organizations"] = [dict(r) for r in orgs]
        for table in t.TENANT_TABLES:
            rows = conn.execute(select(table).where(table.c.organization_id == org.id).order_by(table.c.id)).mappings()
            snapshot[table.name] = [dict(r) for r in rows]
    return snapshot


@pytest.fixture
def victim(org: Org) -> dict[str, Any]:
    """Org A with one of everything: project, open and finalized batch, tasks, a lease, a response."""
    project = org.make_project(overlap=2)
    open_batch = org.make_batch(project["id"], name="open")
    org.make_tasks(project["id"], 1, batch_id=open_batch["id"])
    batch = org.make_batch(project["id"], name="final")
    task, answered = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    annotator = org.actor(Role.ANNOTATOR)
    lease = queue.next_assignment(org.db, annotator.principal, project["id"])
    assert lease is not None and lease["task"]["id"] == task["id"]
    queue.submit(org.db, org.owner.principal, answered["id"], ResponseCreate(answer={"sentiment": "positive"}))
    return {
        "project": project,
        "batch": batch,
        "open_batch": open_batch,
        "task": task,
        "answered": answered,
        "assignment": lease,
        "member": annotator.member,
        "key_id": annotator.principal.api_key_id,
    }


def _attempts(a: dict[str, Any], own_project_id: str) -> dict[str, Callable[[Any, Principal], object]]:
    """Every call a principal could make on org A's objects, by name."""
    project_id, task_id = a["project"]["id"], a["task"]["id"]
    answer = ResponseCreate(answer={"sentiment": "negative"})
    return {
        "get_project": lambda db, p: projects.get_project(db, p, project_id),
        "update_project": lambda db, p: projects.update_project(db, p, project_id, ProjectUpdate(name="mine")),
        "archive_project": lambda db, p: projects.update_project(db, p, project_id, ProjectUpdate(archived=True)),
        "create_batch": lambda db, p: projects.create_batch(db, p, project_id, BatchCreate(name="intruder")),
        "list_batches": lambda db, p: projects.list_batches(db, p, project_id, cursor=None, limit=10),
        "get_batch": lambda db, p: projects.get_batch(db, p, a["batch"]["id"]),
        "finalize_batch": lambda db, p: projects.finalize_batch(db, p, a["open_batch"]["id"]),
        "cancel_batch": lambda db, p: projects.cancel_batch(db, p, a["batch"]["id"]),
        "create_task": lambda db, p: tasks.create_task(db, p, project_id, TaskCreate(data={"text": "x"})),
        "create_task_in_their_batch": lambda db, p: tasks.create_task(
            db, p, own_project_id, TaskCreate(data={"text": "x"}, batch_id=a["open_batch"]["id"])
        ),
        "import_tasks": lambda db, p: tasks.import_tasks(
            db, p, project_id, [(1, {"data": {"text": "x"}})], on_error="skip"
        ),
        "import_into_their_batch": lambda db, p: tasks.import_tasks(
            db, p, own_project_id, [(1, {"data": {"text": "x"}})], batch_id=a["open_batch"]["id"], on_error="skip"
        ),
        "get_task": lambda db, p: tasks.get_task(db, p, task_id),
        "cancel_task": lambda db, p: tasks.cancel_task(db, p, task_id),
        "task_responses": lambda db, p: tasks.task_responses(db, p, a["answered"]["id"]),
        "next_assignment": lambda db, p: queue.next_assignment(db, p, project_id),
        "skip": lambda db, p: queue.skip(db, p, a["assignment"]["id"]),
        "release": lambda db, p: queue.release(db, p, a["assignment"]["id"]),
        "submit": lambda db, p: queue.submit(db, p, task_id, answer),
        "submit_with_their_lease": lambda db, p: queue.submit(
            db, p, task_id, ResponseCreate(answer={"sentiment": "neutral"}, assignment_id=a["assignment"]["id"])
        ),
        "get_member": lambda db, p: accounts.get_member(db, p, a["member"]["id"]),
        "update_member": lambda db, p: accounts.update_member(db, p, a["member"]["id"], MemberUpdate(disabled=True)),
        "promote_member": lambda db, p: accounts.update_member(db, p, a["member"]["id"], MemberUpdate(role=Role.OWNER)),
        "create_key": lambda db, p: accounts.create_key(db, p, ApiKeyCreate(member_id=a["member"]["id"])),
        "revoke_key": lambda db, p: accounts.revoke_key(db, p, a["key_id"]),
    }


def _outcome(attempt: Callable[[Any, Principal], object], db: Any, principal: Principal) -> str:
    try:
        attempt(db, principal)
    except Exception as exc:
        return type(exc).__name__
    return "no error"


@pytest.mark.parametrize("role", list(Role))
def test_another_organization_gets_not_found_and_changes_nothing(
    org: Org, other_org: Org, victim: dict[str, Any], role: Role
) -> None:
    intruder = other_org.principal_for(role)
    own_project = other_org.make_project()
    missing = {
        key: {"id": f"{n:024x}"} if isinstance(value, dict) else f"{n:024x}"
        for n, (key, value) in enumerate(victim.items(), start=1)
    }
    foreign_attempts = _attempts(victim, own_project["id"])
    missing_attempts = _attempts(missing, own_project["id"])
    before = _rows_of(org)
    for name, attempt in foreign_attempts.items():
        foreign = _outcome(attempt, org.db, intruder)
        # exactly like a missing object: the same error, whatever the intruder's role
        assert foreign == _outcome(missing_attempts[name], org.db, intruder), name
        if role is Role.OWNER:  # an owner may do everything, so only "not found" is left
            assert foreign == "NotFound", name
        else:
            assert foreign in ("NotFound", "Forbidden"), name
    assert _rows_of(org) == before
    # and nothing of A leaked into B
    assert tasks.list_tasks(org.db, other_org.owner.principal, TaskFilter(), cursor=None, limit=100)[0] == []


def test_lists_show_only_the_callers_organization(org: Org, other_org: Org, victim: dict[str, Any]) -> None:
    b = other_org.owner.principal
    own_project = other_org.make_project()
    own_task = other_org.make_task(own_project["id"])
    assert [p["id"] for p in projects.list_projects(org.db, b, cursor=None, limit=100, include_archived=True)[0]] == [
        own_project["id"]
    ]
    assert [x["id"] for x in tasks.list_tasks(org.db, b, TaskFilter(), cursor=None, limit=100)[0]] == [own_task["id"]]
    assert tasks.list_tasks(org.db, b, TaskFilter(project_id=victim["project"]["id"]), cursor=None, limit=100)[0] == []
    members, _ = accounts.list_members(org.db, b, cursor=None, limit=100)
    assert {m["organization_id"] for m in members} == {other_org.id}
    keys, _ = accounts.list_keys(org.db, b, cursor=None, limit=100)
    assert {k["organization_id"] for k in keys} == {other_org.id}
    workers, _ = accounts.list_workers(org.db, b, cursor=None, limit=100)
    assert {w["organization_id"] for w in workers} == {other_org.id}
    assert accounts.me(org.db, b)["organization_id"] == other_org.id


def test_a_missing_id_and_a_foreign_id_look_the_same(org: Org, other_org: Org, victim: dict[str, Any]) -> None:
    b = other_org.owner.principal
    with pytest.raises(NotFound) as foreign:
        tasks.get_task(org.db, b, victim["task"]["id"])
    with pytest.raises(NotFound) as missing:
        tasks.get_task(org.db, b, "f" * 24)
    assert foreign.value.code == missing.value.code == "not_found"
    assert foreign.value.message.replace(victim["task"]["id"], "ID") == missing.value.message.replace("f" * 24, "ID")
