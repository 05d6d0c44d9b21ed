"""Gold: marking, mixing into queues at the policy's rate, scoring, pausing, reinstating, qualification.

Everything runs through the services the API uses, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from scipy.stats import binom
from sqlalchemy import select

from conftest import until_not_busy
from truthset.domain import Principal, TaskStatus
from truthset.errors import Busy, Conflict, Forbidden, InvalidInput, NotFound
from truthset.schemas import AssignmentOut, ResponseCreate, SubmitResult
from truthset.services import gold, quality, queue, tasks
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

OPTIONS = ["positive", "negative", "neutral"]


@pytest.fixture(autouse=True)
def _seeded_gold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which lease is gold is random in production; seeded here so every run serves the same queue."""
    monkeypatch.setattr(gold, "_RNG", random.Random(8))


def _project(org: Org, n_gold: int, n_real: int, **policy: Any) -> tuple[dict, dict[str, str]]:
    """A project with ``n_gold`` gold tasks (answers cycling through the options) and ``n_real`` others."""
    project = org.make_project(quality={"overlap": 1, "gold": policy})
    made = org.make_tasks(project["id"], n_gold + n_real)
    truth = {}
    for i, task in enumerate(made[:n_gold]):
        truth[task["id"]] = OPTIONS[i % 3]
        gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": truth[task["id"]]})
    return project, truth


def _work(org: Org, worker: Principal, project: dict, answer: Any, n: int) -> list[dict[str, Any]]:
    """The worker takes and answers up to ``n`` tasks; returns the leases (as stored tasks: status, gold)."""
    served = []
    for _ in range(n):
        lease = queue.next_assignment(org.db, worker, project["id"])
        if lease is None:
            break
        task_id = lease["task"]["id"]
        response = ResponseCreate(answer={"sentiment": answer(task_id)}, assignment_id=lease["id"])
        queue.submit(org.db, worker, task_id, response)
        served.append(tasks.get_task(org.db, org.owner.principal, task_id))
    return served


def _standing(org: Org, project: dict, worker: Principal) -> dict[str, Any]:
    with org.db.read() as conn:
        row = (
            conn.execute(
                select(t.project_workers).where(
                    t.project_workers.c.project_id == project["id"], t.project_workers.c.worker_id == worker.worker_id
                )
            )
            .mappings()
            .first()
        )
    assert row is not None
    return dict(row)


