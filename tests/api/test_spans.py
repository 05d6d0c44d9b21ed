"""`spans` end to end through the API: a project, answers from three workers, the result, the
agreement figures, the export, and offsets checked against each task's text wherever a task is known."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from .helpers import API, Api, Org, assert_error

TEXT = "🙂 Ada Lovelace wrote to Babbage from London."  # an astral character first
ADA = {"start": 2, "end": 14, "label": "PER"}
BABBAGE = {"start": 24, "end": 31, "label": "PER"}
LONDON = {"start": 37, "end": 43, "label": "LOC"}
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {
            "name": "entities",
            "type": "spans",
            "field": "text",
            "labels": [{"value": "PER", "label": "Person", "hotkey": "e"}, {"value": "LOC", "hotkey": "l"}],
        }
    ],
}


def _project(org: Org, **question: Any) -> dict[str, Any]:
    spec = {**SPEC, "questions": [{**SPEC["questions"][0], **question}]}
    return org.make_project(spec=spec, overlap=3)


def _answer(api: Api, auth: Any, task_id: str, spans: list[dict[str, Any]]) -> Any:
    return api.post(f"{API}/tasks/{task_id}/responses", auth=auth, json={"answer": {"entities": spans}})


def test_the_offsets_name_the_words() -> None:
    assert [TEXT[s["start"] : s["end"]] for s in (ADA, BABBAGE, LONDON)] == ["Ada Lovelace", "Babbage", "London"]


def test_three_workers_give_a_result_with_an_honest_confidence(api: Api, org: Org) -> None:
    project = _project(org)
    task = org.make_task(project["id"], TEXT)
    workers = [org.add_member("annotator") for _ in range(3)]
    answers = [[LONDON, ADA], [ADA, {**LONDON}], [ADA, BABBAGE]]
    for worker, spans in zip(workers, answers, strict=True):
        assert _answer(api, worker, task["id"], spans).status_code == 201
    stored = api.get(f"{API}/tasks/{task['id']}/responses", auth=org.owner).json()
    assert [r["answer"]["entities"] for r in stored] == [[ADA, LONDON], [ADA, LONDON], [ADA, BABBAGE]]  # sorted
    done = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert done["status"] == "completed"
    result = done["result"]["questions"]["entities"]
    assert result["answer"] == [ADA, LONDON]
    assert result["method"] == "span_vote_exact" and result["tie"] is None
    # ADA by 3 of 3: 4/5; LONDON kept by 2 of 3 and BABBAGE dropped by 2 of 3: 3/5 each; the weakest decides
    assert result["confidence"] == pytest.approx(0.6)
    assert [(s["start"], s["status"]) for s in result["details"]["spans"]] == [
        (2, "kept"),
        (24, "dropped"),
        (37, "kept"),
    ]


def test_a_label_tie_stays_a_tie(api: Api, org: Org) -> None:
    project = org.make_project(spec=SPEC, overlap=2)
    task = org.make_task(project["id"], TEXT)
    for spans in ([ADA], [{**ADA, "label": "LOC"}]):
        assert _answer(api, org.add_member("annotator"), task["id"], spans).status_code == 201
    result = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["result"]["questions"]["entities"]
    assert result["answer"] == [] and result["tie"] == [[ADA, {**ADA, "label": "LOC"}]]


def test_offsets_past_the_text_are_refused_naming_the_question(api: Api, org: Org) -> None:
    project = _project(org)
    task = org.make_task(project["id"], TEXT)
    # UTF-16 offsets (as JavaScript counts) run one past the end of this text
    past = {"start": 38, "end": len(TEXT) + 1, "label": "LOC"}
    error = assert_error(_answer(api, org.add_member("annotator"), task["id"], [past]), 422, "invalid_input")
    assert (
        error["message"]
        == f"answer.entities: span 38-{len(TEXT) + 1} ends past the end of the text ({len(TEXT)} characters)"
    )
    assert error["details"]["field"] == "answer"
    overlap = [ADA, {"start": 10, "end": 20, "label": "LOC"}]
    error = assert_error(_answer(api, org.add_member("annotator"), task["id"], overlap), 422, "invalid_input")
    assert error["message"].startswith("answer.entities: spans 2-14 (PER) and 10-20 (LOC) overlap")
    gold = api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"entities": [past]}})
    assert assert_error(gold, 422)["message"].startswith("answer.entities: span 38-")
    csv = f'task_id,entities\n{task["id"]},"{orjson.dumps([past]).decode().replace(chr(34), chr(34) * 2)}"\n'
    imported = api.post(
        f"{API}/projects/{project['id']}/gold", auth=org.owner, content=csv, headers={"Content-Type": "text/csv"}
    )
    assert "ends past the end of the text" in assert_error(imported, 422)["message"]


def test_a_spec_naming_a_missing_or_non_text_field_is_refused(api: Api, org: Org) -> None:
    for field, message in (
        ("body", "spec.questions[0].field: 'body' is not a field of the spec (fields: text, photo)"),
        ("photo", "spec.questions[0].field: 'photo' is an image field; a spans question needs a text field"),
    ):
        spec = {
            "fields": [{"name": "text", "type": "text"}, {"name": "photo", "type": "image"}],
            "questions": [{**SPEC["questions"][0], "field": field}],
        }
        error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": spec}), 422)
        assert error["message"] == message
        assert error["details"]["errors"][0]["field"] == "spec.questions[0].field"


def test_agreement_is_span_f1_and_the_export_carries_the_spans(api: Api, org: Org) -> None:
    project = _project(org, match="overlap")
    task = org.make_task(project["id"], TEXT)
    lovelace = {"start": 6, "end": 14, "label": "PER"}  # IoU 8/12 with "Ada Lovelace"
    for spans in ([ADA, LONDON], [lovelace, LONDON], [ADA]):
        assert _answer(api, org.add_member("annotator"), task["id"], spans).status_code == 201
    body = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()
    (entities,) = body["questions"]
    assert entities["type"] == "spans" and entities["tasks"] == 1 and entities["fleiss_kappa"] is None
    assert entities["reasons"]["fleiss_kappa"] == "not compared as categories: see measures"
    # exact: pairs 1-2 one of 4, 1-3 one of 3, 2-3 none of 3 -> 2 * 2 / 10; overlap: 2 + 1 + 1 matched -> 8 / 10
    assert entities["measures"] == {"span_f1_exact": pytest.approx(0.4), "span_f1_overlap": pytest.approx(0.8)}
    workers = api.get(f"{API}/projects/{project['id']}/workers", auth=org.owner)
    assert workers.status_code == 200 and len(workers.json()["items"]) == 3  # spans are not pooled as categories
    export = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner)
    (row,) = [orjson.loads(line) for line in export.content.splitlines()]
    assert row["data"] == {"text": TEXT}
    assert row["answer"] == {"entities": [ADA, LONDON]}
    assert row["result"]["questions"]["entities"]["method"] == "span_vote_overlap"


def _doc_blocks(info: str) -> list[str]:
    text = (Path(__file__).parents[2] / "docs" / "questions.md").read_text()
    return re.findall(rf"```{info}\n(.*?)```", text, flags=re.S)


def test_the_docs_spec_example_works(api: Api, org: Org) -> None:
    (spec,) = [s for s in map(json.loads, _doc_blocks("json spec")) if s["questions"][0]["type"] == "spans"]
    created = api.post(
        f"{API}/projects", auth=org.owner, json={"name": "docs", "spec": spec, "quality": {"overlap": 2}}
    )
    assert created.status_code == 201, created.text
    project = created.json()
    text = "Ada Lovelace wrote to Babbage."
    task = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"text": text}}).json()
    ada, lovelace = {"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}
    for spans in ([ada], [lovelace]):  # IoU 8/12 >= 0.5: the same entity, but the offsets tie
        assert _answer(api, org.add_member("annotator"), task["id"], spans).status_code == 201
    result = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["result"]["questions"]["entities"]
    assert result["method"] == "span_vote_overlap"
    assert result["answer"] == [] and result["tie"] == [[ada, lovelace]]
    assert result["confidence"] == 0.5  # each offsets given by one worker of two: (1 + 1) / (2 + 2)


def test_the_docs_bio_example_runs() -> None:
    spans_section = (Path(__file__).parents[2] / "docs" / "questions.md").read_text().split("### `spans`")[1]
    (code,) = re.findall(r"```python\n(.*?)```", spans_section.split("\n## ")[0], flags=re.S)
    exec(compile(code, "docs/questions.md", "exec"), {})


def test_the_type_is_listed_and_a_reviewers_fix_is_checked_against_the_text(api: Api, org: Org) -> None:
    listed = {t["name"]: t for t in api.get(f"{API}/question-types", auth=org.owner).json()}
    assert listed["spans"]["description"].startswith("`spans`: entity spans on a text field")
    # `field` is not in `required`: a spans question asked for each candidate marks the responses field
    assert listed["spans"]["config_schema"]["required"] == ["name", "labels"]
    project = org.make_project(spec=SPEC, quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    task = org.make_task(project["id"], TEXT)
    assert _answer(api, org.add_member("annotator"), task["id"], [ADA]).status_code == 201
    reviewer = org.actor("reviewer")
    assert api.post(f"{API}/projects/{project['id']}/reviews/next", auth=reviewer).status_code == 200
    url = f"{API}/tasks/{task['id']}/reviews"
    past = {"start": 38, "end": len(TEXT) + 1, "label": "LOC"}
    refused = api.post(url, auth=reviewer, json={"verdict": "fix", "answer": {"entities": [ADA, past]}})
    assert assert_error(refused, 422)["message"].startswith("answer.entities: span 38-")
    fixed = api.post(url, auth=reviewer, json={"verdict": "fix", "answer": {"entities": [LONDON, ADA]}})
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["task"]["result"]["answer"] == {"entities": [ADA, LONDON]}
