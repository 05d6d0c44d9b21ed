"""Rankings in the quality loop: a refit measures how often each judge puts the better candidate
above (every decided pair of every task an item of a two-class worker model), and results weigh
judges by it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from truthset.schemas import ResponseCreate
from truthset.services import gold, quality, queue, refit, tasks
from truthset.services.tasks import TaskFilter

if TYPE_CHECKING:
    from conftest import Org

TASKS = 240


def _spec(mode: str) -> dict:
    return {
        "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
        "questions": [{"name": "pick", "type": "ranking", "field": "answers", "mode": mode}],
    }


def _judged(org: Org, mode: str, candidates: int, seed: int) -> tuple[dict, dict[str, list[int]], list[str]]:
    """Every task judged by 3 of 6 judges: three careful ones (the true order, a neighbour pair
    swapped 10% of the time) and three who answer at random. Returns the project, the true orders
    (best first) and the task ids."""
    rng = random.Random(seed)
    project = org.make_project(spec=_spec(mode), overlap=3)
    items = [
        (i + 1, {"data": {"prompt": f"p{i}", "answers": [f"a{i}-{c}" for c in range(candidates)]}})
        for i in range(TASKS)
    ]
    tasks.import_tasks(org.db, org.owner.principal, project["id"], items)
    ids = [t["id"] for t in org.all_tasks(TaskFilter(project_id=project["id"]))]
    truth = {task_id: rng.sample(range(candidates), candidates) for task_id in ids}
    careful = [org.add_member() for _ in range(3)]
    clickers = [org.add_member() for _ in range(3)]
    for task_id, order in truth.items():
        for judge in rng.sample([*careful, *clickers], 3):
            given = list(order) if judge in careful else rng.sample(range(candidates), candidates)
            if judge in careful and rng.random() < 0.1:
                k = rng.randrange(candidates - 1)
                given[k], given[k + 1] = given[k + 1], given[k]
            answer = {"winner": given[0]} if mode == "pairwise" else {"order": given}
            queue.submit(org.db, judge.principal, task_id, ResponseCreate(answer={"pick": answer}))
    return project, truth, ids


def _right(org: Org, mode: str, truth: dict[str, list[int]]) -> float:
    hits = 0
    for task_id, order in truth.items():
        answer = org.task(task_id)["result"]["answer"]["pick"]
        hits += answer == (order[0] if mode == "pairwise" else order)
    return hits / len(truth)


def test_a_refit_weighs_judges_of_pairs_by_their_record(org: Org) -> None:
    project, truth, ids = _judged(org, "pairwise", 2, seed=3)
    before = _right(org, "pairwise", truth)
    assert org.task(ids[0])["result"]["methods"]["pick"] == "bradley_terry"
    report = refit.refit_project(org.db, org.id, project["id"])
    assert report["fitted"]["pick"]["question"] == "pick"
    after = _right(org, "pairwise", truth)
    assert after > before + 0.05, (before, after)
    question = org.task(ids[0])["result"]["questions"]["pick"]
    assert question["method"] == "dawid_skene_pairs" and 0.5 <= question["confidence"] < 1
    assert report["changed_answers"] > 0
    assert refit.refit_project(org.db, org.id, project["id"])["changed_answers"] == 0


def test_a_refit_weighs_judges_of_orders_pair_by_pair(org: Org) -> None:
    project, truth, ids = _judged(org, "order", 3, seed=5)
    before = _right(org, "order", truth)
    refit.refit_project(org.db, org.id, project["id"])
    after = _right(org, "order", truth)
    assert after > before + 0.1, (before, after)
    question = org.task(ids[0])["result"]["questions"]["pick"]
    assert question["method"] == "dawid_skene_pairs"
    assert set(question["details"]["scores"]) == {"0", "1", "2"}


def test_gold_orders_calibrate_the_model_of_pairs(org: Org) -> None:
    project, truth, ids = _judged(org, "pairwise", 2, seed=7)
    for task_id in ids[:40]:
        gold.mark_gold(org.db, org.owner.principal, task_id, {"pick": {"winner": truth[task_id][0]}})
    fitted = refit.refit_project(org.db, org.id, project["id"])["fitted"]["pick"]
    assert fitted["gold_tasks"] == 40
    (listed,) = quality.quality_models(org.db, org.owner.principal, project["id"])
    assert (listed["key"], listed["method"], listed["gold_tasks"]) == ("pick", "dawid_skene_pairs", 40)
    assert listed["temperature"] == fitted["temperature"] and listed["shared_sd"] is None


