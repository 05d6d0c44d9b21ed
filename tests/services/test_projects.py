"""Projects: spec validation, create, read, update, archive, permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from truthset.domain import Role
from truthset.errors import Conflict, Forbidden, NotFound
from truthset.schemas import ProjectCreate, ProjectUpdate
from truthset.services import projects, queue

if TYPE_CHECKING:
    from conftest import Org

TEXT_FIELD = [{"name": "text", "type": "text"}]


def _spec(questions: list[dict[str, Any]], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"fields": fields or TEXT_FIELD, "questions": questions}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        (_spec([{"name": "q", "type": "label", "options": ["only"]}]), "questions[0].options"),
        (_spec([{"name": "q", "type": "label", "options": ["a", "a"]}]), "questions[0].options"),
        (
            _spec([{"name": "ok", "type": "text"}, {"name": "q", "type": "labels", "options": []}]),
            "questions[1].options",
        ),
        (_spec([{"name": "q", "type": "bogus"}]), "questions[0].type"),
        (_spec([{"name": "q"}]), "questions[0].type"),
        (_spec([{"name": "q", "type": "text", "colour": "red"}]), "questions[0].colour"),
        (_spec([{"name": "has space", "type": "text"}]), "questions[0].name"),
        (_spec([{"name": "q", "type": "rating", "min": 5, "max": 1}]), "questions[0]: max must be greater than min"),
        (_spec([{"name": "q", "type": "text"}, {"name": "q", "type": "text"}]), "duplicate question names: q"),
        (
            _spec([{"name": "q", "type": "text"}], [{"name": "a", "type": "text"}, {"name": "a", "type": "html"}]),
            "duplicate field names: a",
        ),
        (_spec([{"name": "q", "type": "text"}], [{"name": "a", "type": "video"}]), "fields.0.type"),
        (_spec([]), "questions"),
    ],
)
def test_bad_spec_names_the_bad_field(spec: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ProjectCreate.model_validate({"name": "p", "spec": spec})
    errors = exc.value.errors()
    text = " ".join(".".join(str(p) for p in e["loc"]) + " " + e["msg"] for e in errors)
    assert named in text, text


def test_unknown_question_type_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as exc:
        ProjectCreate.model_validate({"name": "p", "spec": _spec([{"name": "q", "type": "bogus"}])})
    message = exc.value.errors()[0]["msg"]
    assert "'bogus'" in message and "label" in message and "rating" in message


def test_create_and_get_project(org: Org) -> None:
    project = org.make_project(overlap=3, lease_seconds=120, name="Sentiment", instructions="Be kind")
    assert project["name"] == "Sentiment" and project["instructions"] == "Be kind"
    assert project["quality"]["min_overlap"] == project["quality"]["max_overlap"] == 3
    assert project["lease_seconds"] == 120
    assert [q["name"] for q in project["spec"]["questions"]] == ["sentiment", "stars"]
    fetched = projects.get_project(org.db, org.principal_for(Role.ANNOTATOR), project["id"])
    assert fetched["id"] == project["id"] and fetched["spec"] == project["spec"]
    assert fetched["quality"] == project["quality"]


def test_default_lease_and_overlap(org: Org, default_spec: dict[str, Any]) -> None:
    data = ProjectCreate.model_validate({"name": "p", "spec": default_spec})
    project = projects.create_project(org.db, org.owner.principal, data, default_lease_seconds=77)
    assert project["lease_seconds"] == 77
    assert projects.project_overlap(project) == 1


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ANNOTATOR])
def test_only_managers_create_and_update_projects(org: Org, role: Role, default_spec: dict[str, Any]) -> None:
    principal = org.principal_for(role)
    with pytest.raises(Forbidden):
        projects.create_project(org.db, principal, ProjectCreate.model_validate({"name": "p", "spec": default_spec}))
    project = org.make_project()
    with pytest.raises(Forbidden):
        projects.update_project(org.db, principal, project["id"], ProjectUpdate(name="mine"))
    assert projects.get_project(org.db, principal, project["id"])["name"] == project["name"]


def test_manager_creates_projects(org: Org, default_spec: dict[str, Any]) -> None:
    manager = org.principal_for(Role.MANAGER)
    data = ProjectCreate.model_validate({"name": "m", "spec": default_spec})
    project = projects.create_project(org.db, manager, data)
    assert projects.get_project(org.db, manager, project["id"])["name"] == "m"


def test_get_missing_project(org: Org) -> None:
    with pytest.raises(NotFound):
        projects.get_project(org.db, org.owner.principal, "0" * 24)


def test_update_project(org: Org) -> None:
    project = org.make_project(overlap=1)
    updated = projects.update_project(
        org.db,
        org.owner.principal,
        project["id"],
        ProjectUpdate(name="renamed", instructions="new", quality={"overlap": 5}, lease_seconds=30),
    )
    assert updated["updated_at"] >= project["updated_at"]
    stored = projects.get_project(org.db, org.owner.principal, project["id"])
    assert stored["name"] == "renamed" and stored["instructions"] == "new"
    assert stored["quality"]["max_overlap"] == 5 and stored["lease_seconds"] == 30
    assert stored["description"] == project["description"]  # untouched
    assert stored["spec"] == project["spec"]


def test_an_updated_spec_is_validated_like_a_new_one(default_spec: dict[str, Any]) -> None:
    """The spec may change (within the editing rules, services/spec_changes.py); an invalid one is refused."""
    assert ProjectUpdate.model_validate({"spec": default_spec}).spec is not None
    broken = {**default_spec, "questions": [{"name": "q", "type": "nope"}]}
    with pytest.raises(ValidationError) as exc:
        ProjectUpdate.model_validate({"spec": broken})
    assert exc.value.errors()[0]["loc"][0] == "spec"


def test_archive_hides_the_project_and_closes_its_queue(org: Org) -> None:
    kept = org.make_project(name="kept")
    archived = org.make_project(name="archived")
    org.make_tasks(archived["id"], 2)
    projects.update_project(org.db, org.owner.principal, archived["id"], ProjectUpdate(archived=True))

    listed, _ = projects.list_projects(org.db, org.owner.principal, cursor=None, limit=10)
    assert [p["id"] for p in listed] == [kept["id"]]
    everything, _ = projects.list_projects(org.db, org.owner.principal, cursor=None, limit=10, include_archived=True)
    assert [p["id"] for p in everything] == [kept["id"], archived["id"]]
    assert projects.get_project(org.db, org.owner.principal, archived["id"])["archived_at"] is not None

    annotator = org.principal_for(Role.ANNOTATOR)
    with pytest.raises(Conflict):
        queue.next_assignment(org.db, annotator, archived["id"])

    projects.update_project(org.db, org.owner.principal, archived["id"], ProjectUpdate(archived=False))
    assert projects.get_project(org.db, org.owner.principal, archived["id"])["archived_at"] is None
    assert queue.next_assignment(org.db, annotator, archived["id"]) is not None


def test_list_projects_pages(org: Org) -> None:
    made = [org.make_project()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = projects.list_projects(org.db, org.owner.principal, cursor=cursor, limit=2)
        assert len(page) <= 2
        seen.extend(p["id"] for p in page)
        if cursor is None:
            break
    assert seen == made
