"""Ranking through the API: a chatbot-review project asking three questions per task (docs example)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from truthset.questions.ranking import shown_order

from .helpers import API, Api, Org, assert_error

DOCS = Path(__file__).parent.parent.parent / "docs" / "questions.md"


def chat_review_spec() -> dict:
    """The chatbot-review spec of docs/questions.md (the block after its heading)."""
    text = DOCS.read_text()
    section = text.split("## Example: reviewing two chatbot answers", 1)[1]
    return json.loads(re.search(r"```json spec\n(.*?)```", section, flags=re.S).group(1))


GRADES = {"grade-0": {"helpful": {"score": 3}, "correct": {"score": 2}}, "grade-1": {"helpful": {"score": 3}}}
GRADES["grade-1"]["correct"] = {"score": 2}

TASK = {
    "conversation": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "How do I reverse a list in Python?"},
    ],
    "answers": [
        {"content": "Use `items[::-1]` or `items.reverse()`.", "model": "model-alpha", "id": "a-1"},
        {"content": "```python\nreversed(items)\n```", "model": "model-beta", "id": "b-1"},
    ],
}


def _project(api: Api, org: Org, overlap: int = 2) -> dict:
    body = {"name": "chat review", "spec": chat_review_spec(), "quality": {"overlap": overlap}}
    r = api.post(f"{API}/projects", auth=org.owner, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_three_question_chat_review(api: Api, org: Org) -> None:
    project = _project(api, org)
    task = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": TASK}).json()
    seen = []
    grades = {"grade-0": {"helpful": {"score": 2}, "correct": {"score": 1}}, "grade-1": {"helpful": {"score": 5}}}
    grades["grade-1"]["correct"] = {"score": 3}
    problem = [{"start": 4, "end": 15, "label": "error"}]  # "`items[::-1]`" in the first answer
    for role, answer in [
        ("annotator", {"preference": {"winner": 1, "strength": "much better"}, **grades, "problems-0": problem}),
        ("manager", {"preference": {"winner": 1, "strength": "slightly better"}, **grades, "rewrite": "x"}),
    ]:
        worker = org.actor(role)
        lease = api.post(f"{API}/projects/{project['id']}/next", auth=worker).json()
        # blind: the served task names no model, and the order shown is the assignment's own
        assert "model-" not in orjson.dumps(lease).decode() and '"a-1"' not in orjson.dumps(lease).decode()
        assert lease["task"]["data"]["answers"] == [{"content": a["content"]} for a in TASK["answers"]]
        assert lease["display"] == {"answers": shown_order(lease["id"], "answers", 2)}
        faked = {**answer, "preference": {**answer["preference"], "shown_order": [9, 9]}}  # ignored
        body = {"answer": faked, "assignment_id": lease["id"]}
        r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json=body, headers={"Idempotency-Key": role})
        assert r.status_code == 201, r.text
        assert "model-" not in r.text
        stored = r.json()["response"]["answer"]
        assert stored["preference"] == {**answer["preference"], "shown_order": lease["display"]["answers"]}
        # a replay of the same request (the client's shown_order is the server's business) is a replay
        again = api.post(
            f"{API}/tasks/{task['id']}/responses", auth=worker, json=body, headers={"Idempotency-Key": role}
        )
        assert again.status_code == 200 and again.json()["response"] == r.json()["response"]
        seen.append(r.json())
    done = seen[-1]["task"]
    assert done["status"] == "completed"
    result = done["result"]["questions"]["preference"]
    assert result["answer"] == 1 and 0.5 < result["confidence"] < 1.0 and result["method"] == "bradley_terry"
    # each answer graded on its own, keyed by its index in the data whatever order each worker saw
    assert done["result"]["answer"]["grade-0"] == grades["grade-0"]
    assert done["result"]["answer"]["grade-1"] == grades["grade-1"]
    assert done["result"]["questions"]["problems-0"]["answer"] is not None  # one worker marked, one did not
    # the project's owner sees the task as it was imported, models included, and exports the result
    full = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert full["data"] == TASK
    lines = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner).content.splitlines()
    assert orjson.loads(lines[0])["answer"]["preference"] == 1
    stored = api.get(f"{API}/tasks/{task['id']}/responses", auth=org.owner).json()
    rows = stored["items"] if isinstance(stored, dict) else stored
    assert {tuple(r["answer"]["preference"]["shown_order"]) for r in rows} <= {(0, 1), (1, 0)}
    measures = next(
        q
        for q in api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
        if q["question"] == "preference"
    )["measures"]
    assert measures["pairwise_agreement"] == 1.0 and measures["first_shown_n"] == 2.0
    assert measures["first_shown_wins"] in (0.0, 0.5, 1.0)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"preference": {"winner": 2, "strength": "much better"}, **GRADES}, "answer.preference: winner must"),
        ({"preference": {"winner": 0}, **GRADES}, "answer.preference: strength must be one of"),
        ({"preference": {"winner": "tie", "strength": "much better"}, **GRADES}, "a tie has no strength"),
    ],
)
def test_bad_ranking_answers_name_the_question(api: Api, org: Org, answer: dict, message: str) -> None:
    project = _project(api, org)
    task = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": TASK}).json()
    r = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.actor("annotator"), json={"answer": answer})
    error = assert_error(r, 422)
    assert message in error["message"], error


def test_bad_ranking_data_and_specs_are_refused(api: Api, org: Org) -> None:
    project = _project(api, org)
    three = {**TASK, "answers": [*TASK["answers"], "a third"]}
    r = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": three})
    assert "data.answers must have exactly 2 responses" in assert_error(r, 422)["message"]
    bad_chat = {**TASK, "conversation": [{"role": "robot", "content": "hi"}]}
    r = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": bad_chat})
    assert "data.conversation[0].role must be one of user, assistant, system" in assert_error(r, 422)["message"]
    spec = chat_review_spec()
    spec["questions"][0]["field"] = "conversation"
    r = api.post(f"{API}/projects", auth=org.owner, json={"name": "bad", "spec": spec})
    expected = "questions[0].field: 'conversation' is a conversation field; a ranking question needs a responses field"
    assert expected in assert_error(r, 422)["message"]


def test_an_ordering_with_four_candidates(api: Api, org: Org) -> None:
    spec = {
        "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
        "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order", "allow_tie": True}],
    }
    project = api.post(
        f"{API}/projects", auth=org.owner, json={"name": "order", "spec": spec, "quality": {"overlap": 2}}
    ).json()
    data = {"prompt": "p", "answers": ["w", "x", "y", "z"]}
    task = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": data}).json()
    for role, order in [("annotator", [2, [0, 3], 1]), ("manager", [2, 0, 3, 1])]:
        worker = org.actor(role)
        lease = api.post(f"{API}/projects/{project['id']}/next", auth=worker).json()
        short = {"answer": {"order": {"order": [2, 0, 1]}}, "assignment_id": lease["id"]}
        r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json=short)
        assert "answer.order: order must name each of the 4 candidates" in assert_error(r, 422)["message"]
        body = {"answer": {"order": {"order": order}}, "assignment_id": lease["id"]}
        r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json=body)
        assert r.status_code == 201, r.text
        assert r.json()["response"]["answer"]["order"]["shown_order"] == lease["display"]["answers"]
    result = r.json()["task"]["result"]["questions"]["order"]
    assert result["answer"][0] == 2 and result["answer"][-1] == 1 and 0.5 < result["confidence"] < 1.0


def test_a_gold_ranking_answer_is_graded_without_the_order_shown(api: Api, org: Org) -> None:
    """The stored answer carries shown_order; the gold answer does not: the grade must still match."""
    body = {"name": "gold", "spec": chat_review_spec(), "quality": {"overlap": 1, "gold": {"qualification": 1}}}
    project = api.post(f"{API}/projects", auth=org.owner, json=body).json()
    task = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": TASK}).json()
    gold = {"preference": {"winner": 1, "strength": "much better"}, **GRADES}
    marked = api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": gold})
    assert marked.status_code == 200, marked.text
    worker = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=worker).json()
    assert lease["task"]["id"] == task["id"] and "model-" not in orjson.dumps(lease).decode()
    r = api.post(
        f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": gold, "assignment_id": lease["id"]}
    )
    assert r.status_code == 201, r.text
    figures = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner).json()["items"]
    (mine,) = [f for f in figures if f["worker_id"] == worker.worker_id]
    assert mine["gold_answers"] == 1 and mine["gold_accuracy"] == 1.0, mine


def test_a_reviewers_fix_of_an_ordering_is_checked_against_the_task(api: Api, org: Org) -> None:
    spec = {
        "fields": [{"name": "answers", "type": "responses"}],
        "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order"}],
    }
    body = {"name": "review", "spec": spec, "quality": {"overlap": 1, "review": {"sample_rate": 1.0}}}
    project = api.post(f"{API}/projects", auth=org.owner, json=body).json()
    task = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"answers": ["a", "b", "c"]}}
    )
    task = task.json()
    worker = org.actor("annotator")
    r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": {"order": {"order": [2, 1, 0]}}})
    assert r.status_code == 201, r.text
    reviewer = org.actor("reviewer")
    assert api.post(f"{API}/projects/{project['id']}/reviews/next", auth=reviewer).status_code == 200
    url = f"{API}/tasks/{task['id']}/reviews"
    short = api.post(url, auth=reviewer, json={"verdict": "fix", "answer": {"order": {"order": [1, 0]}}})
    assert "answer.order: order must name each of the 3 candidates" in assert_error(short, 422)["message"]
    fixed = api.post(url, auth=reviewer, json={"verdict": "fix", "answer": {"order": {"order": [0, 1, 2]}}})
    assert fixed.status_code == 201, fixed.text
    responses = api.get(f"{API}/tasks/{task['id']}/responses", auth=org.owner).json()
    rows = responses["items"] if isinstance(responses, dict) else responses
    # the review page shows candidates as imported: that is the order recorded with the fix
    assert {"order": [0, 1, 2], "shown_order": [0, 1, 2]} in [r["answer"]["order"] for r in rows]


def test_ranking_is_a_listed_question_type(api: Api, org: Org) -> None:
    types = {item["name"]: item for item in api.get(f"{API}/question-types", auth=org.owner).json()}
    ranking = types["ranking"]
    assert ranking["description"].startswith("`ranking`: compare model responses")
    assert {"field", "mode", "allow_tie", "strength", "show_models"} <= set(ranking["config_schema"]["properties"])
