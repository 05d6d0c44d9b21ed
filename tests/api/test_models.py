"""The built-in model over HTTP: POST /projects/{id}/models queues a model.train job (managers and up),
a runner trains it, GET /projects/{id}/models lists the versions (keyset pages); other organizations
see nothing of them."""

from __future__ import annotations

from typing import Any

import pytest

from learners.synthetic import tickets
from truthset.config import Settings
from truthset.domain import Role
from truthset.jobs import Runner
from truthset.services import model_training, tasks

from .helpers import API, Api, Org, assert_error

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "topic", "type": "label", "options": ["billing", "shipping", "bug"]}],
}


def _labeled_project(api: Api, org: Org, labeled: int = 60, waiting: int = 6) -> dict[str, Any]:
    project = org.make_project(spec=SPEC, quality={"overlap": 1})
    examples, labels = tickets(labeled + waiting, seed=5, noise=0.0)
    items = [(i + 1, {"data": dict(task.data), "unique_id": task.key}) for i, task in enumerate(examples)]
    tasks.import_tasks(org.db, org.owner.principal, project["id"], items)
    ids = {task["unique_id"]: task["id"] for task in org.all_tasks()}
    person = org.add_member()
    for task, label in zip(examples[:labeled], labels[:labeled], strict=True):
        body = {"answer": {"topic": label}}
        response = api.post(f"{API}/tasks/{ids[task.key]}/responses", auth=person, json=body)
        assert response.status_code in (200, 201), response.text
    return project


def _run(org: Org, settings: Settings) -> int:
    return Runner(org.db, kinds=[model_training.KIND], settings=settings).run_until_idle()


def test_a_manager_trains_a_model_and_lists_its_versions(api: Api, org: Org, settings: Settings) -> None:
    project = _labeled_project(api, org)
    manager = org.actor(Role.MANAGER)
    started = api.post(f"{API}/projects/{project['id']}/models", auth=manager, json={"question": "topic"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "model.train" and job["status"] == "queued"
    assert job["payload"] == {"project_id": project["id"], "question": "topic"}
    assert _run(org, settings) == 1

    done = api.get(f"{API}/jobs/{job['id']}", auth=manager).json()
    assert done["status"] == "succeeded", done
    assert done["result"]["status"] == "trained" and done["result"]["predictions"]["stored"] == 6
    listed = api.get(f"{API}/projects/{project['id']}/models", auth=manager)
    assert listed.status_code == 200, listed.text
    (model,) = listed.json()["items"]
    assert model["version"] == done["result"]["version"] and model["model"] == f"truthset-text@{model['version']}"
    assert model["metrics"]["accuracy"] > model["metrics"]["baseline_accuracy"]
    assert "path" not in model and len(model["sha256"]) == 64
    assert listed.json()["next_cursor"] is None


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_below_manager_neither_trains_nor_lists(api: Api, org: Org, role: Role) -> None:
    project = org.make_project(spec=SPEC)
    member = org.actor(role)
    refused = api.post(f"{API}/projects/{project['id']}/models", auth=member, json={"question": "topic"})
    assert_error(refused, 403)
    assert_error(api.get(f"{API}/projects/{project['id']}/models", auth=member), 403)


def test_another_organization_sees_no_project_and_no_models(
    api: Api, org: Org, other_org: Org, settings: Settings
) -> None:
    project = _labeled_project(api, org, waiting=0)
    assert api.post(f"{API}/projects/{project['id']}/models", auth=org.owner, json={"question": "topic"}).is_success
    _run(org, settings)
    assert_error(
        api.post(f"{API}/projects/{project['id']}/models", auth=other_org.owner, json={"question": "topic"}), 404
    )
    assert_error(api.get(f"{API}/projects/{project['id']}/models", auth=other_org.owner), 404)
    own = other_org.make_project(spec=SPEC)
    assert api.get(f"{API}/projects/{own['id']}/models", auth=other_org.owner).json()["items"] == []


def test_a_question_that_is_no_label_question_is_refused_by_name(api: Api, org: Org) -> None:
    project = org.make_project()  # sentiment (label) and stars (rating)
    for question in ("stars", "nope"):
        body = assert_error(
            api.post(f"{API}/projects/{project['id']}/models", auth=org.owner, json={"question": question}), 422
        )
        assert "question" in str(body)
    assert_error(api.post(f"{API}/projects/{project['id']}/models", auth=org.owner, json={}), 422)


def test_asking_twice_while_a_job_waits_returns_that_job(api: Api, org: Org) -> None:
    project = org.make_project()
    first = api.post(f"{API}/projects/{project['id']}/models", auth=org.owner, json={"question": "sentiment"}).json()
    again = api.post(f"{API}/projects/{project['id']}/models", auth=org.owner, json={"question": "sentiment"}).json()
    assert again["id"] == first["id"]
