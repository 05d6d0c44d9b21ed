"""Predictions over HTTP: upload (validation, idempotency, permissions, tenants), model workers in
the quality loop, pre-fill on the lease and what a submit records about it."""

from __future__ import annotations

import re
from typing import Any

import orjson

from truthset.services import export

from .helpers import API, Api, Org, assert_error
from .test_session import sign_in


def _upload(api: Api, org: Org, project_id: str, items: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"model": "sent-clf", "version": "1", "predictions": items, **extra}
    return api.post(f"{API}/projects/{project_id}/predictions", auth=extra.pop("auth", org.owner), json=body)


def test_an_upload_stores_a_model_workers_response_per_task(api: Api, org: Org) -> None:
    project = org.make_project()
    a, b = org.make_tasks(project["id"], 2)
    org.make_task(project["id"], unique_id="u-1")
    items = [
        {"task_id": a["id"], "question": "sentiment", "answer": "positive", "score": 0.9},
        {"task_id": a["id"], "question": "stars", "answer": 4, "score": 0.6},
        {"unique_id": "u-1", "question": "sentiment", "answer": "negative", "score": 0.7},
    ]
    response = _upload(api, org, project["id"], items)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["model"] == "sent-clf@1" and report["worker_id"]
    assert (report["received"], report["stored"], report["responses_created"]) == (3, 3, 2)
    assert report["unchanged"] == 0 and report["invalid"] == 0 and report["errors"] == []
    workers = api.get(f"{API}/workers", auth=org.owner).json()["items"]
    (model,) = [w for w in workers if w["id"] == report["worker_id"]]
    assert model["kind"] == "model" and model["name"] == "sent-clf@1" and model["member_id"] is None
    shown = api.get(f"{API}/tasks/{a['id']}/predictions", auth=org.owner).json()
    assert len(shown) == 1 and shown[0]["model"] == "sent-clf@1"
    assert shown[0]["answer"] == {"sentiment": "positive", "stars": 4}
    assert shown[0]["scores"] == {"sentiment": 0.9, "stars": 0.6}
    # a prediction is not a judgment: the task still waits for people, untouched
    task = api.get(f"{API}/tasks/{a['id']}", auth=org.owner).json()
    assert task["status"] == "pending" and task["response_count"] == 0
    history = api.get(f"{API}/tasks/{a['id']}/history", auth=org.owner).json()
    (step,) = [s for s in history if s["kind"] == "prediction"]
    assert step["worker_name"] == "sent-clf@1" and step["data"]["scores"]["sentiment"] == 0.9
    assert api.get(f"{API}/tasks/{b['id']}/predictions", auth=org.owner).json() == []


