"""The project dashboard's figures (GET /projects/{id}/dashboard): worked out by hand, roles, tenants."""

from __future__ import annotations

from typing import Any

import pytest

from truthset.schemas import ResponseCreate
from truthset.services import queue

from .helpers import API, Actor, Api, Org, assert_error
from .test_session import sign_in

POS, NEG = "positive", "negative"


def _answer(org: Org, actor: Actor, task: dict[str, Any], sentiment: str, duration_ms: int | None = None) -> None:
    answer = ResponseCreate(answer={"sentiment": sentiment}, duration_ms=duration_ms)
    queue.submit(org.db, actor.principal, task["id"], answer)


def _labeled(org: Org, **quality: Any) -> tuple[dict[str, Any], Actor, Actor]:
    """Five tasks, overlap 2: A and B agree on 3, disagree on 1; the fifth task has no answer."""
    project = org.make_project(quality={"overlap": 2, **quality})
    tasks = org.make_tasks(project["id"], 5)
    a, b = org.add_member("annotator", name="Ann"), org.add_member("annotator", name="Bob")
    for task, (x, y) in zip(tasks, [(POS, POS), (NEG, NEG), (POS, POS), (POS, NEG)], strict=False):
        _answer(org, a, task, x, duration_ms=1000)
        _answer(org, b, task, y, duration_ms=3000)
    return project, a, b


def test_the_figures_of_a_small_project(api: Api, org: Org) -> None:
    project, a, b = _labeled(org, price_per_judgment=0.25)
    response = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.actor("manager"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["progress"] == {"staged": 0, "pending": 1, "completed": 4, "canceled": 0, "gold": 0, "total": 5}
    # judgments per task: one task with 0, four with 2 (the last bin is "10 or more")
    bins = {row["judgments"]: row["tasks"] for row in body["judgments"]}
    assert bins[0] == 1 and bins[2] == 4 and sum(bins.values()) == 5 and max(bins) == 10
    confidence = body["confidence"]
    assert len(confidence) == 10 and confidence[0]["low"] == 0 and confidence[-1]["high"] == 1
    assert sum(row["tasks"] for row in confidence) == 4 and body["without_confidence"] == 1
    # throughput: all 8 responses arrived within the current hour, the last of 48 buckets
    points = body["throughput"]["points"]
    assert body["throughput"]["interval"] == "hour" and len(points) == 48
    assert points[-1]["responses"] == 8 and sum(p["responses"] for p in points) == 8
    # agreement on the sample: 4 tasks with two answers, 3 agree
    (sentiment,) = [q for q in body["agreement"] if q["question"] == "sentiment"]
    assert sentiment["tasks"] == 4 and sentiment["percent_agreement"] == pytest.approx(0.75)
    assert body["sample_tasks"] == 4 and sentiment["measures"] == {}  # categories: no figures of its own
    workers = {w["worker_id"]: w for w in body["workers"]["items"]}
    assert set(workers) == {a.worker_id, b.worker_id} and body["workers"]["next_cursor"] is None
    assert workers[a.worker_id]["responses"] == 4 and workers[a.worker_id]["mean_duration_ms"] == 1000
    assert workers[b.worker_id]["mean_duration_ms"] == 3000 and workers[a.worker_id]["name"] == "Ann"
    assert workers[a.worker_id]["gold_accuracy"] is None and workers[a.worker_id]["status"] is None
    assert body["cost"] == {"judgments": 8, "price_per_judgment": 0.25, "total": 2.0}


def test_each_workers_estimated_accuracy_leaves_their_own_answer_out(api: Api, org: Org) -> None:
    """Four tasks, overlap 3 (as in test_quality_figures): A pos pos neg pos, B pos pos neg neg, C pos neg neg neg.
    Against the other two when they agree: A 2 of 3 (t1, t3 right; t4 wrong), B 2 of 2, C 2 of 3."""
    project = org.make_project(quality={"overlap": 3})
    tasks = org.make_tasks(project["id"], 4)
    votes = {"A": [POS, POS, NEG, POS], "B": [POS, POS, NEG, NEG], "C": [POS, NEG, NEG, NEG]}
    workers = {name: org.add_member("annotator", name=name) for name in votes}
    for name, labels in votes.items():
        for task, label in zip(tasks, labels, strict=True):
            _answer(org, workers[name], task, label)
    body = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()
    figures = {w["name"]: w for w in body["workers"]["items"]}
    got = {name: (f["estimated_accuracy"], f["scored_answers"]) for name, f in figures.items()}
    assert got == {"A": (pytest.approx(2 / 3, abs=1e-6), 3), "B": (1.0, 2), "C": (pytest.approx(2 / 3, abs=1e-6), 3)}
    low, high = figures["B"]["accuracy_interval"]
    assert 0 < low < high == 1.0  # two answers: a wide interval


def test_daily_throughput_and_no_price(api: Api, org: Org) -> None:
    project, _, _ = _labeled(org)
    body = api.get(f"{API}/projects/{project['id']}/dashboard?interval=day", auth=org.owner).json()
    points = body["throughput"]["points"]
    assert len(points) == 30 and points[-1]["responses"] == 8 and points[-1]["start"].endswith("00:00:00Z")
    assert body["cost"] == {"judgments": 8, "price_per_judgment": None, "total": None}


def test_the_worker_table_pages_by_keyset(api: Api, org: Org) -> None:
    project, a, b = _labeled(org)
    url = f"{API}/projects/{project['id']}/dashboard?workers_limit=1"
    first = api.get(url, auth=org.owner).json()["workers"]
    assert len(first["items"]) == 1 and first["next_cursor"] == first["items"][0]["worker_id"]
    second = api.get(f"{url}&workers_cursor={first['next_cursor']}", auth=org.owner).json()["workers"]
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert {first["items"][0]["worker_id"], second["items"][0]["worker_id"]} == {a.worker_id, b.worker_id}


def test_a_worker_paused_by_gold_shows_with_gold_accuracy_and_interval(api: Api, org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "gold": {"qualification": 2, "min_accuracy": 0.6}})
    made = org.make_tasks(project["id"], 6)
    truth = {task["id"]: POS for task in made[:3]}
    for task_id in truth:
        body = {"answer": {"sentiment": POS}}
        assert api.request("PUT", f"{API}/tasks/{task_id}/gold", auth=org.owner, json=body).status_code == 200
    worker = org.actor("annotator")
    for _ in range(2):  # the qualification set, both wrong
        lease = api.post(f"{API}/projects/{project['id']}/next", auth=worker).json()
        answer = {"answer": {"sentiment": NEG}, "assignment_id": lease["id"]}
        assert api.post(f"{API}/tasks/{lease['task']['id']}/responses", auth=worker, json=answer).status_code == 201
    (row,) = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()["workers"]["items"]
    assert row["worker_id"] == worker.worker_id and row["status"] == "paused" and row["gold_answers"] == 2
    assert row["gold_accuracy"] == 0.0 and row["gold_interval"][0] == 0.0 and row["status_reason"]