def _events(org: Org, task_id: str) -> list[dict[str, Any]]:
    with org.db.read() as conn:
        query = select(t.task_events).where(t.task_events.c.task_id == task_id).order_by(t.task_events.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


# --- marking ---------------------------------------------------------------------------------------


def test_marking_takes_a_task_out_of_the_queue_and_unmarking_brings_it_back(make_org: Any) -> None:
    org = make_org()
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"], "known")
    marked = gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": "negative"})
    assert marked["status"] == TaskStatus.GOLD and marked["gold"] == {"sentiment": "negative"}
    # gold is off in this project: nobody is served the gold task
    assert queue.next_assignment(org.db, org.principal_for("annotator"), project["id"]) is None
    unmarked = gold.unmark_gold(org.db, org.owner.principal, task["id"])
    assert unmarked["status"] == TaskStatus.PENDING and unmarked["gold"] is None
    assert queue.next_assignment(org.db, org.principal_for("annotator"), project["id"])["task"]["id"] == task["id"]
    assert [e["kind"] for e in _events(org, task["id"])] == ["gold_marked", "gold_unmarked"]


def test_an_unmarked_gold_task_with_its_judgments_completes_from_them(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 1, 0, qualification=1)  # each worker's first task is gold
    (task_id,) = truth
    for role in ("annotator", "reviewer"):  # two workers answer the gold task (overlap is 1)
        _work(org, org.principal_for(role), project, lambda _: "neutral", 1)
    assert tasks.get_task(org.db, org.owner.principal, task_id)["response_count"] == 2
    done = gold.unmark_gold(org.db, org.owner.principal, task_id)
    assert done["status"] == TaskStatus.COMPLETED
    assert done["result"]["answer"] == {"sentiment": "neutral"} and done["result"]["response_count"] == 2


def test_a_gold_answer_is_checked_against_the_spec(make_org: Any) -> None:
    org = make_org()
    task = org.make_task(org.make_project()["id"])
    with pytest.raises(InvalidInput) as caught:
        gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": "maybe"})
    assert caught.value.details == {"field": "answer"} and "sentiment" in caught.value.message
    with pytest.raises(Forbidden):
        gold.mark_gold(org.db, org.principal_for("annotator"), task["id"], {"sentiment": "positive"})


def test_another_organizations_task_cannot_be_marked(make_org: Any) -> None:
    org, other = make_org(), make_org()
    task = org.make_task(org.make_project()["id"])
    with pytest.raises(NotFound):
        gold.mark_gold(other.db, other.owner.principal, task["id"], {"sentiment": "positive"})
    with pytest.raises(NotFound):
        gold.unmark_gold(other.db, other.owner.principal, task["id"])
    assert tasks.get_task(org.db, org.owner.principal, task["id"])["status"] == TaskStatus.PENDING


def test_finalizing_or_canceling_a_batch_leaves_its_gold_tasks_gold(make_org: Any) -> None:
    from truthset.services import projects

    org = make_org()
    project = org.make_project()
    batch = org.make_batch(project["id"])
    task = org.make_task(project["id"], batch_id=batch["id"])
    gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": "positive"})
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    assert tasks.get_task(org.db, org.owner.principal, task["id"])["status"] == TaskStatus.GOLD


# --- serving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.25])
def test_gold_is_mixed_into_a_workers_queue_at_the_policys_rate(make_org: Any, rate: float) -> None:
    org = make_org()
    project, truth = _project(org, 60, 200, rate=rate)
    worker = org.principal_for("annotator")
    served = _work(org, worker, project, lambda task_id: truth.get(task_id, "positive"), 160)
    assert len(served) == 160
    n_gold = sum(task["status"] == TaskStatus.GOLD for task in served)
    # within one task of the rate at every point, not only on average
    assert abs(n_gold - rate * len(served)) <= 1, (n_gold, rate)
    running = 0
    for i, task in enumerate(served, start=1):
        running += task["status"] == TaskStatus.GOLD
        assert abs(running - rate * i) <= 1 + 1e-9, (i, running)
    standing = _standing(org, project, worker)
    assert (standing["tasks_served"], standing["gold_served"]) == (160, n_gold)
    assert standing["gold_answers"] == n_gold and standing["gold_correct"] == n_gold  # all right
    assert len({task["id"] for task in served}) == 160, "no task, gold or not, is served twice"


def test_a_worker_cannot_tell_a_gold_task_from_any_other(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 5, 5, rate=0.5)
    worker = org.principal_for("annotator")
    seen: dict[bool, dict[str, Any]] = {}
    while len(seen) < 2:
        lease = queue.next_assignment(org.db, worker, project["id"])
        assert lease is not None
        is_gold = lease["task"]["id"] in truth
        shown = AssignmentOut.model_validate(lease).model_dump(mode="json")
        submitted = queue.submit(org.db, worker, lease["task"]["id"], ResponseCreate(answer={"sentiment": "positive"}))
        after = SubmitResult.model_validate(submitted).model_dump(mode="json")["task"]
        seen.setdefault(is_gold, {"lease": shown, "after": after})
    normal, golden = seen[False], seen[True]
    assert golden["lease"].keys() == normal["lease"].keys()
    assert golden["lease"]["task"].keys() == normal["lease"]["task"].keys()
    assert "gold" not in golden["lease"]["task"]
    different = {"id", "data", "unique_id", "created_at", "updated_at", "completed_at", "status", "result"}
    for key in golden["lease"]["task"].keys() - different:
        assert golden["lease"]["task"][key] == normal["lease"]["task"][key], key
    assert golden["lease"]["task"]["status"] == normal["lease"]["task"]["status"] == "pending"
    assert golden["after"]["status"] == "pending" and golden["after"]["result"] is None
    assert golden["after"]["response_count"] == 1


def test_with_gold_off_the_queue_records_nothing_more(make_org: Any) -> None:
    """Rate 0 and no qualification: next and submit write no standing (the hot path pays nothing)."""
    org = make_org()
    project, _ = _project(org, 3, 10)
    served = _work(org, org.principal_for("annotator"), project, lambda _: "positive", 20)
    assert len(served) == 10 and all(task["status"] == TaskStatus.COMPLETED for task in served)
    with org.db.read() as conn:
        assert conn.execute(select(t.project_workers)).first() is None


# --- scoring, pausing, reinstating ---------------------------------------------------------------------


def test_a_random_clicker_is_paused_by_gold(make_org: Any) -> None:
    org = make_org()
    project, _ = _project(org, 60, 200, rate=0.3, min_accuracy=0.8, min_answers=5)
    clicker = org.principal_for("annotator")
    clicks = random.Random(3)
    with pytest.raises(Forbidden) as caught:
        _work(org, clicker, project, lambda _: clicks.choice(OPTIONS), 200)
    assert caught.value.code == "worker_paused"
    standing = _standing(org, project, clicker)
    assert standing["status"] == "paused"
    assert 5 <= standing["gold_answers"] <= 30
    assert "below the project's minimum 0.80" in standing["reason"] and "95% interval" in standing["reason"]
    assert caught.value.details["reason"] == standing["reason"]
    # paused stays paused: every next is refused, naming the reason
    with pytest.raises(Forbidden, match="paused"):
        queue.next_assignment(org.db, clicker, project["id"])
    # managers see it in the worker figures
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    mine = next(f for f in figures if f["worker_id"] == clicker.worker_id)
    assert mine["status"] == "paused" and mine["status_reason"] == standing["reason"]
    low, high = mine["gold_interval"]
    assert low <= mine["gold_accuracy"] <= high < 0.8


def test_a_good_worker_is_not_paused(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 60, 200, rate=0.3, min_accuracy=0.8, min_answers=5)
    worker = org.principal_for("annotator")
    mistakes = random.Random(5)  # right on gold 90% of the time

    def answer(task_id: str) -> str:
        right = truth.get(task_id, "positive")
        return right if mistakes.random() < 0.9 else next(o for o in OPTIONS if o != right)

    served = _work(org, worker, project, answer, 200)
    assert len(served) == 200
    standing = _standing(org, project, worker)
    assert standing["status"] == "active" and standing["gold_answers"] >= 50


def test_a_paused_workers_answer_on_a_lease_they_hold_is_kept(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 20, 20, rate=0.5, min_accuracy=0.9, min_answers=3)
    worker = org.principal_for("annotator")
    wrong = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    leases = [queue.next_assignment(org.db, worker, project["id"]) for _ in range(12)]
    gold_leases = [lease for lease in leases if lease["task"]["id"] in truth]
    real_leases = [lease for lease in leases if lease["task"]["id"] not in truth]
    for lease in gold_leases[:3]:
        task_id = lease["task"]["id"]
        queue.submit(org.db, worker, task_id, ResponseCreate(answer={"sentiment": wrong[truth[task_id]]}))
    assert _standing(org, project, worker)["status"] == "paused"
    queue.submit(org.db, worker, real_leases[0]["task"]["id"], ResponseCreate(answer={"sentiment": "neutral"}))
    assert org.task(real_leases[0]["task"]["id"])["status"] == TaskStatus.COMPLETED


def test_a_manager_reinstates_a_paused_worker_with_a_fresh_gold_record(make_org: Any) -> None:
    org = make_org()
    project, _ = _project(org, 40, 100, rate=0.3, min_accuracy=0.8, min_answers=5)
    worker = org.principal_for("annotator")
    with pytest.raises(Forbidden):
        _work(org, worker, project, lambda _: "neutral", 100)  # always the same option: a third right
    paused = _standing(org, project, worker)
    with pytest.raises(Forbidden):
        gold.reinstate(org.db, worker, project["id"], worker.worker_id)  # not their own to lift
    back = gold.reinstate(org.db, org.principal_for("manager"), project["id"], worker.worker_id)
    assert back["status"] == "active" and back["gold_answers"] == 0 and back["gold_correct"] == 0
    assert back["reason"].startswith("reinstated by member") and paused["reason"] in back["reason"]
    stored = _standing(org, project, worker)
    assert stored["tasks_served"] == paused["tasks_served"] and stored["gold_served"] == paused["gold_served"]
    assert queue.next_assignment(org.db, worker, project["id"]) is not None
    with pytest.raises(NotFound):
        gold.reinstate(org.db, org.owner.principal, project["id"], "0" * 26)


def test_scoring_gives_partial_credit_per_deciding_question(make_org: Any) -> None:
    org = make_org()
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "topic", "type": "labels", "options": ["a", "b", "c"]},
            {"name": "stars", "type": "rating", "min": 1, "max": 5},
            {"name": "note", "type": "text"},
            {"name": "aside", "type": "text", "required": False},
        ],
    }
    project = org.make_project(spec=spec, quality={"overlap": 1, "gold": {"rate": 0.5}})
    gold_answer = {"topic": ["a", "b"], "stars": 4, "note": "a  cat\non a mat", "aside": "x"}
    assert gold.grade(project, gold_answer, {"topic": ["b", "a"], "stars": 4, "note": "a cat on a mat "}) == {
        "topic": True,
        "stars": True,
        "note": True,
    }  # "aside" is not a deciding question: not scored
    assert gold.grade(project, gold_answer, {"topic": ["a"], "stars": 5, "note": "a cat on a mat"}) == {
        "topic": False,
        "stars": False,
        "note": True,
    }
    task = org.make_task(project["id"])
    gold.mark_gold(org.db, org.owner.principal, task["id"], gold_answer)
    worker = org.principal_for("annotator")
    lease = queue.next_assignment(org.db, worker, project["id"])
    assert lease["task"]["id"] == task["id"]
    answer = {"topic": ["a"], "stars": 4, "note": "a cat on a mat"}
    queue.submit(org.db, worker, task["id"], ResponseCreate(answer=answer))
    standing = _standing(org, project, worker)
    assert standing["gold_answers"] == 1 and standing["gold_correct"] == pytest.approx(2 / 3)
    scored = [e for e in _events(org, task["id"]) if e["kind"] == "gold_answered"]
    assert scored[0]["worker_id"] == worker.worker_id and scored[0]["data"]["score"] == pytest.approx(2 / 3, abs=1e-6)