def test_a_repeated_upload_changes_nothing_and_a_different_one_is_refused(api: Api, org: Org) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    item = {"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.9}
    assert _upload(api, org, project["id"], [item]).json()["stored"] == 1
    again = _upload(api, org, project["id"], [item]).json()
    assert (again["stored"], again["unchanged"], again["responses_created"]) == (0, 1, 0)
    changed = {**item, "answer": "negative"}
    error = assert_error(_upload(api, org, project["id"], [changed]), 422, "invalid_input")
    assert "already predicted sentiment of this task differently" in error["message"]
    assert error["details"]["errors"][0]["field"] == "predictions[0].answer"
    rescored = {**item, "score": 0.5}
    assert_error(_upload(api, org, project["id"], [rescored]), 422, "invalid_input")
    added = {"task_id": task["id"], "question": "stars", "answer": 3, "score": 0.5}
    skipped = _upload(api, org, project["id"], [added], on_error="skip").json()
    assert skipped["invalid"] == 1 and "append-only" in skipped["errors"][0]["message"]
    # a new version is a new worker: it may say something else
    other = api.post(
        f"{API}/projects/{project['id']}/predictions",
        auth=org.owner,
        json={"model": "sent-clf", "version": "2", "predictions": [changed]},
    ).json()
    assert other["stored"] == 1 and other["model"] == "sent-clf@2"
    assert len(api.get(f"{API}/tasks/{task['id']}/predictions", auth=org.owner).json()) == 2


def test_bad_predictions_are_named_by_index_and_reject_stores_nothing(api: Api, org: Org) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    good = {"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.9}
    bad = [
        {"task_id": task["id"], "question": "stars", "answer": 9, "score": 0.5},
        {"unique_id": "nope", "question": "sentiment", "answer": "positive", "score": 0.5},
        {"task_id": task["id"], "question": "colour", "answer": "red", "score": 0.5},
    ]
    error = assert_error(_upload(api, org, project["id"], [good, *bad]), 422, "invalid_input")
    fields = [e["field"] for e in error["details"]["errors"]]
    assert fields == ["predictions[1].answer", "predictions[2].unique_id", "predictions[3].question"]
    assert "nothing was stored" in error["message"]
    assert api.get(f"{API}/tasks/{task['id']}/predictions", auth=org.owner).json() == []
    kept = _upload(api, org, project["id"], [good, *bad], on_error="skip").json()
    assert kept["stored"] == 1 and kept["invalid"] == 3
    # the body's own shape: a score out of range, both task keys, an '@' in the name
    out_of_range = {**good, "score": 1.5}
    assert_error(_upload(api, org, project["id"], [out_of_range]), 422)
    assert_error(_upload(api, org, project["id"], [{**good, "unique_id": "x"}]), 422)
    body = {"model": "a@b", "version": "1", "predictions": [good]}
    assert_error(api.post(f"{API}/projects/{project['id']}/predictions", auth=org.owner, json=body), 422)


def test_only_managers_and_above_upload_and_tenants_are_isolated(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    item = {"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.9}
    body = {"model": "m", "version": "1", "predictions": [item]}
    url = f"{API}/projects/{project['id']}/predictions"
    for role in ("annotator", "reviewer"):
        assert_error(api.post(url, auth=org.actor(role), json=body), 403, "forbidden")
    assert api.post(url, auth=org.actor("manager"), json=body).status_code == 200
    # another organization: the project is not there, and its own project cannot name our task
    assert_error(api.post(url, auth=other_org.owner, json=body), 404)
    theirs = other_org.make_project()
    response = api.post(f"{API}/projects/{theirs['id']}/predictions", auth=other_org.owner, json=body)
    assert_error(response, 422)
    assert_error(api.get(f"{API}/tasks/{task['id']}/predictions", auth=other_org.owner), 404)
    assert_error(api.get(f"{API}/tasks/{task['id']}/predictions", auth=org.actor("annotator")), 403)
    # the same model name in the other organization is another worker
    (their_task,) = other_org.make_tasks(theirs["id"], 1)
    mine = api.post(url, auth=org.owner, json=body).json()["worker_id"]
    body["predictions"] = [{**item, "task_id": their_task["id"]}]
    their = api.post(f"{API}/projects/{theirs['id']}/predictions", auth=other_org.owner, json=body).json()
    assert their["worker_id"] != mine


def test_a_model_never_completes_a_task_nor_counts_toward_the_overlap(api: Api, org: Org) -> None:
    project = org.make_project(quality={"overlap": 2})
    (task,) = org.make_tasks(project["id"], 1)
    _upload(
        api, org, project["id"], [{"task_id": task["id"], "question": "sentiment", "answer": "neutral", "score": 1}]
    )
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    body = {"answer": {"sentiment": "neutral"}, "assignment_id": lease["id"]}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body).status_code == 201
    assert org.task(task["id"])["status"] == "pending"  # one person of two: the model is not the second
    second = org.actor("reviewer")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=second).json()
    body = {"answer": {"sentiment": "neutral"}, "assignment_id": lease["id"]}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=second, json=body).status_code == 201
    done = org.task(task["id"])
    assert done["status"] == "completed" and done["result"]["response_count"] == 2
    assert done["result"]["predictions"] == 1
    figures = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()["items"]
    kinds = sorted(f["kind"] for f in figures)
    assert kinds == ["human", "human", "model"]


def _prefill_project(api: Api, org: Org, on: bool = True, **quality: Any) -> tuple[str, dict[str, Any]]:
    project = org.make_project(quality={"overlap": 1, "prefill_predictions": on, **quality})
    (task,) = org.make_tasks(project["id"], 1)
    items = [
        {"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.8},
        {"task_id": task["id"], "question": "stars", "answer": 4, "score": 0.4},
    ]
    _upload(api, org, project["id"], items)
    low = {"model": "weak", "version": "0", "predictions": [{**items[0], "answer": "negative", "score": 0.3}]}
    api.post(f"{API}/projects/{project['id']}/predictions", auth=org.owner, json=low)
    return project["id"], task


def test_a_lease_carries_the_best_prediction_and_the_submit_records_what_was_kept(api: Api, org: Org) -> None:
    project_id, task = _prefill_project(api, org)
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project_id}/next", auth=annotator).json()
    shown = lease["predictions"]
    assert set(shown) == {"sentiment", "stars"}
    assert shown["sentiment"]["answer"] == "positive" and shown["sentiment"]["model"] == "sent-clf@1"
    prefill = {name: p["response_id"] for name, p in shown.items()}
    body = {"answer": {"sentiment": "positive", "stars": 2}, "assignment_id": lease["id"], "prefill": prefill}
    submitted = api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body)
    assert submitted.status_code == 201, submitted.text
    kept = submitted.json()["response"]["prefill"]
    assert kept["sentiment"]["accepted"] is True and kept["stars"]["accepted"] is False
    figures = api.get(f"{API}/projects/{project_id}/workers", auth=org.owner).json()["items"]
    (model,) = [f for f in figures if f["name"] == "sent-clf@1"]
    assert (model["prefill_shown"], model["prefill_accepted"], model["acceptance_rate"]) == (2, 1, 0.5)
    (person,) = [f for f in figures if f["worker_id"] == annotator.worker_id]
    assert person["acceptance_rate"] is None and person["prefill_shown"] == 0
    # the provenance export: the database's JSON lines and the rows made in Python say the same
    (line,) = [orjson.loads(text) for text in export.export_lines(org.db, org.owner.principal, project_id)]
    (row,) = list(export.export_rows(org.db, org.owner.principal, project_id))
    for exported in (line, row):
        by_kind = {r["worker_kind"]: r for r in exported["responses"] if r["worker_name"] != "weak@0"}
        assert by_kind["human"]["prefill"]["sentiment"]["accepted"] is True and by_kind["human"]["scores"] is None
        assert by_kind["model"]["scores"] == {"sentiment": 0.8, "stars": 0.4} and by_kind["model"]["prefill"] is None


