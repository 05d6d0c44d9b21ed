"""Every export format x every question type: a sweep with labelled tasks, read back by each
format's own consumer.

For each question type (and questions asked ``for_each`` candidate) one small project: two tasks
labelled by two workers who agree (so each final answer is known) and completed, and one task with
no responses. Each format that accepts the type exports it the way the API does (``prepare``,
``rows_for``, the writer's media options, ``spool``; every status, so the open task is offered to
the writer too), and the file is read back with the library that consumes it: json for JSONL and
Label Studio, the csv module, pyarrow for Parquet, pycocotools for COCO, the zip's files for YOLO
and VOC, spaCy's converters and ``DocBin`` for CoNLL and spaCy. Each labelled answer must be there
with its real value (never null, empty or a repr), with its confidence where the format has a place
for one, and the open task present or absent as docs/formats.md says. A format that cannot write a
type refuses it before anything is queued, naming the format and the spec's question types.

Why: a Parquet/CSV export once wrote null for every JSON-valued answer and had no column for
questions asked ``for_each`` candidate; no test had exported a labelled task of each type.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import pyarrow.parquet as pq
import pytest
import spacy
from pycocotools.coco import COCO
from spacy.tokens import DocBin
from spacy.training.converters import conll_ner_to_docs, json_to_docs
from sqlalchemy import func, select

from truthset.errors import InvalidInput
from truthset.services import export, export_jobs, formats, tasks
from truthset.services.formats.images import write_options
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

WORKERS = 2  # both give the same answer, so each task's final answer is that answer
OPEN = "t3-open"  # the task with no responses
LABELLED = ("t1", "t2")
ALL_FORMATS = tuple(formats.names())
#: The formats writing every question type: whole tasks (their rows list every task, answered or not).
EVERY_TYPE = ("jsonl", "csv", "parquet", "label_studio")
#: The training formats and the types each writes (docs/formats.md, "Training formats"); they
#: leave out a task with nothing to write.
TRAINING = {
    "coco": {"boxes", "polygons"},
    "yolo": {"boxes", "polygons"},
    "voc": {"boxes", "polygons"},
    "conll": {"spans"},
    "spacy": {"spans"},
    "spacy_json": {"spans"},
    "preferences": {"ranking"},
}
#: CoNLL's tokens (docs/formats.md): each run of word characters, each other non-space character
TOKEN = re.compile(r"\w+|[^\w\s]")
#: Values that are not an answer: what a writer that lost one would put in its place.
NOT_VALUES = (None, "", "None", "null", "nan", "NaN", "[object Object]", "[object]", "{}", "[]")


@dataclass(frozen=True)
class Image:
    """An image to upload when the case is made (its ``media:<id>`` goes in the task's data)."""

    width: int
    height: int
    kind: str = "PNG"


@dataclass(frozen=True)
class Case:
    """A question type's project: ``data`` of t1, t2 and the open task; the answer each worker
    gives to t1 and t2; and what Label Studio's prediction holds for each: (from_name, type, value)."""

    name: str
    type: str
    spec: dict[str, Any]
    data: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
    answers: tuple[dict[str, Any], dict[str, Any]]
    label_studio: tuple[list[tuple[str, str, Any]], list[tuple[str, str, Any]]]
    #: the final answers when they differ from the answers given (a rubric's comments are not aggregated)
    finals: tuple[dict[str, Any], dict[str, Any]] | None = None
    #: Label Studio annotation items a response has beyond the prediction's (a rubric's comment)
    annotated: tuple[list[tuple[str, str, Any]], list[tuple[str, str, Any]]] = ([], [])

    @property
    def final(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.finals or self.answers

    def accepts(self, fmt: str) -> bool:
        return fmt in EVERY_TYPE or self.type in TRAINING.get(fmt, set())


TEXT = {"name": "text", "type": "text"}
ADA = "Ada Lovelace met Charles Babbage in London."
GRACE = "Grace Hopper worked in Arlington."
TEXTS = ({"text": ADA}, {"text": GRACE}, {"text": "Nobody answered this one."})
CANDIDATES = ["Use sorted on the items.", "Use the items reversed, or a slice."]  # spans on whole tokens
CHAT_FIELDS = [{"name": "chat", "type": "conversation"}, {"name": "answers", "type": "responses", "count": 2}]
CHATS = tuple(
    {"chat": [{"role": "user", "content": f"How do I reverse list {i}?"}], "answers": CANDIDATES} for i in range(3)
)


def span(text: str, piece: str, label: str) -> dict[str, Any]:
    start = text.index(piece)
    return {"start": start, "end": start + len(piece), "label": label}


def ls_span(name: str, text: str, found: dict[str, Any], to_name: str = "text") -> tuple[str, str, Any]:
    """A Label Studio span item (``_to``: the ``to_name`` it must have, checked apart)."""
    start, end = found["start"], found["end"]
    value = {"start": start, "end": end, "text": text[start:end], "labels": [found["label"]], "_to": to_name}
    return (name, "labels", value)


def box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


def ls_box(found: dict[str, Any], width: int, height: int) -> tuple[str, str, Any]:
    x, y, w, h = (
        100 * found[key] / size for key, size in (("x", width), ("y", height), ("width", width), ("height", height))
    )
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [found["label"]]}
    return ("objects", "rectanglelabels", value)


def ls_polygon(found: dict[str, Any], width: int, height: int) -> tuple[str, str, Any]:
    points = [[100 * x / width, 100 * y / height] for x, y in found["points"]]
    return ("outline", "polygonlabels", {"points": points, "closed": True, "polygonlabels": [found["label"]]})


T1_SPANS = [span(ADA, "Ada Lovelace", "PER"), span(ADA, "Charles Babbage", "PER"), span(ADA, "London", "LOC")]
T2_SPANS = [span(GRACE, "Grace Hopper", "PER"), span(GRACE, "Arlington", "LOC")]
T1_BOXES = [box("car", 10, 20, 50, 40)]
T2_BOXES = [box("person", 100, 100, 30, 60), box("car", 300, 200, 100, 50)]  # in (y, x) order, as aggregated
T1_ROAD = [{"label": "road", "points": [[0, 50], [200, 50], [200, 100], [0, 100]]}]
T2_ROAD = [
    {"label": "road", "points": [[10, 10], [300, 20], [150, 400]]},
    {"label": "curb", "points": [[400, 300], [600, 300], [600, 460]]},
]
IMAGES = ({"photo": Image(200, 100)}, {"photo": Image(640, 480, "JPEG")}, {"photo": Image(50, 50)})
PROBLEMS = ([span(CANDIDATES[0], "sorted", "error")], [span(CANDIDATES[1], "reversed", "error")])

CASES = [
    Case(
        "label",
        "label",
        {
            "fields": [TEXT],
            "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]}],
        },
        TEXTS,
        ({"sentiment": "negative"}, {"sentiment": "neutral"}),
        ([("sentiment", "choices", {"choices": ["negative"]})], [("sentiment", "choices", {"choices": ["neutral"]})]),
    ),
    Case(
        "labels",
        "labels",
        {"fields": [TEXT], "questions": [{"name": "topics", "type": "labels", "options": ["sport", "tech", "food"]}]},
        TEXTS,
        ({"topics": ["tech", "food"]}, {"topics": ["sport"]}),
        ([("topics", "choices", {"choices": ["tech", "food"]})], [("topics", "choices", {"choices": ["sport"]})]),
    ),
    Case(
        "number",
        "number",
        {"fields": [TEXT], "questions": [{"name": "price", "type": "number", "min": 0, "max": 1000}]},
        TEXTS,
        ({"price": 12.5}, {"price": 7}),
        ([("price", "number", {"number": 12.5})], [("price", "number", {"number": 7})]),
    ),
    Case(
        "rating",
        "rating",
        {"fields": [TEXT], "questions": [{"name": "stars", "type": "rating", "min": 1, "max": 5}]},
        TEXTS,
        ({"stars": 4}, {"stars": 2}),
        ([("stars", "rating", {"rating": 4})], [("stars", "rating", {"rating": 2})]),
    ),
    Case(
        "text",
        "text",
        {"fields": [TEXT], "questions": [{"name": "rewrite", "type": "text"}]},
        TEXTS,
        ({"rewrite": "Ada met Babbage."}, {"rewrite": 'She said "hi", then: café, ok'}),
        (
            [("rewrite", "textarea", {"text": ["Ada met Babbage."]})],
            [("rewrite", "textarea", {"text": ['She said "hi", then: café, ok']})],
        ),
    ),
    Case(
        "rubric",
        "rubric",
        {
            "fields": [TEXT],
            "questions": [
                {
                    "name": "grade",
                    "type": "rubric",
                    "criteria": [
                        {"name": "accuracy", "min": 1, "max": 5},
                        {"name": "tone", "min": 1, "max": 5, "comment": "optional"},
                    ],
                }
            ],
        },
        TEXTS,
        (
            {"grade": {"accuracy": {"score": 4}, "tone": {"score": 2, "comment": "curt"}}},
            {"grade": {"accuracy": {"score": 5}, "tone": {"score": 3}}},
        ),
        (
            [("grade.accuracy", "rating", {"rating": 4}), ("grade.tone", "rating", {"rating": 2})],
            [("grade.accuracy", "rating", {"rating": 5}), ("grade.tone", "rating", {"rating": 3})],
        ),
        annotated=([("grade.tone.comment", "textarea", {"text": ["curt"]})], []),
        # comments are free text, not aggregated: the result holds the scores
        finals=(
            {"grade": {"accuracy": {"score": 4}, "tone": {"score": 2}}},
            {"grade": {"accuracy": {"score": 5}, "tone": {"score": 3}}},
        ),
    ),
    Case(
        "ranking-pairwise",
        "ranking",
        {"fields": CHAT_FIELDS, "questions": [{"name": "preference", "type": "ranking", "field": "answers"}]},
        CHATS,
        ({"preference": {"winner": 1}}, {"preference": {"winner": 0}}),
        ([("preference", "pairwise", {"selected": "right"})], [("preference", "pairwise", {"selected": "left"})]),
        finals=({"preference": 1}, {"preference": 0}),  # the final answer is the winner's index
    ),
    Case(
        "ranking-order",
        "ranking",
        {
            "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
            "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order"}],
        },
        tuple({"prompt": f"Capital of France? ({i})", "answers": ["Lyon", "Paris", "Marseille"]} for i in range(3)),
        ({"order": {"order": [1, 2, 0]}}, {"order": {"order": [2, 1, 0]}}),
        (
            [("order", "ranker", {"ranker": {"order": ["1", "2", "0"]}})],
            [("order", "ranker", {"ranker": {"order": ["2", "1", "0"]}})],
        ),
        finals=({"order": [1, 2, 0]}, {"order": [2, 1, 0]}),  # the final answer is the order
    ),
    Case(
        "spans",
        "spans",
        {
            "fields": [TEXT],
            "questions": [{"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "LOC"]}],
        },
        TEXTS,
        ({"entities": T1_SPANS}, {"entities": T2_SPANS}),
        ([ls_span("entities", ADA, s) for s in T1_SPANS], [ls_span("entities", GRACE, s) for s in T2_SPANS]),
    ),
    Case(
        "boxes",
        "boxes",
        {
            "fields": [{"name": "photo", "type": "image"}],
            "questions": [{"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "person"]}],
        },
        IMAGES,
        ({"objects": T1_BOXES}, {"objects": T2_BOXES}),
        ([ls_box(b, 200, 100) for b in T1_BOXES], [ls_box(b, 640, 480) for b in T2_BOXES]),
    ),
    Case(
        "polygons",
        "polygons",
        {
            "fields": [{"name": "photo", "type": "image"}],
            "questions": [{"name": "outline", "type": "polygons", "field": "photo", "labels": ["road", "curb"]}],
        },
        IMAGES,
        ({"outline": T1_ROAD}, {"outline": T2_ROAD}),
        ([ls_polygon(p, 200, 100) for p in T1_ROAD], [ls_polygon(p, 640, 480) for p in T2_ROAD]),
    ),
    Case(
        "label-for_each",
        "label",
        {
            "fields": CHAT_FIELDS,
            "questions": [{"name": "verdict", "type": "label", "for_each": "answers", "options": ["ok", "wrong"]}],
        },
        CHATS,
        ({"verdict-0": "wrong", "verdict-1": "ok"}, {"verdict-0": "ok", "verdict-1": "ok"}),
        (
            [("verdict-0", "choices", {"choices": ["wrong"]}), ("verdict-1", "choices", {"choices": ["ok"]})],
            [("verdict-0", "choices", {"choices": ["ok"]}), ("verdict-1", "choices", {"choices": ["ok"]})],
        ),
    ),
    Case(
        "rubric-for_each",
        "rubric",
        {
            "fields": CHAT_FIELDS,
            "questions": [
                {
                    "name": "grade",
                    "type": "rubric",
                    "for_each": "answers",
                    "criteria": [{"name": "helpful", "min": 1, "max": 5}],
                }
            ],
        },
        CHATS,
        (
            {"grade-0": {"helpful": {"score": 2}}, "grade-1": {"helpful": {"score": 5}}},
            {"grade-0": {"helpful": {"score": 3}}, "grade-1": {"helpful": {"score": 4}}},
        ),
        (
            [("grade-0.helpful", "rating", {"rating": 2}), ("grade-1.helpful", "rating", {"rating": 5})],
            [("grade-0.helpful", "rating", {"rating": 3}), ("grade-1.helpful", "rating", {"rating": 4})],
        ),
    ),
    Case(
        "spans-for_each",
        "spans",
        {
            "fields": CHAT_FIELDS,
            "questions": [{"name": "problems", "type": "spans", "for_each": "answers", "labels": ["error"]}],
        },
        CHATS,
        ({"problems-0": PROBLEMS[0], "problems-1": PROBLEMS[1]}, {"problems-0": PROBLEMS[0], "problems-1": []}),
        (
            [
                ls_span("problems-0", CANDIDATES[0], PROBLEMS[0][0], "answers"),
                ls_span("problems-1", CANDIDATES[1], PROBLEMS[1][0], "answers"),
            ],
            [ls_span("problems-0", CANDIDATES[0], PROBLEMS[0][0], "answers")],
        ),
    ),
]
BY_NAME = {case.name: case for case in CASES}


def _combinations(accepted: bool) -> list[Any]:
    return [
        pytest.param(case.name, fmt, id=f"{case.name}-{fmt}")
        for case in CASES
        for fmt in ALL_FORMATS
        if case.accepts(fmt) == accepted
    ]


# --- making a case and exporting it ------------------------------------------------------------


@dataclass
class Made:
    case: Case
    project: dict[str, Any]
    ids: dict[str, str]  # unique_id -> task id
    data: list[dict[str, Any]]  # the data of t1, t2 and the open task, images uploaded

    def unique_id(self, task_id: str) -> str:
        return next(uid for uid, tid in self.ids.items() if tid == task_id)


def make(org: Org, labelled: Callable, upload: Callable, case: Case) -> Made:
    """The case's project: t1 and t2 answered by WORKERS agreeing workers (completed), then the
    open task, never answered."""
    data = [
        {k: upload(v.width, v.height, v.kind) if isinstance(v, Image) else v for k, v in d.items()} for d in case.data
    ]
    items = [{"data": data[i], "unique_id": uid} for i, uid in enumerate(LABELLED)]
    project, rows = labelled(org, case.spec, items, [list(case.answers)] * WORKERS)
    assert [row["status"] for row in rows] == ["completed", "completed"], rows
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], [(1, {"data": data[2], "unique_id": OPEN})])
    assert report.created == 1, report
    every = export.export_rows(org.db, org.owner.principal, project["id"], status=None)
    ids = {row["unique_id"]: row["task_id"] for row in every}
    return Made(case, project, ids, data)


def export_file(org: Org, made: Made, fmt: str, media_dir: Path) -> bytes:
    """The export as the API runs it (services/export.py: prepare, rows_for, spool), every status."""
    project, writer = export.prepare(org.db, org.owner.principal, made.project["id"], fmt)
    filters = export.ExportFilter(status=None)
    rows = export.rows_for(writer, org.db, org.owner.principal, project["id"], filters)
    options = write_options(writer, org.db, org.id, media_dir)
    with export.spool(rows, writer, project, **options) as file:
        return file.read()


# --- what every check shares ---------------------------------------------------------------------


def real(value: Any, where: str) -> Any:
    """``value``, after checking it is an answer's value and not what a lost one looks like."""
    assert value not in NOT_VALUES, f"{where}: {value!r} is not a real value"
    if isinstance(value, float):
        assert not math.isnan(value), where
    return value


def same(expected: Any, actual: Any, where: str) -> None:
    """``actual`` holds ``expected``: equal numbers (within rounding), lists item by item, and every
    key of an expected object (an aggregated shape may carry more, e.g. its confidence)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}: {key!r} missing from {actual!r}"
            same(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            same(e, a, f"{where}[{i}]")
    elif isinstance(expected, int | float) and not isinstance(expected, bool):
        assert isinstance(actual, int | float) and actual == pytest.approx(expected, abs=1e-6), f"{where}: {actual!r}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def sure(value: Any, where: str) -> float:
    """A confidence: a number in (0, 1]."""
    assert isinstance(value, int | float) and 0 < value <= 1, f"{where}: confidence {value!r}"
    return float(value)


def check_answers(made: Made, answers: dict[str, dict[str, Any]], fmt: str) -> None:
    """``answers`` (unique_id -> question -> value as read back) hold every final answer, each real."""
    for uid, final in zip(LABELLED, made.case.final, strict=True):
        for question, expected in final.items():
            got = real(answers[uid].get(question), f"{fmt}: {uid}.{question}")
            same(expected, got, f"{fmt}: {uid}.{question}")


def asked(case: Case) -> list[str]:
    """The questions each task asks (for_each copies named <name>-<index>), as results name them."""
    return list(case.final[0])


# --- the whole-task formats: JSONL, CSV, Parquet, Label Studio --------------------------------------


def read_jsonl(made: Made, data: bytes) -> None:
    lines = [json.loads(line) for line in data.decode().splitlines()]
    by_uid = {line["unique_id"]: line for line in lines}
    assert sorted(by_uid) == [*LABELLED, OPEN]
    check_answers(made, {uid: by_uid[uid]["answer"] for uid in LABELLED}, "jsonl")
    for uid in LABELLED:
        line = by_uid[uid]
        sure(line["confidence"], f"{uid} confidence")
        for question in asked(made.case):
            sure(line["result"]["confidence"][question], f"{uid}.{question}")
            real(line["result"]["methods"][question], f"{uid} method of {question}")
        assert len(line["responses"]) == WORKERS
        for response in line["responses"]:  # each worker's answer as given (with the server's keys)
            same(made.case.answers[LABELLED.index(uid)], response["answer"], f"jsonl: {uid} response")
    opened = by_uid[OPEN]  # every status was asked for: the open task is there, with nothing answered
    assert opened["status"] != "completed" and opened["answer"] is None and opened["result"] is None
    assert opened["responses"] == [] and opened["data"] == made.data[2]


def csv_value(cell: str, kind: str) -> Any:
    """A CSV cell read back as docs/formats.md says it is written: texts as they are, numbers as
    numbers, lists and objects as JSON."""
    if kind in ("label", "text"):
        return cell
    if kind in ("rating", "number"):
        return float(cell) if cell else None
    return json.loads(cell) if cell else None


def read_csv(made: Made, data: bytes) -> None:
    table = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    by_uid = {line["unique_id"]: line for line in table}
    assert sorted(by_uid) == [*LABELLED, OPEN]
    kind = made.case.type
    for name in asked(made.case):  # a column per question a task asks, for_each copies included
        assert {f"answer.{name}", f"confidence.{name}", f"method.{name}"} <= set(table[0]), name
    answers = {uid: {q: csv_value(by_uid[uid][f"answer.{q}"], kind) for q in asked(made.case)} for uid in LABELLED}
    check_answers(made, answers, "csv")
    for uid in LABELLED:
        line = by_uid[uid]
        for question in asked(made.case):
            sure(float(line[f"confidence.{question}"]), f"csv: {uid}.{question}")
            real(line[f"method.{question}"], f"csv: {uid} method of {question}")
        responses = json.loads(line["responses"])
        assert line["response_count"] == str(WORKERS) and len(responses) == WORKERS
        for response in responses:  # each worker's answer as given, comments and all
            same(made.case.answers[LABELLED.index(uid)], response["answer"], f"csv: {uid} response")
        for field_name, value in made.data[LABELLED.index(uid)].items():  # fields as written: JSON when not text
            cell = line[f"data.{field_name}"]
            assert (cell if isinstance(value, str) else json.loads(cell)) == value, field_name
    opened = by_uid[OPEN]
    assert opened["response_count"] == "0" and opened["confidence"] == ""
    assert all(opened[f"answer.{q}"] == "" for q in asked(made.case))


def parquet_value(value: Any, kind: str) -> Any:
    """A Parquet ``answer`` member: typed for label, labels, text, rating and number, else JSON text."""
    if kind in ("label", "labels", "text", "rating", "number") or value is None:
        return value
    assert isinstance(value, str), f"JSON text expected, got {value!r}"
    return json.loads(value)


def read_parquet(made: Made, data: bytes) -> None:
    table = pq.read_table(io.BytesIO(data))
    answer_members = [f.name for f in table.schema.field("answer").type]
    assert answer_members == asked(made.case)  # a member per question a task asks, for_each copies included
    rows = table.to_pylist()
    by_uid = {row["unique_id"]: row for row in rows}
    assert sorted(by_uid) == [*LABELLED, OPEN]
    kind = made.case.type
    answers = {uid: {q: parquet_value(by_uid[uid]["answer"][q], kind) for q in asked(made.case)} for uid in LABELLED}
    check_answers(made, answers, "parquet")
    for uid in LABELLED:
        row = by_uid[uid]
        sure(row["confidence"], f"parquet: {uid}")
        for question in asked(made.case):
            sure(row["confidences"][question], f"parquet: {uid}.{question}")
            real(row["methods"][question], f"parquet: {uid} method of {question}")
        assert len(row["responses"]) == WORKERS
        for response in row["responses"]:  # each response's answer in the same typed struct
            given = {q: parquet_value(response["answer"][q], kind) for q in made.case.answers[0]}
            same(made.case.answers[LABELLED.index(uid)], given, f"parquet: {uid} response")
        for field_name, value in made.data[LABELLED.index(uid)].items():  # conversations, responses: JSON text
            stored = row["data"][field_name]
            assert (stored if isinstance(value, str) else json.loads(real(stored, field_name))) == value
        same(made.case.final[LABELLED.index(uid)], json.loads(row["result"])["answer"], f"parquet: {uid} result")
    opened = by_uid[OPEN]
    assert opened["answer"] is None and opened["result"] is None and opened["responses"] == []


def read_label_studio(made: Made, data: bytes) -> None:
    listed = json.loads(data)
    by_uid = {task["meta"]["truthset"]["unique_id"]: task for task in listed}
    assert sorted(by_uid) == [*LABELLED, OPEN]  # Label Studio lists every task it is given
    for uid, expected in zip(LABELLED, made.case.label_studio, strict=True):
        task = by_uid[uid]
        assert task["data"] == made.data[LABELLED.index(uid)]
        (prediction,) = task["predictions"]
        sure(prediction["score"], f"label_studio: {uid} score")
        results = prediction["result"]
        assert len(results) == len(expected), results
        for item, (from_name, kind, value) in zip(results, expected, strict=True):
            where = f"label_studio: {uid} {from_name}"
            value = dict(value)
            to_name = value.pop("_to", None)
            assert (item["from_name"], item["type"]) == (from_name, kind), where
            same(value, real(item["value"], where), where)
            if to_name is not None:
                assert item["to_name"] == to_name, where
            sure(item["score"], where)
            if kind in ("rectanglelabels", "polygonlabels"):
                assert item["original_width"] > 0 and item["original_height"] > 0
        assert len(task["annotations"]) == WORKERS
        extra = made.case.annotated[LABELLED.index(uid)]
        wanted = {(i["from_name"], json.dumps(i["value"], sort_keys=True)) for i in results}
        wanted |= {(name, json.dumps(value, sort_keys=True)) for name, _, value in extra}
        for annotation in task["annotations"]:  # each response: the same items (and its comments), no score
            given = {(i["from_name"], json.dumps(i["value"], sort_keys=True)) for i in annotation["result"]}
            assert wanted <= given, wanted - given
    opened = by_uid[OPEN]
    assert opened["annotations"] == [] and opened["predictions"] == []  # no result: no prediction


# --- images: COCO, YOLO, VOC -----------------------------------------------------------------------


def shapes_of(made: Made) -> list[tuple[str, list[dict[str, Any]], tuple[int, int]]]:
    """(unique_id, final shapes, image size) of each labelled task."""
    sizes = [(image.width, image.height) for image in (d["photo"] for d in made.case.data)]
    question = asked(made.case)[0]
    return [
        (uid, final[question], sizes[i]) for i, (uid, final) in enumerate(zip(LABELLED, made.case.final, strict=True))
    ]


def bbox(shape: dict[str, Any]) -> list[float]:
    if "points" not in shape:
        return [shape["x"], shape["y"], shape["width"], shape["height"]]
    xs, ys = [p[0] for p in shape["points"]], [p[1] for p in shape["points"]]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def labels_of(made: Made) -> list[str]:
    return made.case.spec["questions"][0]["labels"]


def read_coco(made: Made, data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "coco.json"
    path.write_bytes(data)
    dataset = COCO(str(path))
    assert [c["name"] for c in dataset.loadCats(dataset.getCatIds())] == labels_of(made)
    images = {image["unique_id"]: image for image in dataset.loadImgs(dataset.getImgIds())}
    assert sorted(images) == list(LABELLED)  # a task with nothing to write is left out
    for uid, shapes, (width, height) in shapes_of(made):
        image = images[uid]
        assert (image["width"], image["height"]) == (width, height) and image["task_id"] == made.ids[uid]
        found = dataset.loadAnns(dataset.getAnnIds(imgIds=[image["id"]]))
        assert len(found) == len(shapes)
        for shape, annotation in zip(shapes, sorted(found, key=lambda a: a["id"]), strict=True):
            where = f"coco: {uid} {shape['label']}"
            assert dataset.loadCats(annotation["category_id"])[0]["name"] == shape["label"], where
            same(bbox(shape), annotation["bbox"], where)
            sure(annotation["score"], where)
            if "points" in shape:
                assert annotation["segmentation"] == [[c for p in shape["points"] for c in p]], where
                assert dataset.annToMask(annotation).sum() > 0, where


def read_yolo(made: Made, data: bytes) -> None:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    assert "data.yaml" in names
    yaml = archive.read("data.yaml").decode()
    classes = labels_of(made)
    assert all(f"  {i}: {json.dumps(label)}" in yaml for i, label in enumerate(classes)), yaml
    labelled_ids = {made.ids[uid] for uid in LABELLED}
    assert {n.split("/")[1].rsplit(".", 1)[0] for n in names if n.startswith("labels/")} == labelled_ids
    assert {n.split("/")[1].rsplit(".", 1)[0] for n in names if n.startswith("images/")} == labelled_ids
    for uid, shapes, (width, height) in shapes_of(made):
        lines = archive.read(f"labels/{made.ids[uid]}.txt").decode().splitlines()
        assert len(lines) == len(shapes)
        for shape, line in zip(shapes, lines, strict=True):
            number, *values = line.split()
            assert classes[int(number)] == shape["label"]
            if "points" in shape:
                wanted = [c / size for x, y in shape["points"] for c, size in ((x, width), (y, height))]
            else:
                x, y, w, h = bbox(shape)
                wanted = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
            assert [float(v) for v in values] == pytest.approx(wanted, abs=1e-6), line


def read_voc(made: Made, data: bytes) -> None:
    archive = zipfile.ZipFile(io.BytesIO(data))
    listed = archive.read("ImageSets/Main/default.txt").decode().split()
    assert sorted(listed) == sorted(made.ids[uid] for uid in LABELLED)  # the open task is left out
    assert archive.read("labelmap.txt").decode().split("\n")[:-1] == labels_of(made)
    for uid, shapes, (width, height) in shapes_of(made):
        root = ET.fromstring(archive.read(f"Annotations/{made.ids[uid]}.xml"))
        assert (int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0)) == (width, height)
        assert f"JPEGImages/{root.findtext('filename')}" in archive.namelist()
        objects = root.findall("object")
        assert len(objects) == len(shapes)
        for shape, found in zip(shapes, objects, strict=True):
            assert found.findtext("name") == shape["label"]
            x, y, w, h = bbox(shape)
            corners = [int(found.findtext(f"bndbox/{k}") or 0) for k in ("xmin", "ymin", "xmax", "ymax")]
            assert corners == [round(x) + 1, round(y) + 1, min(width, round(x + w)), min(height, round(y + h))]


# --- spans: CoNLL, spaCy, spaCy JSON ---------------------------------------------------------------


def documents_of(made: Made) -> list[tuple[str, int | None, str, list[tuple[str, str]]]]:
    """(unique_id, candidate, text, [(entity text, label)]) of each document the export holds: each
    labelled task's text, or each candidate's (for_each) whose final answer is there."""
    found = []
    for uid, data, final in zip(LABELLED, made.data[:2], made.case.final, strict=True):
        for question, spans in final.items():
            candidate = int(question.rsplit("-", 1)[1]) if "-" in question else None
            text = data["text"] if candidate is None else data["answers"][candidate]
            found.append((uid, candidate, text, [(text[s["start"] : s["end"]], s["label"]) for s in spans]))
    return found


def read_conll(made: Made, data: bytes) -> None:
    written = data.decode()
    docs = list(conll_ner_to_docs(written, n_sents=0, no_print=True))
    wanted = documents_of(made)
    assert written.count("-DOCSTART-") == len(docs) == len(wanted)  # the open task has no document
    for doc, (uid, _, text, entities) in zip(docs, wanted, strict=True):
        assert [token.text for token in doc] == TOKEN.findall(text), uid  # the documented tokens
        assert [(e.text, e.label_) for e in doc.ents] == entities, uid


def read_spacy(made: Made, data: bytes) -> None:
    archive = zipfile.ZipFile(io.BytesIO(data))
    nlp = spacy.blank("en")
    docs = [
        doc
        for name in sorted(archive.namelist())
        for doc in DocBin().from_bytes(archive.read(name)).get_docs(nlp.vocab)
    ]
    wanted = documents_of(made)
    assert len(docs) == len(wanted)  # the open task has no Doc
    group = made.case.spec["questions"][0]["name"]
    for doc, (uid, candidate, text, entities) in zip(docs, wanted, strict=True):
        assert doc.text == text and doc.user_data["task_id"] == made.ids[uid]
        assert doc.user_data["unique_id"] == uid and doc.user_data["candidate"] == candidate
        assert [(e.text, e.label_) for e in doc.ents] == entities
        spans = doc.spans[group]
        assert [(s.text, s.label_) for s in spans] == entities
        scores = spans.attrs["scores"]
        assert len(scores) == len(entities) and all(sure(s, f"spacy: {uid} span") for s in scores)
        for value in doc.user_data["confidence"].values():
            sure(value, f"spacy: {uid} confidence")


def read_spacy_json(made: Made, data: bytes) -> None:
    listed = json.loads(data)
    wanted = documents_of(made)
    assert len(listed) == len(wanted)  # the open task has no entry
    for entry, (uid, candidate, text, entities) in zip(listed, wanted, strict=True):
        assert (entry["task_id"], entry["unique_id"], entry["candidate"]) == (made.ids[uid], uid, candidate)
        (paragraph,) = entry["paragraphs"]
        assert paragraph["raw"] == text
        assert [(text[s:e], label) for s, e, label in paragraph["entities"]] == entities
    docs = list(json_to_docs(listed))  # spaCy's own reader of the format (spacy convert --converter json)
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [entities for *_, entities in wanted]


# --- preferences ----------------------------------------------------------------------------------


def read_preferences(made: Made, data: bytes) -> None:
    pairs = [json.loads(line) for line in data.decode().splitlines()]
    question = asked(made.case)[0]
    wanted = []
    for uid, final in zip(LABELLED, made.case.final, strict=True):
        answer = final[question]
        if isinstance(answer, int):  # pairwise: the winner against the other
            wanted.append((uid, answer, 1 - answer))
        else:  # an order: the best against each of the others
            wanted.extend((uid, answer[0], other) for other in answer[1:])
    assert [(made.unique_id(p["task_id"]), p["chosen_index"], p["rejected_index"]) for p in pairs] == wanted
    assert OPEN not in {p["unique_id"] for p in pairs}  # no answer: no preference
    for pair, (uid, chosen, rejected) in zip(pairs, wanted, strict=True):
        data_of = made.data[LABELLED.index(uid)]
        candidates = data_of["answers"]
        if "chat" in data_of:  # TRL's conversational form
            assert pair["prompt"] == data_of["chat"]
            assert pair["chosen"] == [{"role": "assistant", "content": candidates[chosen]}]
            assert pair["rejected"] == [{"role": "assistant", "content": candidates[rejected]}]
        else:  # the standard form: three strings
            assert (pair["prompt"], pair["chosen"], pair["rejected"]) == (
                data_of["prompt"],
                candidates[chosen],
                candidates[rejected],
            )
        assert pair["question"] == question and pair["unique_id"] == uid
        sure(pair["confidence"], f"preferences: {uid}")


READERS: dict[str, Callable[..., None]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
    "label_studio": read_label_studio,
    "coco": read_coco,
    "yolo": read_yolo,
    "voc": read_voc,
    "conll": read_conll,
    "spacy": read_spacy,
    "spacy_json": read_spacy_json,
    "preferences": read_preferences,
}


def test_the_matrix_covers_every_format_and_question_type() -> None:
    """A new format or question type joins the sweep (or this fails)."""
    from truthset import questions

    assert set(READERS) == set(ALL_FORMATS)
    assert {case.type for case in CASES} == set(questions.names())
    assert {case.type for case in CASES if "for_each" in case.name} >= {"label", "rubric", "spans"}


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' (see test_coco)
@pytest.mark.parametrize(("name", "fmt"), _combinations(accepted=True))
def test_every_labelled_answer_is_exported_with_its_value(
    org: Org, labelled: Callable, upload: Callable, media_dir: Path, tmp_path: Path, name: str, fmt: str
) -> None:
    made = make(org, labelled, upload, BY_NAME[name])
    data = export_file(org, made, fmt, media_dir)
    reader = READERS[fmt]
    if fmt == "coco":
        reader(made, data, tmp_path)
    else:
        reader(made, data)


@pytest.mark.parametrize(("name", "fmt"), _combinations(accepted=False))
def test_a_format_refuses_a_question_type_it_cannot_write(org: Org, name: str, fmt: str) -> None:
    """An export job of such a combination is refused (InvalidInput: a 422) before it is queued,
    naming the format, the types it writes and the questions the spec asks, with their types."""
    case = BY_NAME[name]
    project = org.make_project(spec=case.spec)
    with pytest.raises(InvalidInput) as refused:
        export_jobs.start_export(org.db, org.owner.principal, project["id"], fmt, export.ExportFilter())
    message = str(refused.value)
    assert message.startswith(f"{fmt}: "), message
    assert all(kind in message for kind in TRAINING[fmt]), message  # what the format writes
    question = case.spec["questions"][0]["name"]
    assert f"{question} ({case.type})" in message, message  # and what the spec asks instead
    assert refused.value.details["format"] == fmt
    assert refused.value.details["questions"] == [question]
    assert refused.value.details["question_types"] == {question: case.type}
    with org.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.jobs)).scalar_one() == 0
