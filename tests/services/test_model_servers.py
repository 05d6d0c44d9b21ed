"""An external model server as a model worker: a ``model.server_predict`` job run by a real job
runner against a real HTTP server on 127.0.0.1 speaking the protocol (allowed by the settings, as
tests of outbound calls do), on SQLite and PostgreSQL: new results sent to /train, valid answers
stored as the model worker's predictions, invalid ones counted, a cancel, a repeat that skips."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from receiver import Reply, Request, running
from truthset.config import Settings
from truthset.domain import Role, WorkerKind
from truthset.errors import Forbidden, InvalidInput, NotFound
from truthset.jobs import Runner
from truthset.schemas import ResponseCreate
from truthset.services import gold, jobs, model_servers, predictions, queue
from truthset.services.jobs import JobContext
from truthset.services.model_servers import KIND, ServerPredictRequest
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
ITEM = re.compile(r"item (\d+)")


def reply(body: object) -> Reply:
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def item(task: dict[str, Any]) -> int:
    return int(ITEM.search(task["data"]["text"]).group(1))  # type: ignore[union-attr]


class ModelServer:
    """Even items positive, odd negative; item 3 gets an answer outside the options, item 5 none."""

    def __init__(self, on_predict: Callable[[], None] | None = None) -> None:
        self.trained: list[dict[str, Any]] = []
        self.on_predict = on_predict

    def __call__(self, request: Request, _n: int) -> Reply:
        if request.path == "/health":
            return reply({"name": "echo", "version": "v1"})
        body = json.loads(request.body)
        if request.path == "/train":
            self.trained.extend(body["results"])
            return reply({"accepted": len(body["results"]), "version": "v1"})
        if self.on_predict is not None:
            self.on_predict()
        answers = []
        for task in body["tasks"]:
            n = item(task)
            if n == 5:
                continue
            answer = "neutral" if n == 3 else ("positive" if n % 2 == 0 else "negative")
            answers.append({"task": task["id"], "answer": answer, "score": 0.8 if n % 4 else None})
        return reply({"model": {"name": "echo", "version": "v1"}, "predictions": answers})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", outbound_allow="127.0.0.1")


def _start(org: Org, settings: Settings, project_id: str, url: str, **options: Any) -> dict[str, Any]:
    request = ServerPredictRequest(question="sentiment", base_url=url, **options)
    return model_servers.start_server_predictions(org.db, org.owner.principal, settings, project_id, request)


def _run(org: Org, settings: Settings, job_id: str) -> dict[str, Any]:
    Runner(org.db, kinds=[KIND], settings=settings).run_until_idle()
    return jobs.get_job(org.db, org.owner.principal, job_id)


def test_valid_answers_are_stored_invalid_ones_counted_and_a_repeat_skips_them(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    by_item = {item(task): task["id"] for task in org.make_tasks(project["id"], 8)}
    server = ModelServer()
    with running(server) as http:
        job = _start(org, settings, project["id"], http.url, api_key="sk-secret", batch_size=3)
        assert job["status"] == "queued" and job["kind"] == KIND
        assert "sk-secret" not in json.dumps(job, default=str)  # sealed before it entered the payload
        done = _run(org, settings, job["id"])
        requests = list(http.requests)
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    assert result["model"] == "echo@v1"
    assert (result["waiting"], result["asked"], result["stored"]) == (8, 8, 6)
    assert (result["invalid"], result["abstained"], result["refused"]) == (1, 1, 0)
    assert [p["task_id"] for p in result["problems"]] == [by_item[3]]
    assert "predictions[" in result["problems"][0]["reason"]
    predicts = [r for r in requests if r.path == "/predict"]
    assert [len(json.loads(r.body)["tasks"]) for r in predicts] == [3, 3, 2]  # the client's batches
    assert all(r.headers["authorization"] == "Bearer sk-secret" for r in requests)
    assert "sk-secret" not in json.dumps(done, default=str)

    with org.db.read() as conn:
        stored = {i: predictions.task_predictions(conn, org.id, task_id) for i, task_id in by_item.items()}
        worker = conn.execute(t.workers.select().where(t.workers.c.id == result["worker_id"])).mappings().one()
    assert worker["kind"] == str(WorkerKind.MODEL) and worker["name"] == "echo@v1"
    for n in (0, 1, 2, 4, 6, 7):
        (prediction,) = stored[n]
        assert prediction["answer"] == {"sentiment": "positive" if n % 2 == 0 else "negative"}
        assert prediction["scores"] == {"sentiment": 0.8 if n % 4 else 0.5}  # no score: the default
    assert stored[3] == [] and stored[5] == []  # invalid and abstained: nothing stored
    assert all(org.task(task_id)["response_count"] == 0 for task_id in by_item.values())  # never a judgment

    # again: only the two tasks this version has no answer for are asked about
    with running(ModelServer()) as http:
        again = _run(org, settings, _start(org, settings, project["id"], http.url)["id"])
        (predict,) = [r for r in http.requests if r.path == "/predict"]
    assert {task["id"] for task in json.loads(predict.body)["tasks"]} == {by_item[3], by_item[5]}
    assert (again["result"]["waiting"], again["result"]["stored"]) == (2, 0)


def test_new_results_are_sent_to_train_once_and_gold_never(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC, overlap=1)
    tasks = org.make_tasks(project["id"], 6)
    gold.mark_gold(org.db, org.owner.principal, tasks[5]["id"], {"sentiment": "negative"})
    person = org.add_member(Role.ANNOTATOR)
    for task in tasks[:3]:
        queue.submit(org.db, person.principal, task["id"], ResponseCreate(answer={"sentiment": "positive"}))
    server = ModelServer()
    with running(server) as http:
        first = _run(org, settings, _start(org, settings, project["id"], http.url)["id"])
        assert first["result"]["trained"] == {"sent": 3, "accepted": 3, "version": "v1"}
        assert sorted(r["id"] for r in server.trained) == sorted(task["id"] for task in tasks[:3])
        assert {r["answer"] for r in server.trained} == {"positive"}
        assert all(r["data"]["text"].startswith("item ") for r in server.trained)

        second = _run(org, settings, _start(org, settings, project["id"], http.url)["id"])
        assert second["result"]["trained"]["sent"] == 0  # nothing new since the first job
        queue.submit(org.db, person.principal, tasks[3]["id"], ResponseCreate(answer={"sentiment": "negative"}))
        third = _run(org, settings, _start(org, settings, project["id"], http.url)["id"])
        assert third["result"]["trained"]["sent"] == 1 and server.trained[-1]["id"] == tasks[3]["id"]
        off = _run(org, settings, _start(org, settings, project["id"], http.url, train=False)["id"])
        assert off["result"]["trained"]["sent"] == 0 and len(server.trained) == 4
    assert tasks[5]["id"] not in {r["id"] for r in server.trained}  # the model is measured on gold


def test_a_cancel_stops_between_chunks_and_a_new_job_goes_on(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_servers, "CHUNK", 2)
    project = org.make_project(spec=SPEC)
    org.make_tasks(project["id"], 6)
    job_id: list[str] = []

    def cancel_once() -> None:
        if len(job_id) == 1:
            jobs.cancel(org.db, org.owner.principal, job_id.pop())

    with running(ModelServer(on_predict=cancel_once)) as http:
        job = _start(org, settings, project["id"], http.url, train=False)
        job_id.append(job["id"])
        claimed = jobs.claim(org.db, "r", [KIND])
        context = JobContext(org.db, claimed, "r", write_interval=0, settings=settings)  # every progress looks
        with pytest.raises(jobs.JobCanceled):
            model_servers.run_server_predictions(org.db, context)
        assert jobs.get_job(org.db, org.owner.principal, job["id"])["status"] == "canceled"
        with org.db.read() as conn:
            worker = conn.execute(t.workers.select().where(t.workers.c.name == "echo@v1")).mappings().one()
            stored = conn.execute(t.responses.select().where(t.responses.c.worker_id == worker["id"])).all()
        assert len(stored) == 2  # the chunk in flight was stored; the rest never asked
        rest = _run(org, settings, _start(org, settings, project["id"], http.url, train=False)["id"])
    assert rest["status"] == "succeeded" and rest["result"]["waiting"] == 4


def test_a_refused_address_is_a_422_naming_base_url(org: Org, tmp_path: Path) -> None:
    project = org.make_project(spec=SPEC)
    strict = Settings(data_dir=tmp_path / "data")  # no TRUTHSET_OUTBOUND_ALLOW
    for url in ("http://127.0.0.1:9/", "http://10.0.0.8:8000", "http://169.254.169.254"):
        with pytest.raises(InvalidInput) as caught:
            _start(org, strict, project["id"], url)
        assert caught.value.details["field"] == "base_url" and "base_url" in caught.value.message


def test_bad_requests_name_their_field_and_only_managers_of_the_organization(
    org: Org, other_org: Org, settings: Settings
) -> None:
    project = org.make_project(spec=SPEC)
    with pytest.raises(InvalidInput) as caught:
        model_servers.start_server_predictions(
            org.db, org.owner.principal, settings, project["id"], ServerPredictRequest("nope", "http://127.0.0.1:1")
        )
    assert caught.value.details["field"] == "question"
    request = ServerPredictRequest("sentiment", "http://127.0.0.1:1")
    annotator = org.add_member(Role.ANNOTATOR)
    with pytest.raises(Forbidden):
        model_servers.start_server_predictions(org.db, annotator.principal, settings, project["id"], request)
    manager = org.add_member(Role.MANAGER)
    assert model_servers.start_server_predictions(org.db, manager.principal, settings, project["id"], request)
    with pytest.raises(NotFound):
        model_servers.start_server_predictions(
            other_org.db, other_org.owner.principal, settings, project["id"], request
        )
