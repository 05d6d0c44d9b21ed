"""The LLM labeler as a model worker: a ``model.llm_label`` job run by a real job runner against a
real HTTP server on 127.0.0.1 speaking chat completions (allowed by the settings, as tests of
outbound calls do); valid answers stored as the model worker's predictions, the rest counted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from receiver import Reply, Request, running
from truthset.config import Settings
from truthset.domain import Role, WorkerKind
from truthset.errors import Forbidden, InvalidInput, NotFound
from truthset.jobs import Runner
from truthset.services import gold, jobs, llm_labeling, predictions, quality
from truthset.services.llm_labeling import KIND, LlmLabelRequest
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
ITEM = re.compile(r"item (\d+)")


def completion(content: str, usage: tuple[int, int] = (40, 5)) -> Reply:
    body = {
        "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def llm(request: Request, n: int) -> Reply:
    """Even items are positive, odd ones negative; item 3 gets an answer outside the options and item
    4 a refusal the labeler does not retry (a 400 about the prompt, not the output format)."""
    prompt = json.loads(request.body)["messages"][-1]["content"]
    item = int(ITEM.search(prompt).group(1))  # type: ignore[union-attr]
    if item == 3:
        return completion('{"answer": "neutral"}')
    if item == 4:
        return Reply(400, b'{"error": {"message": "this prompt is too long for the context"}}')
    return completion(json.dumps({"answer": "positive" if item % 2 == 0 else "negative"}))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", outbound_allow="127.0.0.1")


def _start(org: Org, settings: Settings, project_id: str, url: str, **options: Any) -> dict[str, Any]:
    request = LlmLabelRequest(question="sentiment", base_url=f"{url}/v1", model="tiny", **options)
    return llm_labeling.start_llm_labeling(org.db, org.owner.principal, settings, project_id, request)


def _run(org: Org, settings: Settings, job_id: str) -> dict[str, Any]:
    Runner(org.db, kinds=[KIND], settings=settings).run_until_idle()
    return jobs.get_job(org.db, org.owner.principal, job_id)


def test_the_job_stores_valid_answers_as_predictions_and_counts_the_rest(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    tasks = org.make_tasks(project["id"], 6)
    by_item = {int(ITEM.search(task["data"]["text"]).group(1)): task["id"] for task in tasks}  # type: ignore[union-attr]
    with running(llm) as server:
        job = _start(org, settings, project["id"], server.url, api_key="sk-secret", version="v1")
        assert job["status"] == "queued" and job["kind"] == KIND
        assert "sk-secret" not in json.dumps(job, default=str)  # sealed before it entered the payload
        done = _run(org, settings, job["id"])
        requests = list(server.requests)
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    assert result["model"] == "llm:tiny@v1"
    assert (result["waiting"], result["asked"], result["stored"]) == (6, 6, 4)
    assert (result["invalid"], result["failed"], result["refused"]) == (1, 1, 0)
    assert result["calls"] == 5  # the refused call got no reply, so no tokens
    assert result["usage"] == {"prompt_tokens": 200, "completion_tokens": 25, "total_tokens": 225, "per_call": 45.0}
    kinds = {(p["task_id"], p["kind"]) for p in result["problems"]}
    assert kinds == {(by_item[3], "invalid"), (by_item[4], "failed")}
    assert all(r.headers["authorization"] == "Bearer sk-secret" for r in requests)
    assert "sk-secret" not in json.dumps(done, default=str)

    with org.db.read() as conn:
        stored = {i: predictions.task_predictions(conn, org.id, task_id) for i, task_id in by_item.items()}
        worker = conn.execute(t.workers.select().where(t.workers.c.id == result["worker_id"])).mappings().one()
    assert worker["kind"] == str(WorkerKind.MODEL) and worker["name"] == "llm:tiny@v1"
    for item in (0, 1, 2, 5):
        (prediction,) = stored[item]
        assert prediction["model"] == "llm:tiny@v1"
        assert prediction["answer"] == {"sentiment": "positive" if item % 2 == 0 else "negative"}
        assert prediction["scores"] == {"sentiment": 0.5}  # no log-probabilities: the default score
    assert stored[3] == [] and stored[4] == []  # an invalid answer and a failed call store nothing
    assert all(org.task(task_id)["response_count"] == 0 for task_id in by_item.values())  # never a judgment

    # again, the same version: only the two unpredicted tasks are asked about, at most `limit` of them
    with running(llm) as server:
        again = _run(org, settings, _start(org, settings, project["id"], server.url, version="v1", limit=1)["id"])
        assert len(server.requests) == 1 and "authorization" not in server.requests[0].headers
    assert (again["result"]["waiting"], again["result"]["asked"], again["result"]["stored"]) == (1, 1, 0)


def test_a_derived_version_names_the_set_up(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    org.make_tasks(project["id"], 2)
    with running(llm) as server:
        first = _start(org, settings, project["id"], server.url)
        same = _start(org, settings, project["id"], server.url)
        warmer = _start(org, settings, project["id"], server.url, temperature=0.7)
    assert first["payload"]["worker"] == same["payload"]["worker"] != warmer["payload"]["worker"]
    assert re.fullmatch(r"llm:tiny@[0-9a-f]{10}", first["payload"]["worker"])


def test_the_api_key_of_the_settings_is_sent_when_the_request_has_none(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    org.make_tasks(project["id"], 1)
    keyed = settings.model_copy(update={"llm_api_key": SecretStr("sk-from-settings")})
    with running(llm) as server:
        done = _run(org, keyed, _start(org, settings, project["id"], server.url)["id"])
        assert server.requests[0].headers["authorization"] == "Bearer sk-from-settings"
    assert done["result"]["stored"] == 1


def test_a_private_address_is_refused_without_the_allow_setting(org: Org, settings: Settings, tmp_path: Path) -> None:
    project = org.make_project(spec=SPEC)
    org.make_tasks(project["id"], 2)
    strict = Settings(data_dir=tmp_path / "data")
    with running(llm) as server:
        with pytest.raises(InvalidInput) as refused:
            _start(org, strict, project["id"], server.url)
        assert refused.value.details["field"] == "base_url" and refused.value.details["rule"] == "loopback"
        assert str(refused.value).startswith("base_url: 127.0.0.1 is a loopback address")
        # allowed when queued but not where the runner runs: every call refused, nothing stored
        done = _run(org, strict, _start(org, settings, project["id"], server.url)["id"])
        assert server.requests == []
    assert done["status"] == "succeeded"
    assert (done["result"]["failed"], done["result"]["stored"]) == (2, 0)
    assert "url refused" in done["result"]["problems"][0]["reason"]


def test_bad_requests_name_their_field(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    for options, field_name in (
        ({"question": "mood"}, "question"),
        ({"model": "tiny@2"}, "model"),
        ({"base_url": "ftp://example.com/v1"}, "base_url"),
    ):
        body = {"question": "sentiment", "base_url": "http://127.0.0.1:9/v1", "model": "tiny", **options}
        with pytest.raises(InvalidInput) as refused:
            llm_labeling.start_llm_labeling(
                org.db, org.owner.principal, settings, project["id"], LlmLabelRequest(**body)
            )
        assert refused.value.details["field"] == field_name


def test_managers_only_and_no_project_of_another_organization(org: Org, other_org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    body = LlmLabelRequest(question="sentiment", base_url="http://127.0.0.1:9/v1", model="tiny")
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        with pytest.raises(Forbidden):
            llm_labeling.start_llm_labeling(org.db, org.principal_for(role), settings, project["id"], body)
    job = llm_labeling.start_llm_labeling(org.db, org.principal_for(Role.MANAGER), settings, project["id"], body)
    assert job["status"] == "queued"
    with pytest.raises(NotFound):
        llm_labeling.start_llm_labeling(org.db, other_org.owner.principal, settings, project["id"], body)


def test_gold_tasks_come_first_and_measure_the_model(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    tasks = org.make_tasks(project["id"], 4)
    by_item = {int(ITEM.search(task["data"]["text"]).group(1)): task["id"] for task in tasks}  # type: ignore[union-attr]
    # the model says item 0 is positive (right) and item 1 negative (wrong: gold says positive)
    for item in (0, 1):
        gold.mark_gold(org.db, org.owner.principal, by_item[item], {"sentiment": "positive"})
    with running(llm) as server:
        done = _run(org, settings, _start(org, settings, project["id"], server.url, version="g", limit=2)["id"])
    assert (done["result"]["asked"], done["result"]["stored"]) == (2, 2)
    with org.db.read() as conn:
        assert [len(predictions.task_predictions(conn, org.id, by_item[i])) for i in range(4)] == [1, 1, 0, 0]
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    (model,) = [f for f in figures if f["worker_id"] == done["result"]["worker_id"]]
    assert model["gold_answers"] == 2 and model["gold_accuracy"] == pytest.approx(0.5)
