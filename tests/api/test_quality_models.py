"""`GET /projects/{id}/quality-models`: the fitted worker models a project's results come from."""

from __future__ import annotations

from typing import Any

from truthset.schemas import ResponseCreate
from truthset.services import queue, refit

from .helpers import API, Api, Org, assert_error

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative"]},
        {"name": "tags", "type": "labels", "options": ["urgent", "refund"], "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
    ],
}


def _answered(org: Org, tasks: int = 12) -> dict[str, Any]:
    """A project whose tasks two workers answered alike: 24 answers to each question."""
    project = org.make_project(spec=SPEC, overlap=2)
    workers = [org.add_member("annotator") for _ in range(2)]
    for n, task in enumerate(org.make_tasks(project["id"], tasks)):
        sentiment, tags = "positive" if n % 3 else "negative", ["urgent"] if n % 2 else []
        answer = {"sentiment": sentiment, "tags": tags, "stars": 1 + n % 5}
        for worker in workers:
            queue.submit(org.db, worker.principal, task["id"], ResponseCreate(answer=answer))
    return project


def test_each_fitted_key_with_its_version_method_and_calibration(api: Api, org: Org) -> None:
    project = _answered(org)
    url = f"{API}/projects/{project['id']}/quality-models"
    before = api.get(url, auth=org.owner)
    assert before.status_code == 200 and before.json() == {"project_id": project["id"], "items": []}

    report = refit.refit_project(org.db, org.id, project["id"])
    body = api.get(url, auth=org.owner).json()
    models = {m["key"]: m for m in body["items"]}
    assert list(models) == sorted(report["fitted"])  # in key order
    assert set(models) == {"sentiment", "stars", "tags[refund]", "tags[urgent]"}
    sentiment, stars, urgent = models["sentiment"], models["stars"], models["tags[urgent]"]
    assert (sentiment["question"], sentiment["version"], sentiment["method"]) == ("sentiment", 1, "dawid_skene")
    assert (sentiment["responses"], sentiment["tasks"], sentiment["workers"]) == (24, 12, 2)
    assert sentiment["temperature"] == report["fitted"]["sentiment"]["temperature"]
    assert sentiment["gold_tasks"] == 0 and sentiment["shared_sd"] is None and sentiment["fitted_at"]
    assert (urgent["question"], urgent["method"]) == ("tags", "dawid_skene")
    assert (stars["method"], stars["temperature"], stars["gold_tasks"]) == ("worker_variance", None, 0)
    assert stars["shared_sd"] == report["fitted"]["stars"]["shared_sd"]

    refit.refit_project(org.db, org.id, project["id"])
    again = {m["key"]: m for m in api.get(url, auth=org.owner).json()["items"]}
    assert {key: m["version"] for key, m in again.items()} == dict.fromkeys(models, 2)  # the current version only


def test_managers_read_them_and_other_organizations_cannot_see_the_project(api: Api, org: Org, other_org: Org) -> None:
    project = _answered(org)
    refit.refit_project(org.db, org.id, project["id"])
    url = f"{API}/projects/{project['id']}/quality-models"
    assert api.get(url, auth=org.actor("manager")).status_code == 200
    assert_error(api.get(url, auth=org.actor("annotator")), 403, "forbidden")
    assert_error(api.get(url, auth=other_org.owner), 404, "not_found")
    assert_error(api.get(url), 401)
