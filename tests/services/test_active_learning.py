"""Active learning (services/active_learning.py): with ``ordering: "model_uncertainty"`` the queue
serves the tasks where one more human judgment helps most first, untouched ones by their model's
uncertainty; with "uncertainty" started tasks first and the rest oldest first; with "priority"
nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from truthset.domain import Role, TaskStatus
from truthset.errors import Forbidden, InvalidInput, NotFound
from truthset.schemas import PredictionUpload, ProjectUpdate, QualityPolicy, ResponseCreate
from truthset.services import active_learning as al
from truthset.services import predictions, projects, queue
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog", "bird"]}],
}
UNCERTAIN = {"ordering": "model_uncertainty"}


def _project(org: Org, **quality: Any) -> dict[str, Any]:
    return org.make_project(spec=SPEC, quality={"overlap": 1, **UNCERTAIN, **quality})


def _predict(org: Org, project_id: str, scored: dict[str, tuple[str, float]], version: str = "1") -> None:
    items = [
        {"task_id": task_id, "question": "animal", "answer": label, "score": score}
        for task_id, (label, score) in scored.items()
    ]
    body = PredictionUpload(model="clf", version=version, predictions=items)
    predictions.upload_predictions(org.db, org.owner.principal, project_id, body)


def _drain(org: Org, project_id: str, worker: Any = None) -> list[str]:
    """Every task the queue serves one worker, in order (each leased, then answered)."""
    worker = worker or org.add_member()
    served = []
    while lease := queue.next_assignment(org.db, worker.principal, project_id):
        served.append(lease["task"]["id"])
        queue.submit(org.db, worker.principal, lease["task"]["id"], ResponseCreate(answer={"animal": "cat"}))
    return served


def _ranks(org: Org, project_id: str) -> dict[str, int]:
    with org.db.read() as conn:
        query = select(t.tasks.c.id, t.tasks.c.queue_rank).where(t.tasks.c.project_id == project_id)
        return {row.id: row.queue_rank for row in conn.execute(query)}


def _epoch(org: Org, project_id: str) -> int:
    with org.db.read() as conn:
        return conn.execute(select(t.projects.c.queue_epoch).where(t.projects.c.id == project_id)).scalar_one()


# --- pure ------------------------------------------------------------------------------------------


def test_order_started_first_then_new_then_by_model_uncertainty() -> None:
    found = [
        al.Signal("a", False, 0.1, "cat"),
        al.Signal("b", False, 0.6, "dog"),
        al.Signal("c", True, 0.05, "cat"),
        al.Signal("d", True, 0.5, "dog"),
        al.Signal("e", False, 1.0, None),
    ]
    ordered = al.order(found)
    assert [s.task_id for s in ordered] == ["d", "c", "e", "b", "a"]
    ranks = al.ranks(ordered)
    # started tasks below 0, untouched above: 0 is where tasks added after the re-rank wait
    assert ranks == {"d": -2, "c": -1, "e": 1, "b": 2, "a": 3}


def test_the_diversity_guard_interleaves_predicted_classes_among_equally_uncertain_tasks() -> None:
    # eight equally uncertain tasks, the first four all "cat": served cat, dog, bird, cat, dog, ...
    labels = ["cat", "cat", "cat", "cat", "dog", "dog", "bird", "bird"]
    found = [al.Signal(f"t{i}", False, 0.42 + i * 0.001, label) for i, label in enumerate(labels)]
    ordered = [s.label for s in al.order(found)]
    assert ordered[:3] in (["bird", "dog", "cat"], ["bird", "cat", "dog"], ["cat", "bird", "dog"])
    assert len(set(ordered[:3])) == 3 and len(set(ordered[3:6])) == 3
    # a clearly more uncertain task still comes first, whatever its class
    found.append(al.Signal("top", False, 0.9, "cat"))
    assert al.order(found)[0].task_id == "top"


def test_uncertainty_of_a_confidence() -> None:
    assert al.uncertainty(0.9) == pytest.approx(0.1)
    assert al.uncertainty(None) == 1.0 and al.uncertainty(float("nan")) == 1.0
    assert al.uncertainty(1.5) == 0.0 and al.uncertainty(-1) == 1.0


# --- the queue -------------------------------------------------------------------------------------


def test_the_least_certain_prediction_is_served_first_and_a_confident_one_last(org: Org) -> None:
    project = _project(org)
    made = org.make_tasks(project["id"], 5)
    ids = [task["id"] for task in made]
    scores = [0.99, 0.4, 0.7, 0.55, 0.9]
    _predict(org, project["id"], {i: ("cat", s) for i, s in zip(ids, scores, strict=True)})
    epoch = _epoch(org, project["id"])
    report = al.rerank(org.db, org.owner.principal, project["id"])
    assert report["ranked"] == 5 and report["changed"] == 5 and report["ordering"] == "model_uncertainty"
    assert _epoch(org, project["id"]) > epoch  # the frontier of every worker is void
    expected = [ids[1], ids[3], ids[2], ids[4], ids[0]]
    assert al.queue_order(org.db, org.owner.principal, project["id"], limit=10) == expected
    assert _drain(org, project["id"]) == expected


def test_a_started_task_with_a_low_posterior_comes_before_untouched_confident_ones(org: Org) -> None:
    project = _project(org, min_overlap=1, max_overlap=3, overlap=None, target_confidence=0.95)
    made = org.make_tasks(project["id"], 4)
    ids = [task["id"] for task in made]
    _predict(org, project["id"], {i: ("dog", 0.95) for i in ids})
    # one person answers the last task: at one answer of an average worker it stays pending, unsure
    person = org.add_member()
    queue.submit(org.db, person.principal, ids[3], ResponseCreate(answer={"animal": "cat"}))
    assert org.task(ids[3])["status"] == str(TaskStatus.PENDING)
    al.rerank(org.db, org.owner.principal, project["id"])
    assert al.queue_order(org.db, org.owner.principal, project["id"])[0] == ids[3]
    assert _ranks(org, project["id"])[ids[3]] < 0 < _ranks(org, project["id"])[ids[0]]
    assert _drain(org, project["id"])[0] == ids[3]


def test_tasks_without_predictions_are_maximally_uncertain_and_new_ones_wait_at_rank_0(org: Org) -> None:
    project = _project(org)
    made = org.make_tasks(project["id"], 3)
    ids = [task["id"] for task in made]
    _predict(org, project["id"], {ids[0]: ("cat", 0.6), ids[1]: ("dog", 0.8)})
    al.rerank(org.db, org.owner.principal, project["id"])
    assert al.queue_order(org.db, org.owner.principal, project["id"]) == [ids[2], ids[0], ids[1]]
    # a task added after the re-rank has rank 0: before the ranked untouched tasks, without a re-rank
    late = org.make_task(project["id"], "late")
    assert _ranks(org, project["id"])[late["id"]] == 0
    assert al.queue_order(org.db, org.owner.principal, project["id"])[0] == late["id"]


def test_the_diversity_guard_in_the_queue(org: Org) -> None:
    project = _project(org)
    ids = [task["id"] for task in org.make_tasks(project["id"], 6)]
    labels = ["cat", "cat", "cat", "dog", "dog", "dog"]
    _predict(org, project["id"], {i: (label, 0.6) for i, label in zip(ids, labels, strict=True)})
    al.rerank(org.db, org.owner.principal, project["id"])
    order = al.queue_order(org.db, org.owner.principal, project["id"])
    served = [labels[ids.index(i)] for i in order]
    assert served in (["cat", "dog"] * 3, ["dog", "cat"] * 3)


def test_priority_still_beats_rank(org: Org) -> None:
    project = _project(org)
    low = org.make_task(project["id"], "low", priority=0)
    high = org.make_task(project["id"], "high", priority=5)
    _predict(org, project["id"], {low["id"]: ("cat", 0.34), high["id"]: ("cat", 0.99)})
    al.rerank(org.db, org.owner.principal, project["id"])
    assert al.queue_order(org.db, org.owner.principal, project["id"]) == [high["id"], low["id"]]


def test_the_best_model_decides_and_paused_or_other_models_do_not_hide_it(org: Org) -> None:
    project = _project(org)
    a, b = (task["id"] for task in org.make_tasks(project["id"], 2))
    _predict(org, project["id"], {a: ("cat", 0.9), b: ("cat", 0.5)}, version="1")
    _predict(org, project["id"], {a: ("cat", 0.5), b: ("cat", 0.9)}, version="2")
    al.rerank(org.db, org.owner.principal, project["id"])
    # no fitted worker model knows either: the newer version decides
    assert al.queue_order(org.db, org.owner.principal, project["id"]) == [a, b]


def test_ranks_change_only_with_a_new_epoch_and_two_workers_lose_no_task(org: Org) -> None:
    """A worker's frontier never hides a task: reranked while two workers drain the queue."""
    project = _project(org, overlap=2)
    ids = [task["id"] for task in org.make_tasks(project["id"], 30)]
    _predict(org, project["id"], {i: ("cat", 0.34 + 0.02 * n) for n, i in enumerate(ids)})
    al.rerank(org.db, org.owner.principal, project["id"])
    workers = [org.add_member(), org.add_member()]
    had: dict[str, list[str]] = {w.worker_id: [] for w in workers}
    turn = 0
    while True:
        progressed = False
        for worker in workers:
            lease = queue.next_assignment(org.db, worker.principal, project["id"])
            if lease is None:
                continue
            progressed = True
            task_id = lease["task"]["id"]
            had[worker.worker_id].append(task_id)
            queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"animal": "dog"}))
        turn += 1
        if turn % 4 == 0:
            # the order turns over mid-way: the most certain tasks now look the least certain
            _predict(org, project["id"], {i: ("cat", 0.99 - 0.02 * n) for n, i in enumerate(ids)}, f"v{turn}")
            epoch = _epoch(org, project["id"])
            if al.rerank(org.db, org.owner.principal, project["id"])["changed"]:
                assert _epoch(org, project["id"]) > epoch
        if not progressed:
            break
    for worker in workers:
        assert sorted(had[worker.worker_id]) == sorted(ids)  # every task, to each worker, once
    assert all(org.task(i)["status"] == str(TaskStatus.COMPLETED) for i in ids)