def test_an_answer_to_a_gold_task_never_served_to_the_worker_is_refused_like_a_full_task(make_org: Any) -> None:
    org = make_org()
    _, truth = _project(org, 1, 0, rate=0.5)
    (task_id,) = truth
    with pytest.raises(Conflict, match="has all the workers it needs"):
        queue.submit(org.db, org.principal_for("annotator"), task_id, ResponseCreate(answer={"sentiment": "positive"}))


# --- qualification ---------------------------------------------------------------------------------------


def test_a_new_worker_qualifies_on_gold_before_real_tasks(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 10, 10, rate=0.0, qualification=4, min_accuracy=0.75)
    good, bad = org.principal_for("annotator"), org.principal_for("reviewer")
    # the first four tasks are gold; the worker is qualifying until the fourth is answered
    wrong = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    for i in range(4):
        lease = queue.next_assignment(org.db, good, project["id"])
        assert lease is not None and lease["task"]["id"] in truth, f"lease {i} is not gold"
        assert _standing(org, project, good)["status"] == "qualifying"
        right = truth[lease["task"]["id"]]
        queue.submit(
            org.db, good, lease["task"]["id"], ResponseCreate(answer={"sentiment": right if i else wrong[right]})
        )
    assert _standing(org, project, good)["status"] == "active"  # 3 of 4 right: 0.75
    rest = _work(org, good, project, lambda _: "positive", 10)
    assert rest and all(task["status"] != TaskStatus.GOLD for task in rest)  # rate 0: no more gold
    # a worker who gets half of the qualification set wrong is paused when it ends
    _work(org, bad, project, lambda task_id: "positive", 4)
    standing = _standing(org, project, bad)
    assert standing["status"] == "paused" and standing["reason"].startswith("failed the qualification")
    with pytest.raises(Forbidden):
        queue.next_assignment(org.db, bad, project["id"])


