"""Throughput and peak memory of the training-format writers, on synthetic export rows.

    .venv/bin/python benchmarks/formats/run.py [--tasks N] [--formats coco,yolo,...]

Each writer runs in a fresh subprocess that builds N export rows as the exporter yields them (one
at a time, never a list), writes them to a sink that only counts bytes, and reports tasks/s and
its peak RSS (``ru_maxrss``). Rows have three responses each and a result like the quality engine's
(boxes: 3 per image; polygons: 1; spans: 3 on a 30-word text; ranking: an order of 4). The images
are one small PNG on disk that every task names (YOLO and VOC copy it into their zip per task).
The database is not involved: this measures the writers alone (the export benchmark measures
reading the rows).
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from truthset.services.formats.images import ImageFile

FORMATS = ("coco", "yolo", "voc", "conll", "spacy", "spacy_json", "preferences", "label_studio")
TEXT = " ".join(["Ada Lovelace met Charles Babbage in London and wrote notes"] * 3)
SPANS = [
    {"start": 0, "end": 12, "label": "PER"},
    {"start": 17, "end": 32, "label": "PER"},
    {"start": 36, "end": 42, "label": "LOC"},
]
BOXES = [{"label": "car", "x": 10.0 * i, "y": 20.0, "width": 50.0, "height": 40.0, "confidence": 0.8} for i in range(3)]
POLYGON = [{"label": "road", "points": [[0, 50], [200, 50], [200, 100], [0, 100]], "confidence": 0.75}]
SPEC = {
    "fields": [
        {"name": "photo", "type": "image"},
        {"name": "text", "type": "text"},
        {"name": "answers", "type": "responses"},
    ],
    "questions": [
        {"name": "cars", "type": "boxes", "field": "photo", "labels": ["car"]},
        {"name": "people", "type": "spans", "field": "text", "labels": ["PER", "LOC"]},
        {"name": "best", "type": "ranking", "field": "answers", "mode": "order"},
    ],
}
SEGMENT_SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "roads", "type": "polygons", "field": "photo", "labels": ["road"]}],
}


class Sink:
    """A binary output that only counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass


class OneImage:
    def __init__(self, path: Path) -> None:
        self.image = ImageFile(path, 640, 480, ".png")

    def load(self, references: Iterable[str]) -> None:
        pass

    def get(self, reference: str) -> ImageFile | None:
        return self.image


def rows(n: int, segment: bool) -> Iterator[dict[str, Any]]:
    scores = {"0": 1.2, "1": 0.3, "2": -0.4, "3": -1.1}
    for i in range(n):
        answer = {"roads": POLYGON} if segment else {"cars": BOXES, "people": SPANS, "best": [0, 1, 2, 3]}
        result = {
            "answer": answer,
            "confidence": dict.fromkeys(answer, 0.8),
            "questions": {"best": {"details": {"scores": scores}}, "people": {"details": {"spans": []}}},
        }
        responses = [
            {"id": f"r{i}-{w}", "worker_id": f"w{w}", "answer": answer, "created_at": "2026-11-30T10:00:00Z"}
            for w in range(3)
        ]
        data = (
            {"photo": f"media:{i % 100}"}
            if segment
            else {"photo": f"media:{i % 100}", "text": TEXT, "answers": ["a", "b", "c", "d"]}
        )
        yield {
            "task_id": f"{i:026d}",
            "unique_id": f"task-{i}",
            "batch_id": None,
            "status": "completed",
            "data": data,
            "metadata": {},
            "answer": answer,
            "confidence": 0.8,
            "result": result,
            "completed_at": "2026-11-30T10:00:00Z",
            "responses": responses,
        }


def one(name: str, n: int, image: Path) -> dict[str, Any]:
    writer = importlib.import_module(f"truthset.services.formats.{name}").WRITER
    segment = name == "yolo"  # YOLO takes one kind of shape: measure its segment format
    project = {"id": "p", "name": "bench", "spec": SEGMENT_SPEC if segment else SPEC}
    kwargs = {"media": OneImage(image)} if getattr(writer, "needs_media", False) else {}
    if hasattr(writer, "check"):
        writer.check(project)  # loads the question types and spaCy: start-up, not writing
    sink = Sink()
    start = time.perf_counter()
    written = writer.write(project, rows(n, segment), sink, **kwargs)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "format": name,
        "tasks": written,
        "seconds": round(seconds, 2),
        "tasks_per_s": round(written / seconds),
        "mib_written": round(sink.bytes / 2**20, 1),
        "peak_rss_mib": round(peak_mib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.tasks, Path(args.image))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.png"
        Image.new("RGB", (640, 480), (90, 120, 30)).save(image)
        print(f"{'format':<14}{'tasks':>9}{'s':>8}{'tasks/s':>10}{'MiB out':>9}{'peak RSS MiB':>14}")
        for name in args.formats.split(","):
            command = [sys.executable, __file__, "--one", name, "--tasks", str(args.tasks), "--image", str(image)]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(
                f"{r['format']:<14}{r['tasks']:>9}{r['seconds']:>8}{r['tasks_per_s']:>10}"
                f"{r['mib_written']:>9}{r['peak_rss_mib']:>14}"
            )


if __name__ == "__main__":
    main()
