"""Active learning over HTTP: the policy's ``ordering``, the queue in serving order (paged), and the
re-rank job (managers and above, tenants apart)."""

from __future__ import annotations

from collections.abc import Callable

from truthset.config import Settings
from truthset.services import active_learning

from .helpers import API, Api, Org, assert_error
from .test_session import page_csrf, sign_in

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


def _predict(api: Api, org: Org, project_id: str, scores: dict[str, float]) -> None:
    items = [{"task_id": i, "question": "animal", "answer": "cat", "score": s} for i, s in scores.items()]
    body = {"model": "clf", "version": "1", "predictions": items}
    reply = api.post(f"{API}/projects/{project_id}/predictions", auth=org.owner, json=body)
    assert reply.status_code in (200, 201), reply.text


def test_the_queue_in_model_uncertainty_order_paged(api: Api, org: Org) -> None:
    project = org.make_project(spec=SPEC, quality={"overlap": 1, "ordering": "model_uncertainty"})
    assert project["quality"]["ordering"] == "model_uncertainty"
    ids = [task["id"] for task in org.make_tasks(project["id"], 5)]
    _predict(api, org, project["id"], dict(zip(ids, (0.9, 0.6, 0.99, 0.7, 0.55), strict=True)))
    reply = api.post(f"{API}/projects/{project['id']}/queue/rerank", auth=org.actor("manager"))
    assert reply.status_code == 202, reply.text
    assert reply.json()["kind"] == "queue.rerank" and reply.json()["status"] == "queued"
    active_learning.rerank_project(org.db, org.id, project["id"])  # what the job runs
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{API}/projects/{project['id']}/queue", auth=org.actor("reviewer"), params=params)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[4], ids[1], ids[3], ids[0], ids[2]]
    assert page.json()["items"][-1]["queue_rank"] == 5
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=org.actor("annotator")).json()
    assert lease["task"]["id"] == ids[4]
    bad = api.get(f"{API}/projects/{project['id']}/queue", auth=org.owner, params={"cursor": "nope"})
    assert_error(bad, 422)
    assert "cursor" in bad.json()["error"]["message"]


def test_the_ordering_is_validated_and_a_change_asks_for_a_rerank(api: Api, org: Org) -> None:
    project = org.make_project(spec=SPEC)
    assert project["quality"]["ordering"] == "priority"
    bad = api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json={"quality": {"ordering": "random"}})
    assert_error(bad, 422)
    assert "ordering" in bad.text
    changed = api.patch(
        f"{API}/projects/{project['id']}", auth=org.owner, json={"quality": {"overlap": 1, "ordering": "uncertainty"}}
    )
    assert changed.status_code == 200 and changed.json()["quality"]["ordering"] == "uncertainty"
    jobs = api.get(f"{API}/jobs", auth=org.owner, params={"kind": "queue.rerank"}).json()["items"]
    assert [job["kind"] for job in jobs] == ["queue.rerank"]


def test_roles_and_tenants(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project(spec=SPEC, quality={"overlap": 1, "ordering": "uncertainty"})
    url = f"{API}/projects/{project['id']}/queue/rerank"
    for role in ("annotator", "reviewer"):
        assert_error(api.post(url, auth=org.actor(role)), 403)
    assert_error(api.get(f"{API}/projects/{project['id']}/queue", auth=org.actor("annotator")), 403)
    assert_error(api.post(url, auth=other_org.owner), 404)
    assert_error(api.get(f"{API}/projects/{project['id']}/queue", auth=other_org.owner), 404)
    assert api.post(url, auth=org.actor("admin")).status_code == 202


def test_the_project_page_shows_the_queue_card_and_its_controls_to_managers(
    api: Api, make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    project = org.make_project(spec=SPEC)
    reviewer = org.actor("reviewer")
    sign_in(api, reviewer.member["email"], reviewer.password)
    shown = api.get(f"/projects/{project['id']}").text
    assert 'id="queue-card"' in shown and "/static/queue-order.js" in shown
    assert 'id="queue-form"' not in shown  # a reviewer reads the queue, never changes its ordering
    manager = org.actor("manager")
    api = make_api(settings)  # a browser of its own
    sign_in(api, manager.member["email"], manager.password)
    shown = api.get(f"/projects/{project['id']}").text
    assert 'id="queue-form"' in shown and 'value="uncertainty"' in shown and 'value="model_uncertainty"' in shown
    assert api.get("/static/queue-order.js").status_code == 200
    # the module's calls carry the page's CSRF token; without it a cookie session changes nothing
    url = f"{API}/projects/{project['id']}/queue/rerank"
    assert_error(api.post(url), 403)
    assert api.post(url, headers={"X-CSRF-Token": page_csrf(api)}).status_code == 202


def test_a_forged_cursor_is_a_422_naming_it(api: Api, org: Org) -> None:
    import base64
    import json

    project = org.make_project(spec=SPEC)
    forged = [[2**40, 0, "0" * 24], [0, 0, "x\u0000"], [True, 0, "0" * 24], {"a": 1}, [0, 0]]
    for value in forged:
        cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        reply = api.get(f"{API}/projects/{project['id']}/queue", auth=org.owner, params={"cursor": cursor})
        assert_error(reply, 422)
        assert reply.json()["error"]["details"]["field"] == "query.cursor"