def test_a_qualifying_worker_gets_nothing_when_no_gold_is_left_for_them(make_org: Any) -> None:
    org = make_org()
    project, truth = _project(org, 2, 10, qualification=3)
    worker = org.principal_for("annotator")
    served = _work(org, worker, project, lambda task_id: truth.get(task_id, "positive"), 10)
    assert {task["id"] for task in served} == set(truth)  # the two gold tasks, then nothing
    assert _standing(org, project, worker)["status"] == "qualifying"


# --- the interval -----------------------------------------------------------------------------------------


def test_the_jeffreys_interval_is_wide_with_few_answers() -> None:
    assert gold.jeffreys_interval(0, 0) == (0.0, 1.0)
    low3, high3 = gold.jeffreys_interval(1.5, 3)
    low300, high300 = gold.jeffreys_interval(150, 300)
    assert low3 < low300 < 0.5 < high300 < high3
    assert high3 - low3 > 0.6 and high300 - low300 < 0.12
    assert gold.jeffreys_interval(0, 10)[0] == 0.0 and gold.jeffreys_interval(10, 10)[1] == 1.0
    # honest: over every outcome of n answers, the interval holds the true accuracy about 95% of the time
    # (exact binomial coverage; Brown, Cai and DasGupta 2001 show Jeffreys' stays close to nominal)
    for n, p in ((10, 0.5), (20, 0.3), (40, 0.8), (100, 0.9)):
        coverage = sum(
            binom.pmf(x, n, p)
            for x in range(n + 1)
            if gold.jeffreys_interval(x, n)[0] <= p <= gold.jeffreys_interval(x, n)[1]
        )
        assert 0.92 <= coverage <= 0.985, (n, p, coverage)


