"""Retraining as results accumulate (services/retraining.py), on SQLite and PostgreSQL: the policy
``retrain: {question, every}`` queues one ``model.train`` job when the training labels grew by
``every`` since the last version (or reached the minimum with none), none below it, none when off."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from learners.synthetic import tickets
from truthset.config import Settings
from truthset.errors import InvalidInput
from truthset.jobs import Runner
from truthset.schemas import ProjectUpdate, QualityPolicy, ResponseCreate
from truthset.services import jobs, model_training, projects, queue, retraining, tasks
from truthset.services.completion import completion_rules
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "topic", "type": "label", "options": ["billing", "shipping", "bug"]},
        {"name": "note", "type": "text", "required": False},
    ],
}
EVERY = 30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


class Labeling:
    """A project of synthetic tickets and three people who answer them one at a time."""

    def __init__(self, org: Org, quality: dict[str, Any], n: int = 120) -> None:
        self.org = org
        self.project = org.make_project(spec=SPEC, quality=quality)
        examples, self.labels = tickets(n, seed=5, noise=0.0)
        items = [(i + 1, {"data": dict(task.data), "unique_id": task.key}) for i, task in enumerate(examples)]
        tasks.import_tasks(org.db, org.owner.principal, self.project["id"], items)
        by_key = {task["unique_id"]: task["id"] for task in org.all_tasks()}
        self.ids = [by_key[task.key] for task in examples]
        self.people = [org.add_member() for _ in range(3)]
        self.done = 0

    def answer(self, n: int) -> None:
        for _ in range(n):
            index = self.done
            person = self.people[index % 3].principal
            queue.submit(self.org.db, person, self.ids[index], ResponseCreate(answer={"topic": self.labels[index]}))
            self.done += 1

    def training_jobs(self) -> list[dict[str, Any]]:
        j = t.jobs.c
        query = select(t.jobs).where(j.organization_id == self.org.id, j.kind == model_training.KIND)
        with self.org.db.read() as conn:
            return [dict(row) for row in conn.execute(query.order_by(j.created_at, j.id)).mappings()]


def _retrain(every: int = EVERY) -> dict[str, Any]:
    return {"overlap": 1, "retrain": {"question": "topic", "every": every}}


def _run(org: Org, settings: Settings) -> None:
    Runner(org.db, kinds=[model_training.KIND], settings=settings).run_until_idle()


def test_the_first_job_waits_for_the_minimum_then_one_per_every_new_labels(org: Org, settings: Settings) -> None:
    work = Labeling(org, _retrain())
    work.answer(retraining.MIN_LABELS - 1)
    assert work.training_jobs() == []  # below the minimum: none
    work.answer(1)
    (first,) = work.training_jobs()  # crossing it: exactly one
    assert first["payload"] == {"project_id": work.project["id"], "question": "topic", "trigger": "retrain"}
    assert first["created_by"] is None and first["status"] == "queued"
    work.answer(25)
    assert len(work.training_jobs()) == 1  # one waits: no second

    _run(org, settings)
    (done,) = work.training_jobs()
    assert done["status"] == "succeeded", done
    assert done["result"]["status"] == "trained" and done["result"]["metrics"]["n_examples"] == 45
    assert done["result"]["predictions"]["stored"] == 120 - 45  # the waiting tasks were predicted

    work.answer(EVERY - 1)  # 74 labels, the version learned 45: not yet
    assert len(work.training_jobs()) == 1
    work.answer(1)  # 75 = 45 + every
    jobs_now = work.training_jobs()
    assert len(jobs_now) == 2 and jobs_now[1]["status"] == "queued"
    _run(org, settings)
    assert work.training_jobs()[1]["result"]["metrics"]["n_examples"] == 75
    versions, _ = model_training.list_models(org.db, org.owner.principal, work.project["id"], cursor=None, limit=10)
    assert len(versions) == 2


def test_no_second_job_while_one_runs(org: Org, settings: Settings) -> None:
    work = Labeling(org, _retrain(every=10))
    work.answer(retraining.MIN_LABELS)
    (job,) = work.training_jobs()
    with org.db.write() as conn:  # as a runner that claimed it
        conn.execute(t.jobs.update().where(t.jobs.c.id == job["id"]).values(status="running"))
    work.answer(30)
    assert len(work.training_jobs()) == 1


def test_off_queues_nothing(org: Org) -> None:
    work = Labeling(org, {"overlap": 1})
    work.answer(80)
    assert work.training_jobs() == []
    assert retraining.after_refit(org.db, org.id, work.project["id"]) is None
    assert work.training_jobs() == []


def test_below_target_results_are_no_labels(org: Org) -> None:
    # one judgment never reaches 0.99: every task completes below target, and none is a label
    quality = {"min_overlap": 1, "max_overlap": 1, "target_confidence": 0.99, "retrain": {"question": "topic"}}
    work = Labeling(org, quality)
    work.answer(60)
    assert work.training_jobs() == []
    with org.db.read() as conn:
        project = projects.load_project(conn, org.owner.principal, work.project["id"])
        counts = retraining.label_counts(conn, org.id, project["id"], "topic", completion_rules(project))
    assert counts == {"labels": 0, "trained": None}


def test_switching_it_on_later_is_caught_by_the_check_after_a_refit(org: Org) -> None:
    work = Labeling(org, {"overlap": 1})
    work.answer(40)
    update = ProjectUpdate(quality=QualityPolicy.model_validate(_retrain()))
    projects.update_project(org.db, org.owner.principal, work.project["id"], update)
    job = retraining.after_refit(org.db, org.id, work.project["id"])
    assert job is not None and job["kind"] == model_training.KIND
    assert retraining.after_refit(org.db, org.id, work.project["id"]) is None  # it waits: no second
    assert len(work.training_jobs()) == 1


def test_a_manager_request_and_the_policy_share_one_waiting_job(org: Org) -> None:
    work = Labeling(org, _retrain())
    work.answer(retraining.MIN_LABELS)
    (queued,) = work.training_jobs()
    asked = model_training.request_training(org.db, org.owner.principal, work.project["id"], "topic")
    assert asked["id"] == queued["id"]
    assert jobs.get_job(org.db, org.owner.principal, queued["id"])["kind"] == model_training.KIND


def test_the_policy_names_a_label_question_of_the_spec(org: Org) -> None:
    project = org.make_project(spec=SPEC, quality={"overlap": 1})
    for question in ("note", "nope"):
        update = ProjectUpdate(quality=QualityPolicy.model_validate({"retrain": {"question": question}}))
        with pytest.raises(InvalidInput) as caught:
            projects.update_project(org.db, org.owner.principal, project["id"], update)
        assert caught.value.details["field"] == "quality.retrain.question"
    with pytest.raises(ValueError, match="every"):
        QualityPolicy.model_validate({"retrain": {"question": "topic", "every": 0}})
    # without a question (as the editor's policy form turns it on), the spec's first label question
    update = ProjectUpdate(quality=QualityPolicy.model_validate({"retrain": {"every": 50}}))
    stored = projects.update_project(org.db, org.owner.principal, project["id"], update)
    assert stored["quality"]["retrain"] == {"question": "topic", "every": 50}
    text_only = {"fields": SPEC["fields"], "questions": [SPEC["questions"][1]]}
    with pytest.raises(InvalidInput) as caught:
        org.make_project(spec=text_only, quality={"retrain": {}})
    assert caught.value.details["field"] == "quality.retrain.question"