def test_uncertainty_ordering_serves_started_tasks_first_and_leaves_untouched_ones_oldest_first(org: Org) -> None:
    """A model's predictions order started tasks (through their posterior) but never untouched ones:
    ranking those by a model that learns from the results skews what it learns from."""
    project = _project(org, ordering="uncertainty", min_overlap=1, max_overlap=3, overlap=None, target_confidence=0.95)
    ids = [task["id"] for task in org.make_tasks(project["id"], 5)]
    _predict(org, project["id"], {i: ("cat", s) for i, s in zip(ids, (0.99, 0.4, 0.7, 0.55, 0.9), strict=True)})
    person = org.add_member()
    queue.submit(org.db, person.principal, ids[4], ResponseCreate(answer={"animal": "dog"}))  # started, unsure
    assert org.task(ids[4])["status"] == str(TaskStatus.PENDING)
    report = al.rerank(org.db, org.owner.principal, project["id"])
    assert report["ordering"] == "uncertainty" and report["ranked"] == 5
    assert _ranks(org, project["id"]) == {ids[4]: -1, **dict.fromkeys(ids[:4], 0)}  # one rank written
    assert al.queue_order(org.db, org.owner.principal, project["id"], limit=10) == [ids[4], *ids[:4]]
    assert _drain(org, project["id"])[:5] == [ids[4], *ids[:4]]