# --- bulk from CSV ---------------------------------------------------------------------------------------


def test_gold_from_a_csv_by_task_id_or_unique_id(make_org: Any) -> None:
    org = make_org()
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "sentiment", "type": "label", "options": OPTIONS},
            {"name": "topics", "type": "labels", "options": ["sport", "tech"], "required": False},
            {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
        ],
    }
    project = org.make_project(spec=spec)
    a = org.make_task(project["id"], "a", unique_id="item-a")
    b = org.make_task(project["id"], "b")
    text = (
        f'task_id,unique_id,sentiment,topics,stars\n,item-a,positive,"[""sport"", ""tech""]",4\n{b["id"]},,neutral,,\n'
    )
    report = gold.import_gold_csv(org.db, org.owner.principal, project["id"], text)
    assert report == {"received": 2, "marked": 2, "updated": 0}
    assert tasks.get_task(org.db, org.owner.principal, a["id"])["gold"] == {
        "sentiment": "positive",
        "topics": ["sport", "tech"],
        "stars": 4,
    }
    assert tasks.get_task(org.db, org.owner.principal, b["id"])["gold"] == {"sentiment": "neutral"}
    again = gold.import_gold_csv(org.db, org.owner.principal, project["id"], f"task_id,sentiment\n{b['id']},negative\n")
    assert again == {"received": 1, "marked": 0, "updated": 1}


