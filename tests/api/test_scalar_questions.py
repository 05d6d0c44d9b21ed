"""`number` and `rubric` through the API: specs, answers, results, agreement, export, and the type list."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from .helpers import API, Actor, Api, Org, assert_error

NUMBER_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "count", "type": "number", "min": 0, "max": 100, "step": 1, "unit": "birds"},
        {"name": "weight", "type": "number", "min": 0, "max": 5, "step": 0.25, "required": False, "estimator": "mean"},
    ],
}

RUBRIC_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {
            "name": "grade",
            "type": "rubric",
            "criteria": [
                {"name": "accuracy", "description": "Facts right?", "min": 1, "max": 5, "comment": "optional"},
                {"name": "tone", "min": 1, "max": 3, "labels": {"1": "rude", "3": "kind"}},
            ],
        }
    ],
}


def _submit(api: Api, actor: Actor, task_id: str, answer: dict[str, Any]) -> Any:
    return api.post(f"{API}/tasks/{task_id}/responses", auth=actor, json={"answer": answer})


def _workers(org: Org, n: int) -> list[Actor]:
    return [org.add_member("annotator") for _ in range(n)]


def test_question_types_list_every_type_with_its_config_schema(api: Api, org: Org) -> None:
    listed = api.get(f"{API}/question-types", auth=org.owner).json()
    types = {item["name"]: item for item in listed}
    assert {"label", "labels", "rating", "text", "number", "rubric"} <= set(types)
    assert [item["name"] for item in listed] == sorted(types)
    number = types["number"]
    assert number["description"].startswith("`number`")
    assert {"min", "max", "step", "unit", "tolerance", "estimator"} <= set(number["config_schema"]["properties"])
    assert set(number["config_schema"]["required"]) == {"name", "min", "max"}
    rubric = types["rubric"]["config_schema"]
    assert rubric["properties"]["criteria"]["items"] == {"$ref": "#/$defs/Criterion"}
    criterion = rubric["$defs"]["Criterion"]["properties"]
    assert criterion["comment"]["enum"] == ["none", "optional", "required"]


def test_a_number_question_from_spec_to_export(api: Api, org: Org) -> None:
    r = api.post(
        f"{API}/projects", auth=org.owner, json={"name": "birds", "spec": NUMBER_SPEC, "quality": {"overlap": 3}}
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["spec"]["questions"][0]["unit"] == "birds"
    (task,) = org.make_tasks(project["id"], 1)
    a, b, c = _workers(org, 3)
    assert _submit(api, a, task["id"], {"count": 10, "weight": 1.25}).status_code == 201
    assert _submit(api, b, task["id"], {"count": 11.0, "weight": 1.5}).status_code == 201
    assert _submit(api, c, task["id"], {"count": 40}).status_code == 201
    stored = api.get(f"{API}/tasks/{task['id']}/responses", auth=org.owner).json()
    assert sorted(orjson.dumps(s["answer"]) for s in stored) == sorted(
        orjson.dumps(x) for x in ({"count": 10, "weight": 1.25}, {"count": 11, "weight": 1.5}, {"count": 40})
    )
    done = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert done["status"] == "completed"
    count = done["result"]["questions"]["count"]
    # median 11; within one step of it: 10 and 11 -> (2 + 1) / (3 + 2)
    assert (count["answer"], count["method"], count["tie"]) == (11, "median", None)
    assert count["confidence"] == pytest.approx(0.6)
    weight = done["result"]["questions"]["weight"]
    # mean 1.375, exactly halfway between 1.25 and 1.5 on the 0.25 grid: a tie, never rounded
    assert (weight["answer"], weight["tie"], weight["method"]) == (None, [1.25, 1.5], "mean")
    rows = [
        orjson.loads(line)
        for line in api.get(f"{API}/projects/{project['id']}/export", auth=org.owner).content.splitlines()
    ]
    assert rows[0]["answer"] == {"count": 11, "weight": None}
    assert rows[0]["result"]["questions"]["count"]["details"]["tolerance"] == 1


def test_bad_number_answers_and_configs_name_the_field(api: Api, org: Org) -> None:
    project = org.make_project(spec=NUMBER_SPEC)
    (task,) = org.make_tasks(project["id"], 1)
    cases = [
        ({"count": 101}, "answer.count: must be between 0 and 100"),
        ({"count": 2.5}, "answer.count: must be 0 plus a multiple of 1"),
        ({"count": "7"}, "answer.count: must be a number"),
        ({"count": 3, "weight": 0.3}, "answer.weight: must be 0 plus a multiple of 0.25"),
    ]
    for answer, message in cases:
        assert assert_error(_submit(api, org.owner, task["id"], answer), 422)["message"] == message
    bad = {**NUMBER_SPEC, "questions": [{"name": "n", "type": "number", "min": 1, "max": 1}]}
    error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": bad}), 422)
    assert error["message"] == "spec.questions[0]: max must be greater than min"


def test_a_rubric_question_from_spec_to_export(api: Api, org: Org) -> None:
    project = api.post(
        f"{API}/projects", auth=org.owner, json={"name": "grading", "spec": RUBRIC_SPEC, "quality": {"overlap": 2}}
    ).json()
    (task,) = org.make_tasks(project["id"], 1)
    a, b = _workers(org, 2)
    first = {"grade": {"accuracy": {"score": 4, "comment": "a date is off"}, "tone": {"score": 3}}}
    r = _submit(api, a, task["id"], first)
    assert r.status_code == 201, r.text
    assert r.json()["response"]["answer"] == first
    assert _submit(api, b, task["id"], {"grade": {"accuracy": {"score": 4}, "tone": {"score": 2}}}).status_code == 201
    result = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["result"]["questions"]["grade"]
    # accuracy: both 4 -> 3/4; tone: 3 and 2, an even split -> a tie of that criterion
    assert result["answer"] == {"accuracy": {"score": 4}}
    assert result["tie"] == [{"criterion": "tone", "scores": [2, 3]}]
    assert result["confidence"] == pytest.approx(0.75)
    assert result["method"] == "median_per_criterion"
    rows = [
        orjson.loads(line)
        for line in api.get(f"{API}/projects/{project['id']}/export", auth=org.owner).content.splitlines()
    ]
    assert rows[0]["answer"] == {"grade": {"accuracy": {"score": 4}}}


def test_bad_rubric_answers_and_configs_name_the_criterion(api: Api, org: Org) -> None:
    project = org.make_project(spec=RUBRIC_SPEC)
    (task,) = org.make_tasks(project["id"], 1)
    cases = [
        ({"grade": {"accuracy": {"score": 4}}}, "answer.grade: tone: a score is required"),
        (
            {"grade": {"accuracy": {"score": 9}, "tone": {"score": 1}}},
            "answer.grade: accuracy.score: must be between 1 and 5",
        ),
        (
            {"grade": {"accuracy": {"score": 2}, "tone": {"score": 1, "comment": "x"}}},
            "answer.grade: tone.comment: this criterion takes no comment",
        ),
    ]
    for answer, message in cases:
        assert assert_error(_submit(api, org.owner, task["id"], answer), 422)["message"] == message
    criteria = [{"name": "a"}, {"name": "b", "min": 2, "max": 1}]
    bad = {**RUBRIC_SPEC, "questions": [{"name": "g", "type": "rubric", "criteria": criteria}]}
    error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": bad}), 422)
    assert error["message"] == "spec.questions[0].criteria[1]: max must be greater than min"
    assert error["details"]["field"] == "spec.questions[0].criteria[1]"


def test_agreement_measures_of_number_and_rubric(api: Api, org: Org) -> None:
    spec = {"fields": NUMBER_SPEC["fields"], "questions": [NUMBER_SPEC["questions"][0], RUBRIC_SPEC["questions"][0]]}
    project = org.make_project(spec=spec, overlap=2)
    tasks = org.make_tasks(project["id"], 2)
    a, b = _workers(org, 2)
    for task, counts, scores in ((tasks[0], (3, 3), (1, 1)), (tasks[1], (50, 50), (5, 5))):
        for worker, count, score in zip((a, b), counts, scores, strict=True):
            answer = {"count": count, "grade": {"accuracy": {"score": score}, "tone": {"score": 2}}}
            assert _submit(api, worker, task["id"], answer).status_code == 201
    count, grade = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
    assert count["measures"] == {"krippendorff_alpha_interval": 1.0}
    # tone is 2 everywhere: no variation, which truthset.quality counts as perfect agreement
    assert grade["measures"] == {"krippendorff_alpha_ordinal.accuracy": 1.0, "krippendorff_alpha_ordinal.tone": 1.0}
