"""Quality figures: agreement per question and per-worker figures, through the API.

Expected values are worked out by hand in the comments (and, for the Wilson interval, checked
against SciPy's own implementation).
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from scipy.stats import binomtest

from truthset import questions
from truthset.questions import _registry
from truthset.questions.text import TextQuestion, TextType
from truthset.schemas import ResponseCreate
from truthset.services import projects, queue

from .helpers import API, Actor, Api, Org, assert_error

POS, NEG = "positive", "negative"


def _answer(
    org: Org, actor: Actor, task: dict[str, Any], answer: dict[str, Any], duration_ms: int | None = None
) -> None:
    queue.submit(org.db, actor.principal, task["id"], ResponseCreate(answer=answer, duration_ms=duration_ms))


def _two_raters(org: Org) -> tuple[dict[str, Any], Actor, Actor]:
    """Ten tasks, two raters: both positive 4, both negative 3, A pos/B neg 2, A neg/B pos 1.

    Cohen: p_o = 0.7, p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5, kappa = 0.4.
    Fleiss (pooled shares 11/20, 9/20): p_e = 0.505, kappa = (0.7 - 0.505) / 0.495 = 0.393939.
    Krippendorff nominal: 1 - (n - 1) * D_o / D_e = 1 - 19 * 6 / (2 * 11 * 9) = 0.424242.
    """
    project = org.make_project(overlap=2)
    tasks = org.make_tasks(project["id"], 10)
    a, b = org.add_member("annotator"), org.add_member("annotator")
    pairs = [(POS, POS)] * 4 + [(NEG, NEG)] * 3 + [(POS, NEG)] * 2 + [(NEG, POS)]
    for task, (x, y) in zip(tasks, pairs, strict=True):
        _answer(org, a, task, {"sentiment": x, "stars": 3})  # only A rates: one answer per task
        _answer(org, b, task, {"sentiment": y})
    return project, a, b


def test_agreement_of_two_raters_matches_hand_computed_values(api: Api, org: Org) -> None:
    project, _, _ = _two_raters(org)
    body = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()
    assert body["responses"] == 20 and body["batch_id"] is None
    sentiment, stars = body["questions"]
    assert sentiment["question"] == "sentiment" and (sentiment["tasks"], sentiment["workers"]) == (10, 2)
    assert sentiment["percent_agreement"] == pytest.approx(0.7)
    assert sentiment["cohens_kappa"] == pytest.approx(0.4)
    assert sentiment["fleiss_kappa"] == pytest.approx(0.393939, abs=1e-6)
    assert sentiment["krippendorff_alpha"] == pytest.approx(0.424242, abs=1e-6)
    assert sentiment["alpha_level"] == "nominal" and sentiment["reasons"] == {}
    # one answer per task: nothing to agree on, every figure null with the reason
    assert (stars["answers"], stars["tasks"], stars["alpha_level"]) == (10, 0, "ordinal")
    assert stars["percent_agreement"] is None and stars["krippendorff_alpha"] is None
    assert set(stars["reasons"]) == {"percent_agreement", "fleiss_kappa", "cohens_kappa", "krippendorff_alpha"}
    assert "two or more answers" in stars["reasons"]["fleiss_kappa"]


def test_agreement_is_peoples_model_predictions_are_not_raters(api: Api, org: Org) -> None:
    project, _, _ = _two_raters(org)
    listed = api.get(f"{API}/tasks", params={"project_id": project["id"], "limit": 100}, auth=org.owner).json()
    ids = [task["id"] for task in listed["items"]]
    assert len(ids) == 10
    for version in ("1", "2"):  # two versions of one model, agreeing with each other on every task
        items = [{"task_id": task_id, "question": "sentiment", "answer": POS, "score": 0.9} for task_id in ids]
        body = {"model": "clf", "version": version, "predictions": items}
        assert api.post(f"{API}/projects/{project['id']}/predictions", auth=org.owner, json=body).status_code == 200
    body = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()
    assert body["responses"] == 40  # every response is read (the worker figures measure the models)
    sentiment = body["questions"][0]
    # the same figures as the two people alone (the test above)
    assert (sentiment["answers"], sentiment["tasks"], sentiment["workers"]) == (20, 10, 2)
    assert sentiment["cohens_kappa"] == pytest.approx(0.4)
    assert sentiment["krippendorff_alpha"] == pytest.approx(0.424242, abs=1e-6)
    dashboard = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()
    (row,) = [q for q in dashboard["agreement"] if q["question"] == "sentiment"]
    assert row["tasks"] == 10 and row["percent_agreement"] == pytest.approx(0.7)
    figures = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()["items"]
    assert sorted(f["name"] for f in figures if f["kind"] == "model") == ["clf@1", "clf@2"]


def test_cohen_is_null_unless_two_workers_answered_everything(api: Api, org: Org) -> None:
    project = org.make_project(overlap=3)
    tasks = org.make_tasks(project["id"], 2)
    workers = [org.add_member("annotator") for _ in range(3)]
    for worker in workers:
        for task in tasks:
            _answer(org, worker, task, {"sentiment": POS, "stars": 4})
    sentiment, stars = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
    assert sentiment["percent_agreement"] == 1.0 and sentiment["cohens_kappa"] is None
    assert "exactly two workers" in sentiment["reasons"]["cohens_kappa"]
    assert stars["krippendorff_alpha"] == 1.0  # all answers equal: perfect agreement (truthset.quality's rule)


def test_labels_are_yes_no_per_option_and_text_is_not_applicable(api: Api, org: Org) -> None:
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "tags", "type": "labels", "options": ["a", "b"]},
            {"name": "note", "type": "text", "required": False},
        ],
    }
    project = org.make_project(spec=spec, overlap=2)
    t1, t2 = org.make_tasks(project["id"], 2)
    w1, w2 = org.add_member("annotator"), org.add_member("annotator")
    _answer(org, w1, t1, {"tags": ["a"], "note": "x"})
    _answer(org, w2, t1, {"tags": ["a", "b"], "note": "y"})
    _answer(org, w1, t2, {"tags": ["b"]})
    _answer(org, w2, t2, {"tags": ["b"]})
    tags, note = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
    # units (t1,a) yes/yes, (t1,b) no/yes, (t2,a) no/no, (t2,b) yes/yes: 3 of 4 agree;
    # yes share 5/8, p_e = (25 + 9) / 64, kappa = (0.75 - 0.53125) / 0.46875
    assert tags["percent_agreement"] == pytest.approx(0.75)
    assert tags["fleiss_kappa"] == pytest.approx(0.466667, abs=1e-6)
    assert tags["cohens_kappa"] is not None
    assert note["tasks"] == 1 and note["fleiss_kappa"] is None
    assert note["reasons"]["fleiss_kappa"] == "agreement is not defined for free text"


class _ExactTextQuestion(TextQuestion):
    type: Literal["exact_text"] = "exact_text"  # type: ignore[assignment]


class _ExactText(TextType):
    """A plugin text type that measures agreement its own way: the share of tasks answered alike."""

    name = "exact_text"
    config_model = _ExactTextQuestion

    def agreement(self, question: Any, tasks: Any, workers: Any, values: list[Any]) -> dict[str, float | None]:
        answers: dict[int, set[str]] = {}
        for task, value in zip(tasks.tolist(), values, strict=True):
            answers.setdefault(task, set()).add(value)
        return {"alike": sum(len(v) == 1 for v in answers.values()) / len(answers)}


def test_a_type_may_measure_agreement_in_its_own_terms(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    questions.names()  # the entry points load first, so the plugin below is not overwritten
    monkeypatch.setitem(_registry._types, "exact_text", _ExactText())
    spec = {"fields": [{"name": "text", "type": "text"}], "questions": [{"name": "note", "type": "exact_text"}]}
    project = org.make_project(overlap=2, spec=spec)
    t1, t2 = org.make_tasks(project["id"], 2)
    w1, w2 = org.add_member("annotator"), org.add_member("annotator")
    for task, (x, y) in ((t1, ("same", "same")), (t2, ("one", "other"))):
        _answer(org, w1, task, {"note": x})
        _answer(org, w2, task, {"note": y})
    (note,) = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
    assert note["measures"] == {"alike": 0.5}
    assert note["fleiss_kappa"] is None and "see measures" in note["reasons"]["fleiss_kappa"]


def _three_workers(org: Org) -> tuple[dict[str, Any], list[Actor]]:
    """Four tasks, overlap 3 (so each completes with the majority as its result):

    t1 A pos B pos C pos -> pos;  t2 A pos B pos C neg -> pos;
    t3 A neg B neg C neg -> neg;  t4 A pos B neg C neg -> neg.
    Agreement with results: A 3/4, B 4/4, C 3/4.
    Leave one out (both others must agree): A scored t1 t3 t4 -> 2/3; B t1 t3 -> 2/2; C t1 t2 t3 -> 2/3.
    """
    project = org.make_project(overlap=3)
    tasks = org.make_tasks(project["id"], 4)
    a, b, c = (org.add_member("annotator", name=n) for n in "ABC")
    votes = [(a, [POS, POS, NEG, POS]), (b, [POS, POS, NEG, NEG]), (c, [POS, NEG, NEG, NEG])]
    durations = [1000, 2000, 3000, None]
    for worker, labels in votes:
        for task, label, duration in zip(tasks, labels, durations, strict=True):
            _answer(org, worker, task, {"sentiment": label}, duration_ms=duration)
    return project, [a, b, c]


def test_worker_figures(api: Api, org: Org) -> None:
    project, (a, b, c) = _three_workers(org)
    body = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()
    figures = {f["worker_id"]: f for f in body["items"]}
    assert set(figures) == {a.worker_id, b.worker_id, c.worker_id} and body["next_cursor"] is None
    fa, fb, fc = figures[a.worker_id], figures[b.worker_id], figures[c.worker_id]
    assert (fa["name"], fa["kind"], fa["responses"], fa["answers"]) == ("A", "human", 4, 4)
    assert (fa["median_duration_ms"], fa["mean_duration_ms"]) == (2000, 2000)
    assert [f["agreement_with_results"] for f in (fa, fb, fc)] == [0.75, 1.0, 0.75]
    assert fa["agreement_with_results_by_question"] == {"sentiment": 0.75} and fa["compared_with_results"] == 4
    assert [(f["estimated_accuracy"], f["scored_answers"]) for f in (fa, fb, fc)] == [
        (pytest.approx(2 / 3, abs=1e-6), 3),
        (1.0, 2),
        (pytest.approx(2 / 3, abs=1e-6), 3),
    ]
    wilson = binomtest(2, 3).proportion_ci(confidence_level=0.95, method="wilson")
    assert fa["accuracy_interval"] == pytest.approx([wilson.low, wilson.high], abs=1e-6)
    # one worker, as a manager and as the worker (an annotator reads their own figures)
    url = f"{API}/workers/{a.worker_id}/stats?project_id={project['id']}"
    assert api.get(url, auth=org.owner).json() == {**fa, "project_id": project["id"], "batch_id": None}
    assert api.get(url, auth=a).json()["estimated_accuracy"] == fa["estimated_accuracy"]


def test_numbers_are_right_within_the_questions_tolerance(api: Api, org: Org) -> None:
    """Three tasks, four counters, tolerance 2, results the median (11, 52, 21):

    t1 A 10 B 11 C 11 D 40;  t2 A 52 B 52 C 53 D 10;  t3 A 30 B 20 C 21 D 21.
    Within 2 of the result: A 2/3 (t3 is 9 off), B 3/3, C 3/3, D 1/3 (t3 only).
    Leave one out, against the median of the three other answers: here that median is the task's
    result for every answer (t1: 11 for each of A-D, t2: 52, t3: 21), so the same shares.
    """
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "count", "type": "number", "min": 0, "max": 100, "tolerance": 2}],
    }
    project = org.make_project(spec=spec, overlap=4)
    tasks = org.make_tasks(project["id"], 3)
    workers = [org.add_member("annotator", name=n) for n in "ABCD"]
    counts = [[10, 52, 30], [11, 52, 20], [11, 53, 21], [40, 10, 21]]
    for worker, answers in zip(workers, counts, strict=True):
        for task, count in zip(tasks, answers, strict=True):
            _answer(org, worker, task, {"count": count})
    assert [org.task(task["id"])["result"]["answer"]["count"] for task in tasks] == [11, 52, 21]
    body = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()
    figures = {f["worker_id"]: f for f in body["items"]}
    got = [figures[w.worker_id] for w in workers]
    thirds = [pytest.approx(n / 3, abs=1e-6) for n in (2, 3, 3, 1)]
    assert [f["agreement_with_results"] for f in got] == thirds
    assert [f["agreement_with_results_by_question"] for f in got] == [{"count": share} for share in thirds]
    assert [(f["estimated_accuracy"], f["scored_answers"]) for f in got] == [(share, 3) for share in thirds]


def test_workers_are_paged_in_worker_id_order(api: Api, org: Org) -> None:
    project, workers = _three_workers(org)
    url = f"{API}/projects/{project['id']}/workers?limit=2"
    first = api.get(url, auth=org.owner).json()
    second = api.get(f"{url}&cursor={first['next_cursor']}", auth=org.owner).json()
    ids = [f["worker_id"] for f in first["items"] + second["items"]]
    assert ids == sorted(w.worker_id for w in workers) and second["next_cursor"] is None


def test_a_worker_with_no_answers(api: Api, org: Org) -> None:
    project, _ = _three_workers(org)
    idle = org.add_member("annotator", name="idle")
    stats = api.get(f"{API}/workers/{idle.worker_id}/stats?project_id={project['id']}", auth=idle).json()
    assert (stats["responses"], stats["answers"], stats["scored_answers"]) == (0, 0, 0)
    assert stats["estimated_accuracy"] is None and stats["accuracy_interval"] is None
    assert stats["agreement_with_results"] is None and stats["median_duration_ms"] is None


def test_batch_filter(api: Api, org: Org) -> None:
    project = org.make_project(overlap=2)
    a, b = org.add_member("annotator"), org.add_member("annotator")
    agreeing, split = org.make_batch(project["id"], name="agreeing"), org.make_batch(project["id"], name="split")
    for batch, second in ((agreeing, POS), (split, NEG)):
        tasks = org.make_tasks(project["id"], 2, batch_id=batch["id"])
        projects.finalize_batch(org.db, org.owner.principal, batch["id"])
        for task in tasks:
            _answer(org, a, task, {"sentiment": POS})
            _answer(org, b, task, {"sentiment": second})
    url = f"{API}/projects/{project['id']}/agreement"
    assert api.get(url, auth=org.owner).json()["questions"][0]["percent_agreement"] == 0.5
    only = api.get(url, params={"batch_id": agreeing["id"]}, auth=org.owner).json()
    assert only["batch_id"] == agreeing["id"] and only["responses"] == 4
    assert only["questions"][0]["percent_agreement"] == 1.0
    workers = api.get(f"{API}/projects/{project['id']}/workers", params={"batch_id": split["id"]}, auth=org.owner)
    assert {f["responses"] for f in workers.json()["items"]} == {2}
    # a batch of another project is not found, naming the field
    other = org.make_batch(org.make_project()["id"], name="elsewhere")
    error = assert_error(api.get(url, params={"batch_id": other["id"]}, auth=org.owner), 404, "not_found")
    assert error["details"] == {"field": "batch_id"}


def test_permissions(api: Api, org: Org, other_org: Org) -> None:
    project, (a, b, _) = _three_workers(org)
    pid = project["id"]
    for role in ("annotator", "reviewer"):
        caller = org.actor(role)
        assert_error(api.get(f"{API}/projects/{pid}/agreement", auth=caller), 403, "forbidden")
        assert_error(api.get(f"{API}/projects/{pid}/workers", auth=caller), 403, "forbidden")
    assert_error(api.get(f"{API}/workers/{b.worker_id}/stats?project_id={pid}", auth=a), 403, "forbidden")
    assert api.get(f"{API}/projects/{pid}/agreement", auth=org.actor("manager")).status_code == 200
    # another organization's project and worker answer 404, like missing ones
    outsider = other_org.owner
    for url in (
        f"{API}/projects/{pid}/agreement",
        f"{API}/projects/{pid}/workers",
        f"{API}/workers/{a.worker_id}/stats?project_id={pid}",
        f"{API}/workers/{outsider.worker_id}/stats?project_id={pid}",
    ):
        assert_error(api.get(url, auth=outsider), 404, "not_found")
    # project_id is required for one worker's figures
    error = assert_error(api.get(f"{API}/workers/{a.worker_id}/stats", auth=org.owner), 422)
    assert "project_id" in str(error)


def test_figures_count_only_the_projects_own_responses(api: Api, org: Org) -> None:
    project, _, _ = _two_raters(org)
    _three_workers(org)  # another project of the same organization, with other workers
    body = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()
    assert body["responses"] == 20
    assert len(api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()["items"]) == 2