def test_no_prefill_when_the_switch_is_off_and_a_bad_prefill_is_refused(api: Api, org: Org) -> None:
    project_id, task = _prefill_project(api, org, on=False)
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project_id}/next", auth=annotator).json()
    assert lease["predictions"] == {}
    body = {"answer": {"sentiment": "positive"}, "assignment_id": lease["id"], "prefill": {"sentiment": "x" * 24}}
    error = assert_error(api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body), 422)
    assert error["details"]["field"] == "prefill.sentiment"


def test_gold_tasks_get_their_prediction_never_the_gold_answer(api: Api, org: Org) -> None:
    project_id, task = _prefill_project(api, org, gold={"qualification": 1})  # gold first, surely
    marked = api.request(
        "PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"sentiment": "neutral"}}
    )
    assert marked.status_code == 200
    lease = api.post(f"{API}/projects/{project_id}/next", auth=org.actor("annotator")).json()
    assert lease["task"]["id"] == task["id"] and lease["task"]["status"] == "pending"
    assert lease["predictions"]["sentiment"]["answer"] == "positive"  # the model's, not the gold answer
    assert "neutral" not in str(lease)


def test_a_prediction_on_a_gold_task_is_scored_like_a_persons_answer(api: Api, org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "gold": {"rate": 0.2}})
    (task,) = org.make_tasks(project["id"], 1)
    api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"sentiment": "neutral"}})
    items = [{"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.9}]
    worker_id = _upload(api, org, project["id"], items).json()["worker_id"]
    stats = api.get(f"{API}/workers/{worker_id}/stats", auth=org.owner, params={"project_id": project["id"]})
    assert stats.status_code == 200, stats.text
    assert stats.json()["kind"] == "model" and stats.json()["gold_answers"] == 1
    assert stats.json()["gold_accuracy"] == 0.0


def test_the_task_page_lists_predictions_and_what_a_person_kept(api: Api, org: Org) -> None:
    project_id, task = _prefill_project(api, org)
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project_id}/next", auth=annotator).json()
    prefill = {name: p["response_id"] for name, p in lease["predictions"].items()}
    body = {"answer": {"sentiment": "positive", "stars": 2}, "assignment_id": lease["id"], "prefill": prefill}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body).status_code == 201
    sign_in(api, org.owner.member["email"], org.owner.password)
    shown = api.get(f"/tasks/{task['id']}").text
    table = shown.split('id="predictions"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", table)
    assert ("sent-clf", "1", "sentiment") in rows and ("weak", "0", "sentiment") in rows
    assert "0.80" in table and '<code class="mono">"positive"</code>' in table
    assert "Predicted by a model" in shown and "pre-filled: sentiment kept, stars changed" in shown