def test_bad_parameters_name_the_field(api: Api, org: Org) -> None:
    project = org.make_project()
    error = assert_error(api.get(f"{API}/projects/{project['id']}/dashboard?interval=week", auth=org.owner), 422)
    assert "interval" in str(error)
    error = assert_error(api.get(f"{API}/projects/{project['id']}/dashboard?workers_cursor=x", auth=org.owner), 422)
    assert "workers_cursor" in str(error)


def test_a_price_below_zero_is_refused_naming_the_field(api: Api, org: Org) -> None:
    project = org.make_project()
    body = {"quality": {"overlap": 1, "price_per_judgment": -1}}
    error = assert_error(api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=body), 422)
    assert "price_per_judgment" in str(error)
    body["quality"]["price_per_judgment"] = 0.1
    assert api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=body).status_code == 200
    assert api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()["cost"]["total"] == 0


@pytest.mark.parametrize("role", ["reviewer", "annotator"])
def test_roles_below_manager_are_refused(api: Api, org: Org, role: str) -> None:
    project = org.make_project()
    assert_error(api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.actor(role)), 403, "forbidden")


def test_another_organization_sees_nothing(api: Api, org: Org, other_org: Org) -> None:
    project, _, _ = _labeled(org)
    assert_error(api.get(f"{API}/projects/{project['id']}/dashboard", auth=other_org.owner), 404)
    # and its own empty project counts only its own work
    own = other_org.make_project()
    body = api.get(f"{API}/projects/{own['id']}/dashboard", auth=other_org.owner).json()
    assert body["progress"]["total"] == 0 and body["workers"]["items"] == [] and body["cost"]["judgments"] == 0
    assert sum(p["responses"] for p in body["throughput"]["points"]) == 0 and body["agreement"][0]["tasks"] == 0


# --- the pages (in-process; the e2e journey drives them in a browser) --------------------------------


def _page_paths(project_id: str) -> dict[str, str]:
    base = f"/projects/{project_id}"
    return {"dashboard": f"{base}/dashboard", "exports": f"{base}/exports", "import": f"{base}/import"}


@pytest.mark.parametrize(
    ("role", "allowed_pages"),
    [
        ("manager", {"dashboard", "exports", "import"}),
        ("reviewer", {"exports"}),
        ("annotator", set()),
    ],
)
def test_each_role_opens_only_its_pages_and_sees_only_their_links(
    api: Api, org: Org, role: str, allowed_pages: set[str]
) -> None:
    project = org.make_project()
    member = org.actor(role)
    sign_in(api, member.member["email"], member.password)
    project_page = api.get(f"/projects/{project['id']}").text
    home = api.get("/").text
    assert (f'href="/projects/{project["id"]}/dashboard"' in home) is ("dashboard" in allowed_pages), role
    for name, path in _page_paths(project["id"]).items():
        response = api.get(path)
        assert response.status_code == (200 if name in allowed_pages else 403), (role, path)
        if role != "annotator":  # an annotator may not open the project page at all
            assert (f'href="{path}"' in project_page) is (name in allowed_pages), (role, path)


def test_signed_out_visitors_are_sent_to_sign_in_and_other_tenants_get_404(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    for path in _page_paths(project["id"]).values():
        response = api.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    sign_in(api, other_org.owner.member["email"], other_org.owner.password)
    for path in _page_paths(project["id"]).values():
        assert api.get(path).status_code == 404, path


def test_the_exports_page_lists_this_projects_exports_only(api: Api, org: Org) -> None:
    project, other = org.make_project(), org.make_project()
    org.make_tasks(project["id"], 2)
    mine = api.post(f"{API}/projects/{project['id']}/exports", auth=org.owner, json={"format": "csv"}).json()
    theirs = api.post(f"{API}/projects/{other['id']}/exports", auth=org.owner, json={"format": "jsonl"}).json()
    sign_in(api, org.owner.member["email"], org.owner.password)
    shown = api.get(f"/projects/{project['id']}/exports").text
    assert f'data-job="{mine["id"]}"' in shown and theirs["id"] not in shown
    assert '<option value="parquet">' in shown and "No export yet." in shown  # the empty note, hidden
    assert api.get(f"/projects/{project['id']}/exports?cursor=nope").status_code == 400