def test_model_uncertainty_ranks_untouched_tasks_that_uncertainty_leaves_alone(org: Org) -> None:
    ids = {}
    for mode in ("uncertainty", "model_uncertainty"):
        project = _project(org, ordering=mode)
        made = [task["id"] for task in org.make_tasks(project["id"], 3)]
        _predict(org, project["id"], {i: ("cat", s) for i, s in zip(made, (0.9, 0.5, 0.7), strict=True)})
        al.rerank(org.db, org.owner.principal, project["id"])
        ids[mode] = [made.index(i) for i in al.queue_order(org.db, org.owner.principal, project["id"])]
    assert ids == {"uncertainty": [0, 1, 2], "model_uncertainty": [1, 2, 0]}


def test_priority_ordering_is_untouched(org: Org) -> None:
    project = org.make_project(spec=SPEC, quality={"overlap": 1})
    made = [org.make_task(project["id"], str(p), priority=p) for p in (0, 5, -1, 5, 2)]
    _predict(org, project["id"], {task["id"]: ("cat", 0.4) for task in made})
    report = al.rerank(org.db, org.owner.principal, project["id"])
    assert report == {**report, "ordering": "priority", "ranked": 0, "changed": 0}
    assert set(_ranks(org, project["id"]).values()) == {0}
    assert _drain(org, project["id"]) == [made[i]["id"] for i in (1, 3, 4, 0, 2)]


def test_back_to_priority_resets_every_rank(org: Org) -> None:
    project = _project(org)
    ids = [task["id"] for task in org.make_tasks(project["id"], 4)]
    _predict(org, project["id"], {i: ("cat", s) for i, s in zip(ids, (0.9, 0.8, 0.5, 0.4), strict=True)})
    al.rerank(org.db, org.owner.principal, project["id"])
    assert al.queue_order(org.db, org.owner.principal, project["id"]) == ids[::-1]
    policy = QualityPolicy.model_validate({**project["quality"], "ordering": "priority"})
    changed = projects.update_project(org.db, org.owner.principal, project["id"], ProjectUpdate(quality=policy))
    job = al.note_policy(org.db, org.owner.principal, changed)
    assert job is not None and job["kind"] == al.JOB_KIND
    report = al.rerank_project(org.db, org.id, project["id"])
    assert report["changed"] == 4 and set(_ranks(org, project["id"]).values()) == {0}
    assert al.queue_order(org.db, org.owner.principal, project["id"]) == ids
    assert al.note_policy(org.db, org.owner.principal, changed) is None  # nothing left to reset: no job