def test_a_csv_with_a_bad_line_marks_nothing_and_names_the_line(make_org: Any) -> None:
    org, other = make_org(), make_org()
    project = org.make_project()
    a, b = org.make_task(project["id"], "a"), org.make_task(project["id"], "b")
    foreign = other.make_task(other.make_project()["id"])
    text = f"task_id,sentiment\n{a['id']},positive\n{b['id']},maybe\n{foreign['id']},positive\n"
    with pytest.raises(InvalidInput) as caught:
        gold.import_gold_csv(org.db, org.owner.principal, project["id"], text)
    assert caught.value.message.startswith("line 3: sentiment:")
    errors = caught.value.details["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(3, "sentiment"), (4, "task")]
    assert "not found in this project" in errors[1]["message"]
    assert tasks.get_task(org.db, org.owner.principal, a["id"])["status"] == TaskStatus.PENDING
    with pytest.raises(InvalidInput, match="line 1: column\\(s\\) mood"):
        gold.import_gold_csv(org.db, org.owner.principal, project["id"], f"task_id,mood\n{a['id']},x\n")
    with pytest.raises(InvalidInput, match="task_id or unique_id"):
        gold.import_gold_csv(org.db, org.owner.principal, project["id"], "sentiment\npositive\n")


# --- concurrency and retries ---------------------------------------------------------------------------


def test_concurrent_workers_on_a_gold_project_keep_their_counts(make_org: Any) -> None:
    """Eight workers at once, each twice in parallel at their first call: one standing per worker,
    counts that match the leases, and every gold task answered at most once per worker."""
    org = make_org()
    project, truth = _project(org, 20, 80, rate=0.3, qualification=2, min_accuracy=0.5)
    workers = [org.add_member("annotator").principal for _ in range(8)]
    start = threading.Barrier(16)

    def run(worker: Principal) -> int:
        start.wait()
        leased = 0
        while lease := until_not_busy(lambda: queue.next_assignment(org.db, worker, project["id"])):
            leased += 1
            answer = {"sentiment": truth.get(lease["task"]["id"], "positive")}
            queue.submit(org.db, worker, lease["task"]["id"], ResponseCreate(answer=answer))
            if leased >= 15:
                break
        return leased

    with ThreadPoolExecutor(16) as pool:
        leased = list(pool.map(run, [w for w in workers for _ in range(2)]))
    with org.db.read() as conn:
        rows = [dict(r) for r in conn.execute(select(t.project_workers)).mappings()]
        answers = conn.execute(
            select(t.responses.c.worker_id, t.responses.c.task_id).where(t.responses.c.task_id.in_(list(truth)))
        ).all()
    assert sorted(r["worker_id"] for r in rows) == sorted(w.worker_id for w in workers)
    assert sum(r["tasks_served"] for r in rows) == sum(leased)
    assert len(answers) == len(set(answers)) == sum(r["gold_answers"] for r in rows)
    assert all(r["status"] == "active" for r in rows)


def _lease_while_gold_rows_are_locked(org: Org, project: dict, worker: Principal, locked: list[str]) -> Any:
    """Lease for ``worker`` while another transaction holds the rows of the ``locked`` gold tasks, as a
    submit to them does while it scores into its worker's standing. Returns the lease or the error."""
    outcome: dict[str, Any] = {}

    def lease() -> None:
        try:
            outcome["lease"] = queue.next_assignment(org.db, worker, project["id"])
        except Exception as exc:  # the test looks at it
            outcome["lease"] = exc

    with org.db.engine.connect() as holder:
        holder.execute(select(t.tasks.c.id).where(t.tasks.c.id.in_(locked)).with_for_update())
        leasing = threading.Thread(target=lease)
        leasing.start()
        leasing.join(10)  # a lease that waited on the locks would still be waiting
        holder.rollback()
    leasing.join(10)
    assert not leasing.is_alive()
    return outcome["lease"]


def test_a_lease_never_waits_on_a_gold_row_while_it_holds_a_standing(make_org: Any, backend: str) -> None:
    """PostgreSQL: the lease locks the worker's standing, then a gold row; a submit to that gold task
    locks the row, then its worker's standing. A lease that waited for the row deadlocked with it as
    soon as one worker had two calls in flight (a CI run caught PostgreSQL aborting one), so a locked
    gold task is passed over for another, and a qualifying worker with none free is told to retry."""
    if backend != "postgres":
        pytest.skip("SQLite serialises write transactions: a row is never locked by another writer")
    org = make_org()
    project, truth = _project(org, 2, 3, qualification=2)
    first, second = sorted(truth)
    worker = org.add_member("annotator").principal
    lease = _lease_while_gold_rows_are_locked(org, project, worker, [first])
    assert lease["task"]["id"] == second  # passed over the locked one, not waiting for it
    other = org.add_member("annotator").principal
    refused = _lease_while_gold_rows_are_locked(org, project, other, [first, second])
    assert isinstance(refused, Busy) and "try again" in str(refused)
    assert queue.next_assignment(org.db, other, project["id"])["task"]["id"] == first  # once free


def test_a_replayed_submit_to_a_gold_task_still_looks_like_any_task(make_org: Any) -> None:
    org = make_org()
    project, _ = _project(org, 1, 0, qualification=1)
    worker = org.principal_for("annotator")
    lease = queue.next_assignment(org.db, worker, project["id"])
    assert lease is not None
    data = ResponseCreate(answer={"sentiment": "positive"}, assignment_id=lease["id"])
    first = queue.submit(org.db, worker, lease["task"]["id"], data, idempotency_key="k-1")
    again = queue.submit(org.db, worker, lease["task"]["id"], data, idempotency_key="k-1")
    assert again["replayed"] and again["task"]["status"] == first["task"]["status"] == "pending"
    assert again["task"]["gold"] is None and again["task"]["response_count"] == 1
    assert _standing(org, {"id": lease["project_id"]}, worker)["gold_answers"] == 1  # scored once
