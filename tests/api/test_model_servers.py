"""External model servers over HTTP: a 202 with the job, run by a real runner against a real model
server on 127.0.0.1 (allowed by the settings), its answers shown as the task's predictions; a
private address refused at once naming base_url; bad input named; roles and tenants."""

from __future__ import annotations

import json
from pathlib import Path

from receiver import Reply, Request, running
from truthset.config import Settings
from truthset.domain import Role
from truthset.jobs import Runner

from .helpers import API, Api, Org, assert_error

KIND = "model.server_predict"


def _server(request: Request, n: int) -> Reply:
    if request.path == "/health":
        body: object = {"name": "clf", "version": "7"}
    elif request.path == "/train":
        body = {"accepted": len(json.loads(request.body)["results"])}
    else:
        tasks = json.loads(request.body)["tasks"]
        answers = [
            {"task": t["id"], "answer": "negative" if "terrible" in t["data"]["text"] else "positive", "score": 0.9}
            for t in tasks
        ]
        body = {"predictions": answers}
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def test_a_job_predicts_the_pending_tasks_as_a_model_worker(make_api, org: Org, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = make_api(Settings(data_dir=tmp_path / "data", outbound_allow="127.0.0.1"))
    project = org.make_project()
    good = org.make_task(project["id"], "a lovely day")
    bad = org.make_task(project["id"], "a terrible day")
    with running(_server) as server:
        body = {"question": "sentiment", "base_url": server.url, "batch_size": 1}
        response = api.post(f"{API}/projects/{project['id']}/model-server-predictions", auth=org.owner, json=body)
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == KIND
        Runner(api.app.state.db, kinds=[KIND], settings=api.app.state.settings).run_until_idle()
    done = api.get(f"{API}/jobs/{job['id']}", auth=org.owner).json()
    assert done["status"] == "succeeded", done
    assert (done["result"]["model"], done["result"]["stored"], done["result"]["invalid"]) == ("clf@7", 2, 0)
    for task, expected in ((good, "positive"), (bad, "negative")):
        (shown,) = api.get(f"{API}/tasks/{task['id']}/predictions", auth=org.owner).json()
        assert shown["model"] == "clf@7" and shown["answer"] == {"sentiment": expected}


def test_a_private_address_is_refused_at_once_naming_base_url(api: Api, org: Org) -> None:
    project = org.make_project()
    body = {"question": "sentiment", "base_url": "http://127.0.0.1:9"}
    response = api.post(f"{API}/projects/{project['id']}/model-server-predictions", auth=org.owner, json=body)
    error = assert_error(response, 422, "url_refused")
    assert error["details"]["field"] == "base_url" and error["message"].startswith("base_url: 127.0.0.1 is a loopback")
    assert api.get(f"{API}/jobs", auth=org.owner, params={"kind": KIND}).json()["items"] == []


def test_bad_input_names_the_field(api: Api, org: Org) -> None:
    project = org.make_project()
    base = {"question": "sentiment", "base_url": "https://93.184.216.34"}
    for change, field_name in (
        ({"question": "mood"}, "question"),
        ({"batch_size": 0}, "batch_size"),
        ({"name": "a@b"}, "name"),
    ):
        url = f"{API}/projects/{project['id']}/model-server-predictions"
        error = assert_error(api.post(url, auth=org.owner, json={**base, **change}), 422)
        assert error["details"]["field"].endswith(field_name), error


def test_managers_and_up_and_no_other_organization(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    body = {"question": "sentiment", "base_url": "https://93.184.216.34"}
    url = f"{API}/projects/{project['id']}/model-server-predictions"
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        assert_error(api.post(url, auth=org.actor(role), json=body), 403)
    assert api.post(url, auth=org.actor(Role.MANAGER), json=body).status_code == 202
    assert_error(api.post(url, auth=other_org.owner, json=body), 404)
