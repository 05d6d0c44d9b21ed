"""Numeric questions (`rating`, `number`) in the quality loop: a refit measures each worker's noise,
results weigh answers by it, gold measures the error a crowd shares, and a refit that moves a result
records it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sqlalchemy import select

from truthset.schemas import PredictionUpload, ResponseCreate
from truthset.services import gold, predictions, quality, queue, refit, results
from truthset.services.projects import compiled_spec
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

RATING_SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "stars", "type": "rating", "min": 1, "max": 9}],
}
NUMBER_SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "count", "type": "number", "min": 0, "max": 100, "tolerance": 2, "estimator": "mean"}],
}
TASKS = 120


def _ratings(org: Org, project_id: str, seed: int) -> tuple[dict[str, int], list[str]]:
    """Every task rated by 3 of 6 raters: three careful ones (the true point, or one off 20% of the
    time) and three who click any point. Returns the truth and the task ids."""
    rng = random.Random(seed)
    made = org.make_tasks(project_id, TASKS)
    truth = {task["id"]: rng.randint(2, 8) for task in made}
    careful = [org.add_member() for _ in range(3)]
    clickers = [org.add_member() for _ in range(3)]
    for task_id, right in truth.items():
        for worker in rng.sample([*careful, *clickers], 3):
            if worker in careful:
                stars = right + (rng.choice((-1, 1)) if rng.random() < 0.2 else 0)
            else:
                stars = rng.randint(1, 9)
            queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"stars": stars}))
    return truth, [task["id"] for task in made]


def _exact(org: Org, truth: dict[str, int]) -> float:
    return sum(org.task(task_id)["result"]["answer"]["stars"] == right for task_id, right in truth.items()) / len(truth)


def test_a_refit_measures_each_raters_noise_and_outweighs_random_clickers(org: Org) -> None:
    project = org.make_project(spec=RATING_SPEC, overlap=3)
    truth, ids = _ratings(org, project["id"], seed=3)
    before = _exact(org, truth)  # the median: two clickers outvote a careful rater
    assert org.task(ids[0])["result"]["methods"]["stars"] == "median"

    report = refit.refit_project(org.db, org.id, project["id"])
    assert set(report["fitted"]) == {"stars"}
    assert report["fitted"]["stars"]["gold_tasks"] == 0
    after = _exact(org, truth)
    assert after > before + 0.1, (before, after)
    result = org.task(ids[0])["result"]["questions"]["stars"]
    assert result["method"] == "worker_variance"
    assert result["model_version"] == 1
    assert set(result["details"]) == {"estimate", "sd", "weights"}
    assert 0 < result["confidence"] < 1
    assert report["changed_answers"] > 0
    # each answer the refit changed is in the task's history
    assert org.count_events(project["id"], "refit_changed") == report["changed_answers"]
    # a second refit on the same answers moves nothing
    assert refit.refit_project(org.db, org.id, project["id"])["changed_answers"] == 0


def test_a_new_response_is_scored_with_the_fitted_noise(org: Org) -> None:
    project = org.make_project(spec=RATING_SPEC, overlap=3)
    _ratings(org, project["id"], seed=5)
    refit.refit_project(org.db, org.id, project["id"])
    task = org.make_tasks(project["id"], 1)[-1]
    for stars in (4, 4, 9):  # new raters: each counts as the pooled average
        queue.submit(org.db, org.add_member().principal, task["id"], ResponseCreate(answer={"stars": stars}))
    question = org.task(task["id"])["result"]["questions"]["stars"]
    assert question["method"] == "worker_variance" and question["answer"] == 4


def _counts(org: Org, project_id: str, seed: int) -> tuple[dict[str, float], list[str]]:
    """Every task counted by 3 of 5 workers who all miscount it alike (an error of sd 4 the task
    shares) and each add their own noise (sd 1). Returns the truth and the task ids."""
    rng = random.Random(seed)
    made = org.make_tasks(project_id, 200)
    truth = {task["id"]: float(rng.randint(10, 90)) for task in made}
    workers = [org.add_member() for _ in range(5)]
    for task_id, right in truth.items():
        seen = right + rng.gauss(0, 4)
        for worker in rng.sample(workers, 3):
            value = min(100.0, max(0.0, round(seen + rng.gauss(0, 1), 1)))
            queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"count": value}))
    return truth, [task["id"] for task in made]


def _stated_and_measured(org: Org, truth: dict[str, float], ids: list[str]) -> tuple[float, float]:
    stated = right = 0.0
    for task_id in ids:
        question = org.task(task_id)["result"]["questions"]["count"]
        stated += question["confidence"]
        right += abs(question["answer"] - truth[task_id]) <= 2
    return stated / len(ids), right / len(ids)


def test_gold_makes_the_confidence_see_an_error_the_crowd_shares(org: Org) -> None:
    plain, with_gold = (org.make_project(spec=NUMBER_SPEC, overlap=3, name=name) for name in ("plain", "gold"))
    truth, ids = _counts(org, plain["id"], seed=7)
    refit.refit_project(org.db, org.id, plain["id"])
    stated, measured = _stated_and_measured(org, truth, ids)
    # answers alone see how workers agree; the shared error assumed without gold (the median
    # worker's noise, sd 1) is far below this crowd's (sd 4)
    assert stated > measured + 0.25, (stated, measured)

    truth, ids = _counts(org, with_gold["id"], seed=7)
    for task_id in ids[:60]:
        gold.mark_gold(org.db, org.owner.principal, task_id, {"count": truth[task_id]})
    fitted = refit.refit_project(org.db, org.id, with_gold["id"])["fitted"]["count"]
    assert fitted["gold_tasks"] == 60 and 2.5 < fitted["shared_sd"] < 6
    (listed,) = quality.quality_models(org.db, org.owner.principal, with_gold["id"])
    assert (listed["key"], listed["gold_tasks"], listed["shared_sd"]) == ("count", 60, fitted["shared_sd"])
    stated, measured = _stated_and_measured(org, truth, ids[60:])
    assert abs(stated - measured) < 0.1, (stated, measured)


RUBRIC_SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {
            "name": "review",
            "type": "rubric",
            "criteria": [{"name": "helpful", "min": 1, "max": 9}, {"name": "safe", "min": 1, "max": 9}],
        }
    ],
}


def test_each_criterion_of_a_rubric_is_fitted_as_a_rating(org: Org) -> None:
    rng = random.Random(11)
    project = org.make_project(spec=RUBRIC_SPEC, overlap=3)
    made = org.make_tasks(project["id"], TASKS)
    truth = {task["id"]: {"helpful": rng.randint(2, 8), "safe": rng.randint(2, 8)} for task in made}
    careful = [org.add_member() for _ in range(3)]
    clickers = [org.add_member() for _ in range(3)]
    for task_id, right in truth.items():
        for worker in rng.sample([*careful, *clickers], 3):
            scores = {c: right[c] if worker in careful else rng.randint(1, 9) for c in right}
            answer = {"review": {c: {"score": score} for c, score in scores.items()}}
            queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer=answer))

    def exact() -> float:
        hits = 0
        for task_id, right in truth.items():
            answer = org.task(task_id)["result"]["answer"]["review"]
            hits += sum((answer.get(c) or {}).get("score") == right[c] for c in right)
        return hits / (2 * len(truth))

    before = exact()
    report = refit.refit_project(org.db, org.id, project["id"])
    assert set(report["fitted"]) == {"review[helpful]", "review[safe]"}
    assert {figures["question"] for figures in report["fitted"].values()} == {"review"}
    listed = quality.quality_models(org.db, org.owner.principal, project["id"])
    assert [(m["key"], m["question"], m["method"]) for m in listed] == [
        ("review[helpful]", "review", "worker_variance"),
        ("review[safe]", "review", "worker_variance"),
    ]
    after = exact()
    assert after > before + 0.1, (before, after)
    question = org.task(made[0]["id"])["result"]["questions"]["review"]
    assert question["method"] == "worker_variance_per_criterion"
    assert {c["method"] for c in question["details"]["criteria"].values()} == {"worker_variance"}


def test_a_models_ratings_are_measured_and_count_with_the_weight_they_earned(org: Org) -> None:
    project = org.make_project(spec=RATING_SPEC, overlap=3)
    truth, _ids = _ratings(org, project["id"], seed=13)
    rng = random.Random(13)
    good = [{"task_id": t, "question": "stars", "answer": r, "score": 0.9} for t, r in truth.items()]
    bad = [{"task_id": t, "question": "stars", "answer": rng.randint(1, 9), "score": 0.9} for t in truth]
    for model, items in (("sharp", good), ("blunt", bad)):
        predictions.upload_predictions(
            org.db, org.owner.principal, project["id"], PredictionUpload(model=model, version="1", predictions=items)
        )
    refit.refit_project(org.db, org.id, project["id"])
    with org.db.read() as conn:
        models, _ = results.current_models(conn, project, compiled_spec(project))
        workers = {row.name: row.id for row in conn.execute(select(t.workers.c.name, t.workers.c.id))}
    noise = models["stars"].variances_of([workers["sharp@1"], workers["blunt@1"]])
    assert noise[0] * 10 < noise[1]  # the sharp model earned a far smaller noise than the blunt one

    # a new task: one person's 3 with the sharp model's 7 leans to the model, counted as a prediction
    task = org.make_tasks(project["id"], 1, overlap=1)[-1]
    upload = PredictionUpload(
        model="sharp", version="1", predictions=[{"task_id": task["id"], "question": "stars", "answer": 7, "score": 1}]
    )
    predictions.upload_predictions(org.db, org.owner.principal, project["id"], upload)
    queue.submit(org.db, org.add_member().principal, task["id"], ResponseCreate(answer={"stars": 3}))
    result = org.task(task["id"])["result"]
    assert result["predictions"] == 1 and result["response_count"] == 1
    question = result["questions"]["stars"]
    assert question["method"] == "worker_variance" and len(question["details"]["weights"]) == 2
    assert question["details"]["estimate"] > 5


def test_worker_figures_say_what_the_fit_measured(org: Org) -> None:
    project = org.make_project(spec=RATING_SPEC, overlap=3)
    _ratings(org, project["id"], seed=17)
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    assert all(f["measured"] == {} for f in figures)  # nothing fitted yet
    refit.refit_project(org.db, org.id, project["id"])
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    noise = sorted(f["measured"]["stars"]["noise_sd"] for f in figures)
    assert len(noise) == 6 and noise[2] * 1.5 < noise[3]  # three careful raters, three clickers
    one = quality.worker_stats(org.db, org.owner.principal, figures[0]["worker_id"], project["id"])
    assert one["measured"] == figures[0]["measured"]
