"""The examples of docs/formats.md ("Training formats") are what the writers write."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from truthset.services.formats import conll, yolo
from truthset.services.formats.images import ImageFile

DOCS = Path(__file__).parents[3] / "docs" / "formats.md"


def _block(language: str, after: str) -> str:
    text = DOCS.read_text().split(after, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", text, flags=re.S).group(1)


def _project(fields: list[dict], question: dict[str, Any]) -> dict[str, Any]:
    return {"id": "p", "name": "docs", "spec": {"fields": fields, "questions": [question]}}


def _row(data: dict[str, Any], question: str, answer: Any) -> dict[str, Any]:
    result = {"answer": {question: answer}, "confidence": {question: 0.9}}
    return {"task_id": "t1", "unique_id": None, "data": data, "answer": result["answer"], "result": result}


class _OneImage:
    """A media lookup holding one image (the documented 200 x 100 one)."""

    def __init__(self, path: Path) -> None:
        self.image = ImageFile(path, 200, 100, ".png")

    def load(self, references: Iterable[str]) -> None:
        pass

    def get(self, reference: str) -> ImageFile | None:
        return self.image


def test_the_conll_example() -> None:
    text = "Ada Lovelace visited New York."
    spans = [{"start": 0, "end": 12, "label": "PER"}, {"start": 21, "end": 29, "label": "New York"}]
    question = {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "New York"]}
    project = _project([{"name": "text", "type": "text"}], question)
    out = io.BytesIO()
    conll.WRITER.write(project, iter([_row({"text": text}, "entities", spans)]), out)
    assert out.getvalue().decode() == _block("conll", "### CoNLL")


def test_the_yolo_example(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    Image.new("RGB", (200, 100)).save(path)
    question = {"name": "objects", "type": "boxes", "field": "photo", "labels": ["car"]}
    project = _project([{"name": "photo", "type": "image"}], question)
    box = {"label": "car", "x": 10, "y": 20, "width": 50, "height": 40, "confidence": 0.9}
    out = io.BytesIO()
    yolo.WRITER.write(project, iter([_row({"photo": "media:x"}, "objects", [box])]), out, media=_OneImage(path))
    labels = zipfile.ZipFile(io.BytesIO(out.getvalue())).read("labels/t1.txt").decode()
    assert labels == _block("", "### YOLO")
