"""Label Studio JSON: a list of tasks with annotations (each worker's response) and a prediction
(the aggregated result), as Label Studio exports and imports them.

Each task is ``{"id", "data", "meta", "annotations", "predictions"}``: ``data`` is the task's data as
it is (an uploaded image stays ``media:<id>``, so the file imports back into truthset; Label Studio
needs a URL it can load to show it); ``annotations`` has one entry per response (``completed_by``
the worker's id, ``created_at``, ``lead_time`` in seconds, ``result``), and ``predictions`` one entry
for the final answer (``model_version`` ``truthset``, ``score`` the task's confidence, each result
item's ``score`` its question's confidence; none for a task without a result). ``meta.truthset``
keeps what Label Studio has no place for, so a round trip loses nothing: the task's id, unique_id,
batch, status, metadata and completion time, the whole result, and every response's id, worker,
time and answer as truthset stored it (with its worker's kind and name, duration, a model's
``scores``, a person's ``prefill`` and review when the export has them).

Results, one item per answer (``from_name`` the question, ``to_name`` its field, or the spec's first
field for questions on no field; a question asked ``for_each`` candidate is one question per
candidate, ``<name>-<index>``, on the responses field): ``label`` and ``labels`` -> ``choices``;
``rating`` -> ``rating``; ``number`` -> ``number``; ``text`` -> ``textarea``; ``rubric`` -> a ``rating`` per criterion
(``from_name`` ``question.criterion``), comments as ``textarea`` (``question.criterion.comment``);
``spans`` -> ``labels`` (``start``, ``end``, ``text``), one per span; ``boxes`` ->
``rectanglelabels`` and ``polygons`` -> ``polygonlabels``, coordinates in percent of the image
(with ``original_width``/``original_height``, read from the uploaded image: a task whose image is
an external URL is refused, see ``images``); ``ranking`` pairwise -> ``pairwise`` (``selected``
``left`` for candidate 0, ``right`` for 1; a tie has no Label Studio value and is kept only in
``meta``), order -> ``ranker`` (candidate indexes as strings, best first; tied candidates in index
order).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from truthset.questions import QuestionConfig
from truthset.questions._registry import question_text
from truthset.services.formats._common import blocks, confidence, final_answer, spec_of
from truthset.services.formats._shapes import SHAPE_TYPES
from truthset.services.formats.images import ImageFile, MediaFiles, image_references, require_image, require_media

NAME = "label_studio"


class LabelStudioWriter:
    name = NAME
    media_type = "application/json"
    extension = "json"
    needs_media = True

    def check(self, project: dict[str, Any]) -> None:
        spec_of(project)  # every project can be written: each question type has a mapping

    def write(
        self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO, *, media: MediaFiles | None = None
    ) -> int:
        spec = spec_of(project)
        questions = spec.questions
        first_field = spec.fields[0].name
        image_fields = sorted({q.field for q in questions if q.type in SHAPE_TYPES})
        if image_fields:
            media = require_media(NAME, media)
        written = 0
        out.write(b"[")
        for block in blocks(rows):
            if media is not None and image_fields:
                media.load(image_references(block, image_fields))
            for row in block:
                task = _task(row, _Results(row, questions, first_field, media))
                out.write((b"," if written else b"") + orjson.dumps(task))
                written += 1
        out.write(b"]")
        return written


def _task(row: dict[str, Any], mapper: _Results) -> dict[str, Any]:
    responses = row.get("responses") or []
    return {
        "id": row["task_id"],
        "data": row["data"],
        "meta": {"truthset": _meta(row, responses)},
        "annotations": [_annotation(mapper, response) for response in responses],
        "predictions": _predictions(row, mapper),
    }


def _predictions(row: dict[str, Any], mapper: _Results) -> list[dict[str, Any]]:
    """The final answer as one prediction; none for a task without a result (not yet labelled: an
    export of every status). An empty prediction with a null score would import into Label Studio
    as a pre-annotation that is not there (the task counted as predicted, its score null)."""
    if row.get("result") is None:
        return []
    final = {q.name: final_answer(row, q.name) for q in mapper.questions}
    prediction = mapper.results(final, scores=True)
    return [{"model_version": "truthset", "score": row.get("confidence"), "result": prediction}]


def _meta(row: dict[str, Any], responses: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything of the row Label Studio has no place for (the keys the row has: provenance rows
    also carry reviews, and each response its worker's kind and name, duration and review)."""
    kept = {k: row[k] for k in _TASK_KEYS if k in row}
    kept["responses"] = [{k: r[k] for k in _RESPONSE_KEYS if k in r} for r in responses]
    return kept


