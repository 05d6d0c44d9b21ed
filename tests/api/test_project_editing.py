"""Editing a project's spec (the rules of services/spec_changes.py), checking a spec without saving,
and deleting a project: what may change once a project holds work, and what is refused, by name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .helpers import API, SPEC, Api, Org, assert_error, snapshot


def _spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


def _answered(api: Api, org: Org) -> dict[str, Any]:
    """A project (text field; sentiment label; optional stars) with one answered task."""
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"], "answered")
    sent = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": {"sentiment": "positive"}})
    assert sent.status_code == 201, sent.text
    return project


def _patch_spec(api: Api, org: Org, project_id: str, spec: dict[str, Any]) -> Any:
    return api.patch(f"{API}/projects/{project_id}", auth=org.owner, json={"spec": spec})


REFUSED_WITH_ANSWERS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "remove a question",
        _spec(questions=[SPEC["questions"][0]]),
        "spec.questions",
        "question 'stars' was removed or renamed",
    ),
    (
        "rename a question",
        _spec(questions=[{**SPEC["questions"][0], "name": "mood"}, SPEC["questions"][1]]),
        "spec.questions",
        "question 'sentiment' was removed or renamed",
    ),
    (
        "remove an option",
        _spec(questions=[{**SPEC["questions"][0], "options": ["positive", "negative"]}, SPEC["questions"][1]]),
        "spec.questions[0].options",
        "lost option 'neutral'",
    ),
    (
        "rename an option",
        _spec(questions=[{**SPEC["questions"][0], "options": ["good", "negative", "neutral"]}, SPEC["questions"][1]]),
        "spec.questions[0].options",
        "lost option 'positive'",
    ),
    (
        "change a type",
        _spec(questions=[SPEC["questions"][0], {"name": "stars", "type": "text", "required": False}]),
        "spec.questions[1].type",
        "changed type from rating to text",
    ),
    (
        "change a scale",
        _spec(questions=[SPEC["questions"][0], {**SPEC["questions"][1], "max": 10}]),
        "spec.questions[1].max",
        "changed max from 5 to 10",
    ),
    (
        "make a question required",
        _spec(questions=[SPEC["questions"][0], {**SPEC["questions"][1], "required": True}]),
        "spec.questions[1].required",
        "question 'stars' became required",
    ),
    (
        "add a required question",
        _spec(questions=[*SPEC["questions"], {"name": "why", "type": "text"}]),
        "spec.questions[2].required",
        "new question 'why' must be optional",
    ),
    (
        "remove a field",
        _spec(fields=[{"name": "body", "type": "text"}]),
        "spec.fields",
        "field 'text' was removed or renamed",
    ),
    (
        "retype a field",
        _spec(fields=[{"name": "text", "type": "html"}]),
        "spec.fields[0].type",
        "changed type from text to html",
    ),
    (
        "add a required field",
        _spec(fields=[*SPEC["fields"], {"name": "title", "type": "text"}]),
        "spec.fields[1].required",
        "new field 'title' must be optional",
    ),
]


@pytest.mark.parametrize(("change", "spec", "field", "words"), REFUSED_WITH_ANSWERS, ids=lambda v: str(v)[:30])
def test_a_change_that_would_not_fit_stored_answers_is_refused_by_name(
    api: Api, org: Org, change: str, spec: dict[str, Any], field: str, words: str
) -> None:
    project = _answered(api, org)
    before = snapshot(org.db, org.id)
    error = assert_error(_patch_spec(api, org, project["id"], spec), 409, "spec_change_refused")
    assert error["details"]["field"] == field, (change, error)
    assert words in error["message"] and error["message"].startswith(field), (change, error)
    assert "Duplicate" in error["message"]
    assert snapshot(org.db, org.id) == before, f"a refused change ({change}) stored something"
    # the check endpoint gives the same answer without saving
    checked = api.post(f"{API}/specs/validate", auth=org.owner, json={"spec": spec, "project_id": project["id"]})
    assert assert_error(checked, 409, "spec_change_refused")["message"] == error["message"]


def test_rewording_and_extending_a_spec_with_answers_is_allowed_and_keeps_the_answers(api: Api, org: Org) -> None:
    project = _answered(api, org)
    responses_before = snapshot(org.db, org.id)["responses"]
    spec = {
        "fields": [
            {"name": "text", "type": "text", "label": "The review"},
            {"name": "source", "type": "text", "required": False},
        ],
        "questions": [
            {
                "name": "sentiment",
                "type": "label",
                "prompt": "How does the writer **feel**?",
                "options": [
                    {"value": "neutral", "label": "Neither"},
                    {"value": "positive", "label": "Happy", "hotkey": "h"},
                    "negative",
                    "mixed",
                ],
            },
            {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False, "labels": {"1": "awful"}},
            {"name": "why", "type": "text", "required": False},
        ],
    }
    changed = _patch_spec(api, org, project["id"], spec)
    assert changed.status_code == 200, changed.text
    assert [q["name"] for q in changed.json()["spec"]["questions"]] == ["sentiment", "stars", "why"]
    assert snapshot(org.db, org.id)["responses"] == responses_before, "stored answers changed"
    # the new option and question take answers at once (no stale compiled spec)
    task = org.make_task(project["id"], "after the change")
    answer = {"sentiment": "mixed", "why": "both"}
    sent = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": answer})
    assert sent.status_code == 201, sent.text
    # a required question may become optional
    spec["questions"][0]["required"] = False
    assert _patch_spec(api, org, project["id"], spec).status_code == 200


def test_before_any_task_anything_may_change(api: Api, org: Org) -> None:
    project = org.make_project()
    spec = {
        "fields": [{"name": "body", "type": "html"}],
        "questions": [{"name": "ok", "type": "label", "options": ["y", "n"]}],
    }
    changed = _patch_spec(api, org, project["id"], spec)
    assert changed.status_code == 200, changed.text
    assert changed.json()["spec"]["fields"][0]["name"] == "body"


def test_with_tasks_but_no_answers_questions_may_change_but_fields_may_not_shrink(api: Api, org: Org) -> None:
    project = org.make_project()
    org.make_task(project["id"], "unanswered")
    spec = _spec(questions=[{"name": "topic", "type": "labels", "options": ["a", "b"]}])
    assert _patch_spec(api, org, project["id"], spec).status_code == 200
    error = assert_error(_patch_spec(api, org, project["id"], _spec(fields=[{"name": "x", "type": "text"}])), 409)
    assert error["details"]["field"] == "spec.fields" and "project has tasks" in error["message"]


def test_a_gold_answer_counts_as_an_answer(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"], "gold")
    marked = api.request(
        "PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"sentiment": "negative"}}
    )
    assert marked.status_code == 200, marked.text
    spec = _spec(questions=[{**SPEC["questions"][0], "options": ["positive", "neutral"]}])
    error = assert_error(_patch_spec(api, org, project["id"], spec), 409, "spec_change_refused")
    assert "lost option 'negative'" in error["message"]


def test_the_policy_must_fit_the_new_spec(api: Api, org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "deciding": ["stars"]})
    error = assert_error(_patch_spec(api, org, project["id"], _spec(questions=[SPEC["questions"][0]])), 422)
    assert error["details"]["field"] == "quality.deciding" and "'stars'" in error["message"]
    both = {"spec": _spec(questions=[SPEC["questions"][0]]), "quality": {"overlap": 1}}
    assert api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json=both).status_code == 200


def test_validate_spec_names_the_bad_field_and_returns_what_the_workbench_gets(api: Api, org: Org) -> None:
    bad = _spec(questions=[{"name": "q", "type": "label", "options": ["only"]}])
    error = assert_error(api.post(f"{API}/specs/validate", auth=org.owner, json={"spec": bad}), 422, "invalid_input")
    assert error["details"]["field"] == "spec.questions[0].options"
    created = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": bad}), 422)
    assert created["message"] == error["message"], "the check and creating a project disagree"
    policy = {"spec": SPEC, "quality": {"deciding": ["nope"]}}
    error = assert_error(api.post(f"{API}/specs/validate", auth=org.owner, json=policy), 422)
    assert error["details"]["field"] == "quality.deciding" and "'nope'" in error["message"]
    good = api.post(f"{API}/specs/validate", auth=org.owner, json={"spec": SPEC})
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["questions"][0]["options"][0] == {"value": "positive", "label": "", "hotkey": None}
    assert body["spec"]["questions"][1]["name"] == "stars" and "deciding" in body["quality"]
    assert snapshot(org.db, org.id)["projects"] == [], "checking a spec stored a project"


def test_delete_only_a_project_without_tasks(api: Api, org: Org) -> None:
    empty = org.make_project(name="empty")
    org.make_batch(empty["id"], name="unused")
    busy = org.make_project(name="busy")
    org.make_task(busy["id"], "keep me")
    error = assert_error(api.delete(f"{API}/projects/{busy['id']}", auth=org.owner), 409, "project_has_tasks")
    assert "archive it instead" in error["message"]
    assert api.delete(f"{API}/projects/{empty['id']}", auth=org.owner).status_code == 204
    assert_error(api.get(f"{API}/projects/{empty['id']}", auth=org.owner), 404, "not_found")
    assert_error(api.delete(f"{API}/projects/{empty['id']}", auth=org.owner), 404, "not_found")
    assert api.get(f"{API}/projects/{busy['id']}", auth=org.owner).status_code == 200


def test_delete_a_project_with_its_data(api: Api, org: Org, make_org: Any, db: Any) -> None:
    """``POST /projects/{id}/deletion``: owners and admins, the name repeated, a job that deletes it all."""
    from truthset.domain import Role
    from truthset.jobs import Runner

    project = org.make_project(name="Q3 reviews")
    org.make_tasks(project["id"], 3)
    url = f"{API}/projects/{project['id']}/deletion"
    assert_error(api.post(url, auth=org.actor(Role.MANAGER), json={"confirm": "Q3 reviews"}), 403, "forbidden")
    wrong = assert_error(api.post(url, auth=org.owner, json={"confirm": "Q3"}), 422, "invalid_input")
    assert wrong["details"]["field"] == "confirm" and "'Q3 reviews'" in wrong["message"]
    assert_error(api.post(url, auth=org.owner, json={}), 422, "invalid_input")
    other = make_org("Other")
    assert_error(api.post(url, auth=other.owner, json={"confirm": "Q3 reviews"}), 404, "not_found")
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).json()["archived_at"] is None

    started = api.post(url, auth=org.actor(Role.ADMIN), json={"confirm": "Q3 reviews"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "project.delete" and job["status"] == "queued"
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).json()["archived_at"] is not None
    refused = api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json={"archived": False})
    assert_error(refused, 409, "project_being_deleted")

    Runner(db, kinds=["project.delete"], poll_seconds=0.02).run_until_idle()
    done = api.get(f"{API}/jobs/{job['id']}", auth=org.owner).json()
    assert done["status"] == "succeeded" and done["result"]["tasks"] == 3
    assert_error(api.get(f"{API}/projects/{project['id']}", auth=org.owner), 404, "not_found")
    assert api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project["id"]}).json()["items"] == []


def test_another_organization_cannot_edit_check_against_or_delete_a_project(api: Api, org: Org, make_org: Any) -> None:
    project = org.make_project()
    other = make_org("Other")
    assert_error(_patch_spec(api, other, project["id"], SPEC), 404, "not_found")
    checked = api.post(f"{API}/specs/validate", auth=other.owner, json={"spec": SPEC, "project_id": project["id"]})
    assert_error(checked, 404, "not_found")
    assert_error(api.delete(f"{API}/projects/{project['id']}", auth=other.owner), 404, "not_found")
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).status_code == 200


FOR_EACH_SPEC: dict[str, Any] = {
    "fields": [{"name": "answers", "type": "responses", "count": 2}],
    "questions": [{"name": "grade", "type": "rating", "min": 1, "max": 5, "for_each": "answers"}],
}


def test_questions_asked_for_each_candidate_keep_their_candidates(api: Api, org: Org) -> None:
    project = org.make_project(spec=copy.deepcopy(FOR_EACH_SPEC))
    task = org.make_task(project["id"], data={"answers": ["one", "two"]})
    sent = api.post(
        f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": {"grade-0": 4, "grade-1": 2}}
    )
    assert sent.status_code == 201, sent.text
    three = copy.deepcopy(FOR_EACH_SPEC)
    three["fields"][0]["count"] = 3
    error = assert_error(_patch_spec(api, org, project["id"], three), 409, "spec_change_refused")
    assert error["details"]["field"] == "spec.fields[0].count" and "from 2 to 3" in error["message"]
    once = copy.deepcopy(FOR_EACH_SPEC)
    del once["questions"][0]["for_each"]
    error = assert_error(_patch_spec(api, org, project["id"], once), 409, "spec_change_refused")
    assert error["details"]["field"] == "spec.questions[0].for_each"
    reworded = copy.deepcopy(FOR_EACH_SPEC)
    reworded["questions"][0]["prompt"] = "Grade this reply"
    reworded["questions"].append({"name": "note", "type": "text", "for_each": "answers", "required": False})
    assert _patch_spec(api, org, project["id"], reworded).status_code == 200


def test_a_numbers_unit_is_its_meaning_not_a_caption(api: Api, org: Org) -> None:
    """Answers given in kilograms do not become grams: a unit is refused like a scale."""
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "weight", "type": "number", "min": 0, "max": 1000, "unit": "kg"}],
    }
    project = org.make_project(spec=spec, quality={"overlap": 2})
    task = org.make_task(project["id"], "a parcel")
    sent = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": {"weight": 12}})
    assert sent.status_code == 201, sent.text
    grams = {**spec, "questions": [{**spec["questions"][0], "unit": "g"}]}
    error = assert_error(_patch_spec(api, org, project["id"], grams), 409)
    assert error["details"]["field"] == "spec.questions[0].unit" and "changed unit from 'kg' to 'g'" in error["message"]
