"""Multi-select (`labels`) questions in the quality loop: a refit fits a yes/no Dawid-Skene model per
option, results weigh each worker by what their choices of that option earned, and a refit that
moves a result records it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from truthset.schemas import ResponseCreate
from truthset.services import gold, quality, queue, refit
from truthset.services.projects import compiled_spec

if TYPE_CHECKING:
    from conftest import Org

OPTIONS = ["urgent", "refund", "angry"]
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "tags", "type": "labels", "options": OPTIONS}],
}
TASKS = 120


def _crowd(org: Org, project_id: str, seed: int) -> tuple[dict[str, set[str]], list[str]]:
    """Every task answered by 3 of 6 workers: three careful ones (each option right 95% of the time)
    and three who tick each option at random. Returns the truth and the task ids."""
    rng = random.Random(seed)
    made = org.make_tasks(project_id, TASKS)
    truth = {task["id"]: {o for o in OPTIONS if rng.random() < 0.4} for task in made}
    careful = [org.add_member() for _ in range(3)]
    random_clickers = [org.add_member() for _ in range(3)]
    for task_id, right in truth.items():
        for worker in rng.sample([*careful, *random_clickers], 3):
            if worker in careful:
                chosen = [o for o in OPTIONS if (o in right) != (rng.random() < 0.05)]
            else:
                chosen = [o for o in OPTIONS if rng.random() < 0.5]
            queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"tags": chosen}))
    return truth, [task["id"] for task in made]


def _accuracy(org: Org, truth: dict[str, set[str]]) -> float:
    """The share of (task, option) decisions the results got right."""
    right = 0
    for task_id, chosen in truth.items():
        answer = set(org.task(task_id)["result"]["answer"]["tags"])
        right += sum((o in answer) == (o in chosen) for o in OPTIONS)
    return right / (len(truth) * len(OPTIONS))


def test_a_refit_fits_each_option_and_outweighs_random_clickers(org: Org) -> None:
    project = org.make_project(spec=SPEC, overlap=3)
    truth, ids = _crowd(org, project["id"], seed=3)
    # before any fit every worker counts as an average one: two random clickers outvote a careful one
    before = _accuracy(org, truth)
    assert org.task(ids[0])["result"]["methods"]["tags"] == "per_option_posterior"

    report = refit.refit_project(org.db, org.id, project["id"])
    assert set(report["fitted"]) == {"tags[urgent]", "tags[refund]", "tags[angry]"}
    after = _accuracy(org, truth)
    assert after > before + 0.05, (before, after)  # the fit tells the careful workers from the clickers
    result = org.task(ids[0])["result"]
    assert result["methods"]["tags"] == "per_option_dawid_skene"
    assert set(result["questions"]["tags"]["details"]["selected_probability"]) == set(OPTIONS)
    assert report["changed_answers"] > 0
    # each answer a refit changed is in the task's history
    assert org.count_events(project["id"], "refit_changed") == report["changed_answers"]

    # each worker's figures say what every option's model measured of them
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    assert all(set(f["measured"]) == {f"tags[{o}]" for o in OPTIONS} for f in figures)
    accuracy = sorted(f["measured"]["tags[urgent]"]["accuracy"] for f in figures)
    assert accuracy[2] < accuracy[3]  # three random clickers below three careful workers

    # a second refit on the same answers moves nothing: the stored results are what the models say
    again = refit.refit_project(org.db, org.id, project["id"])
    assert again["changed_answers"] == 0


def test_the_fit_reads_each_persons_choices_as_yes_no_rows_per_option(org: Org) -> None:
    project = org.make_project(spec=SPEC, overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    for chosen in (["urgent"], ["urgent", "angry"]):
        queue.submit(org.db, org.add_member().principal, task["id"], ResponseCreate(answer={"tags": chosen}))
    with org.db.snapshot() as conn:
        answers, counts, _ = refit._fitted_answers(conn, org.id, project["id"], compiled_spec(project))
    assert counts[task["id"]] == 2
    assert answers["tags[urgent]"][2] == ["yes", "yes"]
    assert answers["tags[refund]"][2] == ["no", "no"]
    assert sorted(answers["tags[angry]"][2]) == ["no", "yes"]


def test_gold_calibrates_each_options_model(org: Org) -> None:
    plain, with_gold = (org.make_project(spec=SPEC, overlap=3, name=name) for name in ("plain", "gold"))
    _crowd(org, plain["id"], seed=5)
    truth, ids = _crowd(org, with_gold["id"], seed=5)  # the same answers, by other workers
    for task_id in ids[:40]:
        gold.mark_gold(org.db, org.owner.principal, task_id, {"tags": sorted(truth[task_id])})
    fitted = refit.refit_project(org.db, org.id, plain["id"])["fitted"]
    calibrated = refit.refit_project(org.db, org.id, with_gold["id"])["fitted"]
    assert {key: figures["gold_tasks"] for key, figures in fitted.items()} == {f"tags[{o}]": 0 for o in OPTIONS}
    assert {key: figures["gold_tasks"] for key, figures in calibrated.items()} == {f"tags[{o}]": 40 for o in OPTIONS}
    # the models say so where managers read them (and keep saying it: the count is stored with the model)
    listed = quality.quality_models(org.db, org.owner.principal, with_gold["id"])
    assert {m["key"]: (m["gold_tasks"], m["temperature"]) for m in listed} == {
        key: (40, figures["temperature"]) for key, figures in calibrated.items()
    }
    # with 30 or more answered gold tasks each option's temperature is fitted on them, not on answers alone
    assert any(calibrated[key]["temperature"] != fitted[key]["temperature"] for key in fitted)