_TASK_KEYS = (
    "task_id",
    "unique_id",
    "batch_id",
    "status",
    "metadata",
    "completed_at",
    "updated_at",
    "confidence",
    "result",
    "review_status",
    "reviews",
)
#: Every key of a provenance export's response (docs/formats.md, JSONL), so that the round trip loses
#: none of them: ``scores`` (a model's prediction) and ``prefill`` (the prediction a person started
#: from) were once left out, and a model's scores were lost on the way through Label Studio.
_RESPONSE_KEYS = (
    "id",
    "worker_id",
    "worker_kind",
    "worker_name",
    "created_at",
    "duration_ms",
    "answer",
    "scores",
    "prefill",
    "review",
)


def _annotation(mapper: _Results, response: dict[str, Any]) -> dict[str, Any]:
    duration = response.get("duration_ms")
    return {
        "completed_by": response.get("worker_id"),
        "created_at": response.get("created_at"),
        "lead_time": duration / 1000 if isinstance(duration, int | float) else None,
        "was_cancelled": False,
        "ground_truth": False,
        "result": mapper.results(response.get("answer") or {}, scores=False),
    }


class _Results:
    """Answers of one task as Label Studio result items."""

    def __init__(
        self, row: dict[str, Any], questions: list[QuestionConfig], first_field: str, media: MediaFiles | None
    ) -> None:
        self.row = row
        self.questions = questions
        self.first_field = first_field
        self.media = media

    def image(self, field: str) -> ImageFile:
        """The task's uploaded image in ``field`` (asked only when a shape answer needs its size)."""
        return require_image(NAME, require_media(NAME, self.media), self.row, field)

    def results(self, answers: dict[str, Any], *, scores: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for question in self.questions:
            value = answers.get(question.name)
            if value is None:
                continue
            made = self._items(question, value)
            if scores:
                score = confidence(self.row, question.name)
                made = [{**item, "score": score} for item in made]
            items.extend(made)
        return [{"id": f"r{i}", **item} for i, item in enumerate(items)]

    def _items(self, question: Any, value: Any) -> list[dict[str, Any]]:
        # a question on a field names it; a copy asked for each candidate, its responses field
        to_name = getattr(question, "field", None) or question.for_each or self.first_field
        head = {"from_name": question.name, "to_name": to_name}
        kind = question.type
        if kind in ("label", "labels"):
            return [{**head, "type": "choices", "value": {"choices": value if isinstance(value, list) else [value]}}]
        if kind in ("rating", "number"):
            return [{**head, "type": kind, "value": {kind: value}}]
        if kind == "text":
            return [{**head, "type": "textarea", "value": {"text": [value]}}]
        if kind == "rubric":
            return _rubric(question, head, value)
        if kind == "spans":
            text = question_text(question, self.row["data"]) or ""  # the field's, or the candidate's
            return [_span(head, span, text) for span in value]
        if kind in SHAPE_TYPES:
            image = self.image(question.field) if value else None
            return [_shape(kind, head, shape, image) for shape in value if image is not None]
        if kind == "ranking":
            return _ranking(question, head, value)
        return []  # a plugin's question type: kept in meta.truthset only


def _rubric(question: Any, head: dict[str, Any], value: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for criterion, entry in value.items():
        name = f"{question.name}.{criterion}"
        items.append({**head, "from_name": name, "type": "rating", "value": {"rating": entry["score"]}})
        if entry.get("comment"):
            comment = {"text": [entry["comment"]]}
            items.append({**head, "from_name": f"{name}.comment", "type": "textarea", "value": comment})
    return items


def _span(head: dict[str, Any], span: dict[str, Any], text: str) -> dict[str, Any]:
    start, end = span["start"], span["end"]
    value = {"start": start, "end": end, "text": text[start:end], "labels": [span["label"]]}
    return {**head, "type": "labels", "value": value}


def _shape(kind: str, head: dict[str, Any], shape: dict[str, Any], image: ImageFile) -> dict[str, Any]:
    w, h = image.width, image.height
    size = {"original_width": w, "original_height": h, "image_rotation": 0}
    if kind == "boxes":
        value = {
            "x": 100 * shape["x"] / w,
            "y": 100 * shape["y"] / h,
            "width": 100 * shape["width"] / w,
            "height": 100 * shape["height"] / h,
            "rotation": 0,
            "rectanglelabels": [shape["label"]],
        }
        return {**head, **size, "type": "rectanglelabels", "value": value}
    points = [[100 * x / w, 100 * y / h] for x, y in shape["points"]]
    value = {"points": points, "closed": True, "polygonlabels": [shape["label"]]}
    return {**head, **size, "type": "polygonlabels", "value": value}


def _ranking(question: Any, head: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    if question.mode == "pairwise":
        winner = value["winner"] if isinstance(value, dict) else value  # a response's answer, or the final index
        if winner not in (0, 1):
            return []  # a tie
        return [{**head, "type": "pairwise", "value": {"selected": "left" if winner == 0 else "right"}}]
    order = value["order"] if isinstance(value, dict) else value
    ranked = [str(i) for entry in order for i in (entry if isinstance(entry, list) else [entry])]
    return [{**head, "type": "ranker", "value": {"ranker": {question.name: ranked}}}]


WRITER = LabelStudioWriter()