def test_only_pending_tasks_are_ranked(org: Org) -> None:
    project = _project(org)
    done, waiting = (task["id"] for task in org.make_tasks(project["id"], 2))
    queue.submit(org.db, org.add_member().principal, done, ResponseCreate(answer={"animal": "cat"}))
    assert org.task(done)["status"] == str(TaskStatus.COMPLETED)
    _predict(org, project["id"], {waiting: ("dog", 0.5)})
    report = al.rerank(org.db, org.owner.principal, project["id"])
    assert report["ranked"] == 1 and _ranks(org, project["id"]) == {done: 0, waiting: 1}


def test_hooks_ask_for_a_delayed_rerank_job_only_under_uncertainty(org: Org) -> None:
    plain = org.make_project(spec=SPEC, quality={"overlap": 1})
    ordered = _project(org)
    for project in (plain, ordered):
        (task,) = org.make_tasks(project["id"], 1)
        _predict(org, project["id"], {task["id"]: ("cat", 0.5)})
    with org.db.read() as conn:
        found = conn.execute(select(t.jobs).where(t.jobs.c.kind == al.JOB_KIND)).mappings().all()
    assert [job["payload"]["project_id"] for job in found] == [ordered["id"]]  # one, deduplicated
    # it waits, so a burst of uploads and refits makes one re-rank; one asked for runs at once
    assert found[0]["run_after"] > found[0]["created_at"] + timedelta(seconds=al.AUTO_DELAY_SECONDS - 1)
    now = al.request_rerank(org.db, org.owner.principal, ordered["id"])
    assert now["id"] != found[0]["id"]


def test_roles_and_tenants(org: Org, other_org: Org) -> None:
    project = _project(org)
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        with pytest.raises(Forbidden):
            al.rerank(org.db, org.principal_for(role), project["id"])
        with pytest.raises(Forbidden):
            al.request_rerank(org.db, org.principal_for(role), project["id"])
    job = al.request_rerank(org.db, org.principal_for(Role.MANAGER), project["id"])
    assert job["kind"] == al.JOB_KIND and job["status"] == "queued"
    with pytest.raises(NotFound):
        al.request_rerank(other_org.db, other_org.owner.principal, project["id"])
    with pytest.raises(NotFound):
        al.queue_order(other_org.db, other_org.owner.principal, project["id"])
    with pytest.raises(Forbidden):
        al.queue_order(org.db, org.principal_for(Role.ANNOTATOR), project["id"])
    with pytest.raises(InvalidInput, match="limit"):
        al.queue_order(org.db, org.owner.principal, project["id"], limit=0)


def test_the_rerank_job_runs_through_the_runner_and_a_refit_asks_for_one(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from truthset import jobs as registry
    from truthset.jobs import Runner
    from truthset.services import refit

    assert registry.handler_for(al.JOB_KIND).__module__ == "truthset.jobs.handlers"
    monkeypatch.setattr(al, "AUTO_DELAY_SECONDS", 0.0)  # due at once (no waiting in a test)
    project = _project(org, overlap=2)
    ids = [task["id"] for task in org.make_tasks(project["id"], 12)]
    _predict(org, project["id"], {i: ("cat", 0.4 + 0.05 * n) for n, i in enumerate(ids)})
    assert Runner(org.db, kinds=[al.JOB_KIND]).run_until_idle() == 1  # the one the upload asked for
    assert al.queue_order(org.db, org.owner.principal, project["id"], limit=2) == ids[:2]
    people = [org.add_member(), org.add_member()]
    for task_id in ids:
        for person in people:
            queue.submit(org.db, person.principal, task_id, ResponseCreate(answer={"animal": "dog"}))
    fitted = refit.refit_project(org.db, org.id, project["id"])
    assert fitted["fitted"]
    with org.db.read() as conn:
        waiting = conn.execute(select(t.jobs.c.id).where(t.jobs.c.kind == al.JOB_KIND, t.jobs.c.status == "queued"))
        assert len(waiting.all()) == 1
    assert Runner(org.db, kinds=[al.JOB_KIND]).run_until_idle() == 1
