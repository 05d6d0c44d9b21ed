"""The LLM labeler over HTTP: a 202 with the job, the job run by a real runner against a real
chat-completions server on 127.0.0.1 (allowed by the settings), its answers shown as the task's
predictions; a private address refused at once naming base_url; roles and tenants."""

from __future__ import annotations

import json
from pathlib import Path

from receiver import Reply, Request, running
from truthset.config import Settings
from truthset.domain import Role
from truthset.jobs import Runner

from .helpers import API, Api, Org, assert_error


def _llm(request: Request, n: int) -> Reply:
    prompt = json.loads(request.body)["messages"][-1]["content"]
    answer = "negative" if "terrible" in prompt else "positive"
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps({"answer": answer})}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 4},
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _allowing(make_api, tmp_path: Path) -> Api:  # type: ignore[no-untyped-def]
    return make_api(Settings(data_dir=tmp_path / "data", outbound_allow="127.0.0.1"))


def test_a_job_labels_the_pending_tasks_and_its_answers_are_predictions(make_api, org: Org, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = _allowing(make_api, tmp_path)
    project = org.make_project()
    good = org.make_task(project["id"], "a lovely day")
    bad = org.make_task(project["id"], "a terrible day")
    with running(_llm) as server:
        body = {"question": "sentiment", "base_url": f"{server.url}/v1", "model": "tiny", "version": "1"}
        response = api.post(f"{API}/projects/{project['id']}/llm-labels", auth=org.owner, json=body)
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "model.llm_label" and job["payload"]["worker"] == "llm:tiny@1"
        Runner(api.app.state.db, kinds=["model.llm_label"], settings=api.app.state.settings).run_until_idle()
    done = api.get(f"{API}/jobs/{job['id']}", auth=org.owner).json()
    assert done["status"] == "succeeded", done
    assert (done["result"]["stored"], done["result"]["usage"]["total_tokens"]) == (2, 68)
    for task, expected in ((good, "positive"), (bad, "negative")):
        (shown,) = api.get(f"{API}/tasks/{task['id']}/predictions", auth=org.owner).json()
        assert shown["model"] == "llm:tiny@1" and shown["answer"] == {"sentiment": expected}
    workers = api.get(f"{API}/workers", auth=org.owner).json()["items"]
    assert [w["kind"] for w in workers if w["name"] == "llm:tiny@1"] == ["model"]


def test_a_private_address_is_refused_at_once_naming_base_url(api: Api, org: Org) -> None:
    project = org.make_project()
    body = {"question": "sentiment", "base_url": "http://127.0.0.1:9/v1", "model": "tiny"}
    response = api.post(f"{API}/projects/{project['id']}/llm-labels", auth=org.owner, json=body)
    error = assert_error(response, 422, "url_refused")
    assert error["details"]["field"] == "base_url" and error["message"].startswith("base_url: 127.0.0.1 is a loopback")
    assert api.get(f"{API}/jobs", auth=org.owner, params={"kind": "model.llm_label"}).json()["items"] == []


def test_bad_input_names_the_field(api: Api, org: Org) -> None:
    project = org.make_project()
    base = {"question": "sentiment", "base_url": "https://93.184.216.34/v1", "model": "tiny"}
    for change, field_name in (
        ({"question": "mood"}, "question"),
        ({"limit": 0}, "limit"),
        ({"model": "a@b"}, "model"),
    ):
        response = api.post(f"{API}/projects/{project['id']}/llm-labels", auth=org.owner, json={**base, **change})
        error = assert_error(response, 422)
        assert error["details"]["field"].endswith(field_name), error


def test_managers_and_up_and_no_other_organization(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    body = {"question": "sentiment", "base_url": "https://93.184.216.34/v1", "model": "tiny", "limit": 1}
    url = f"{API}/projects/{project['id']}/llm-labels"
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        assert_error(api.post(url, auth=org.actor(role), json=body), 403)
    assert api.post(url, auth=org.actor(Role.MANAGER), json=body).status_code == 202
    assert_error(api.post(url, auth=other_org.owner, json=body), 404)
