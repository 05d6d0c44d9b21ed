"""Auto-labeling over HTTP: the policy checked field by field, an eligible model's upload completing a
task, and the figures, history, export and dashboard that show it (in their organization only)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from truthset.services import export, refit

from .helpers import API, Api, Org, assert_error
from .test_session import sign_in

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
POLICY = {
    "overlap": 1,
    "target_confidence": 0.9,
    "auto_label": {"min_accuracy": 0.8, "min_verified": 20, "audit_rate": 0.0},
}


def _upload(api: Api, org: Org, project_id: str, answers: dict[str, str], score: float = 0.97) -> dict[str, Any]:
    items = [{"task_id": k, "question": "sentiment", "answer": a, "score": score} for k, a in answers.items()]
    body = {"model": "clf", "version": "1", "predictions": items}
    response = api.post(f"{API}/projects/{project_id}/predictions", auth=org.owner, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_bad_auto_label_policy_is_refused_naming_its_field(api: Api, org: Org) -> None:
    project = org.make_project(spec=BINARY)
    bad = {"quality": {"overlap": 1, "auto_label": {"min_accuracy": 0.97, "audit_rate": 2}}}
    error = assert_error(api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=bad), 422)
    assert "quality.auto_label.audit_rate" in orjson.dumps(error).decode()
    good = {"quality": {"overlap": 1, "target_confidence": 0.9, "auto_label": {"min_accuracy": 0.97}}}
    response = api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=good)
    assert response.status_code == 200, response.text
    stored = response.json()["quality"]["auto_label"]
    assert stored == {
        "min_accuracy": 0.97,
        "min_verified": 50,
        "audit_rate": 0.1,
        "audit_min_agreement": None,
        "audit_min_count": 20,
    }


def test_an_auto_labeled_task_shows_in_figures_history_export_and_dashboard(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=POLICY)
    verified = org.make_tasks(project["id"], 30)
    for task in verified:
        gold = {"answer": {"sentiment": "positive"}}
        response = api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json=gold)
        assert response.status_code == 200, response.text
    worker_id = _upload(api, org, project["id"], {task["id"]: "positive" for task in verified})["worker_id"]
    task = org.make_task(project["id"], "a new one")
    _upload(api, org, project["id"], {task["id"]: "negative"})

    done = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert done["status"] == "completed" and done["response_count"] == 0
    assert (
        done["result"]["methods"] == {"sentiment": "model"} and done["result"]["auto_label"]["worker_id"] == worker_id
    )
    steps = api.get(f"{API}/tasks/{task['id']}/history", auth=org.owner).json()
    (labeled,) = [s for s in steps if s["kind"] == "auto_labeled"]
    assert labeled["worker_name"] == "clf@1" and labeled["data"]["answer"] == {"sentiment": "negative"}

    figures = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()["items"]
    (model,) = [f for f in figures if f["worker_id"] == worker_id]
    assert model["kind"] == "model" and model["auto_labeled"] == 1 and model["auto_label_eligible"] is True
    assert model["verified_tasks"] == 30 and model["verified_accuracy"] == 1.0 and model["suspended"] is None
    stats = api.get(f"{API}/workers/{worker_id}/stats?project_id={project['id']}", auth=org.owner).json()
    assert stats["auto_labeled"] == 1 and stats["audits"] == 0 and stats["audit_agreement"] is None

    lines = [orjson.loads(line) for line in export.export_lines(org.db, org.owner.principal, project["id"])]
    (line,) = [row for row in lines if row["task_id"] == task["id"]]
    assert line["result"]["methods"]["sentiment"] == "model" and line["result"]["auto_label"]["worker_id"] == worker_id

    dashboard = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()
    (row,) = [w for w in dashboard["workers"]["items"] if w["worker_id"] == worker_id]
    assert (row["auto_labeled"], row["audits"], row["audit_agreement"]) == (1, 0, None)

    # the task's page says it in words (its history and the result's method)
    sign_in(api, org.owner.member["email"], org.owner.password)
    html = api.get(f"/tasks/{task['id']}").text
    assert "Auto-labeled by a model, without people" in html and "model" in html
    # and its result names the model and the record it rested on (30 of 30 verified on gold)
    note = " ".join(html.split('id="auto-label-note"', 1)[1].split("</p>", 1)[0].split())
    assert "<strong>clf@1</strong>" in note and "its accuracy on 30 human-verified tasks was 100.0%" in note, note
    assert "(95% interval 92.0-100.0%)" in note, note
    # the Models page's row of the model: its verified record, that it may auto-label, what it did
    models = api.get(f"/projects/{project['id']}/models").text
    row = models.split('<tr data-worker="clf@1">', 1)[1].split("</tr>", 1)[0]
    cells = dict(re.findall(r'<td data-cell="([a-z_]+)">(.*?)</td>', row, flags=re.S))
    assert cells["verified_record"].startswith("100.0%") and "on 30" in cells["verified_record"], cells
    assert cells["gold"].startswith("100.0%") and "on 30" in cells["gold"] and "(" in cells["gold"], cells
    assert (cells["may_auto_label"], cells["auto_labeled"], cells["audits"]) == ("yes", "1", "\u2013"), cells
    # a stricter policy: the page says why it may not (30 of 30 right is surely above 92.0% only)
    stricter = {"quality": {**POLICY, "auto_label": {**POLICY["auto_label"], "min_accuracy": 0.97}}}
    assert api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=stricter).status_code == 200
    models = api.get(f"/projects/{project['id']}/models").text
    row = models.split('<tr data-worker="clf@1">', 1)[1].split("</tr>", 1)[0]
    cell = dict(re.findall(r'<td data-cell="([a-z_]+)">(.*?)</td>', row, flags=re.S))["may_auto_label"]
    assert cell == "no: its verified accuracy is surely above 92.0% only, not 97.0%: too few verified tasks yet", cell

    # another organization sees none of it: the project answers 404 like a missing one
    assert_error(api.get(f"{API}/projects/{project['id']}/workers", auth=other_org.owner), 404)
    stats_url = f"{API}/workers/{worker_id}/stats?project_id={project['id']}"
    assert_error(api.get(stats_url, auth=other_org.owner), 404)


def test_the_task_page_says_where_a_models_vote_decided_the_answer(api: Api, org: Org) -> None:
    project = org.make_project(spec=BINARY, quality={**POLICY, "overlap": 2, "auto_label": None})
    gold_tasks = org.make_tasks(project["id"], 30)
    truth = {task["id"]: "positive" if i % 2 else "negative" for i, task in enumerate(gold_tasks)}
    for task_id, answer in truth.items():
        body = {"answer": {"sentiment": answer}}
        assert api.request("PUT", f"{API}/tasks/{task_id}/gold", auth=org.owner, json=body).status_code == 200
    _upload(api, org, project["id"], truth)  # right on every gold task
    refit.refit(org.db, org.owner.principal, project["id"])  # the fit knows the model: its vote counts
    (split,) = [task for task in org.make_tasks(project["id"], 1) if task["id"] not in truth]
    _upload(api, org, project["id"], {split["id"]: "positive"})
    for answer in ("positive", "negative"):
        response = api.post(
            f"{API}/tasks/{split['id']}/responses", auth=org.add_member(), json={"answer": {"sentiment": answer}}
        )
        assert response.status_code == 201, response.text

    result = api.get(f"{API}/tasks/{split['id']}", auth=org.owner).json()["result"]
    assert result["answer"] == {"sentiment": "positive"} and result["people_answer"] == {"sentiment": None}
    sign_in(api, org.owner.member["email"], org.owner.password)
    html = api.get(f"/tasks/{split['id']}").text
    row = html.split('data-question="sentiment"', 1)[1].split("</dd>", 1)[0]
    assert "a model's vote decided it: people alone tied" in " ".join(row.split()), row
