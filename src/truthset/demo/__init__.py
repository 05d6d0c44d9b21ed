"""The demo projects: one per kind of work, on real, freely licensed sample data shipped here.

`truthset demo` creates each project once (by name), uploads its images to the media store (by
content, so once) and imports its tasks (by ``unique_id``, so once). The data, its sources and
licenses are in ``data/`` (``data/README.md``); ``scripts/demo_data.py`` rebuilds it.

Adding a project is one :class:`DemoProject` entry in :data:`PROJECTS`. A project whose question
types are not installed is skipped with a note (see :meth:`DemoProject.missing_types`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["PROJECTS", "DemoProject", "data_file", "installed_types"]

# An image's shipped file (``images/x.jpg``) -> the value of an image field (``media:<id>``).
ImageRefs = dict[str, str]


@dataclass(frozen=True)
class DemoProject:
    name: str
    instructions: str
    spec: dict[str, Any]
    make_tasks: Callable[[ImageRefs], list[dict[str, Any]]]
    image_section: str | None = None  # the images.json section whose files the tasks show

    def question_types(self) -> set[str]:
        return {question["type"] for question in self.spec["questions"]}

    def missing_types(self, installed: set[str]) -> list[str]:
        """Question types this project asks that are not installed (then it is skipped)."""
        return sorted(self.question_types() - installed)

    def images(self) -> list[str]:
        """The shipped image files to upload (to the media store) before importing the tasks."""
        if self.image_section is None:
            return []
        return list(dict.fromkeys(item["file"] for item in _json("images.json")[self.image_section]))

    def tasks(self, refs: ImageRefs | None = None) -> list[dict[str, Any]]:
        return self.make_tasks(refs or {})


def data_file(name: str) -> bytes:
    """A shipped data file's bytes (``images/chelsea.jpg``), wherever the package is installed."""
    return resources.files(__package__).joinpath("data", *name.split("/")).read_bytes()


@cache
def _json(name: str) -> Any:
    return json.loads(data_file(name))


def installed_types() -> set[str]:
    from truthset import questions

    return set(questions.names())


def _task(unique_id: str, data: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"unique_id": unique_id, "data": data, "metadata": {"source": "demo", **metadata}, "priority": 0}


def _speech_title(excerpt: dict[str, Any]) -> str:
    return f"State of the Union, {excerpt['year']}: {excerpt['president']}"


def _speech_metadata(excerpt: dict[str, Any]) -> dict[str, Any]:
    return {key: excerpt[key] for key in ("year", "president", "party", "source")}


# --- text classification: State of the Union excerpts -------------------------------------------

SPEECH_FIELDS = [
    {"name": "speech", "type": "text", "label": "Speech"},
    {"name": "excerpt", "type": "text", "label": "Excerpt"},
]

CLASSIFY_SPEC: dict[str, Any] = {
    "fields": SPEECH_FIELDS,
    "questions": [
        {
            "name": "sentiment",
            "type": "label",
            "prompt": "What is the tone of the excerpt?",
            "options": [
                {"value": "positive", "hotkey": "1"},
                {"value": "neutral", "hotkey": "2"},
                {"value": "negative", "hotkey": "3"},
            ],
        },
        {
            "name": "topics",
            "type": "labels",
            "prompt": "Which subjects does it talk about?",
            "options": ["economy", "war and defence", "foreign affairs", "rights and justice", "government"],
            "required": False,
        },
        {
            "name": "concreteness",
            "type": "rating",
            "prompt": "How concrete is it?",
            "min": 1,
            "max": 5,
            "labels": {"1": "vague", "5": "facts and figures"},
        },
        {
            "name": "summary",
            "type": "text",
            "prompt": "Summarise it in one line (optional).",
            "required": False,
            "max_length": 200,
            "multiline": False,
        },
    ],
}

CLASSIFY_INSTRUCTIONS = """\
# Tone and topics

Each task is a short excerpt of a State of the Union address, the yearly message of the President
of the United States to Congress (1790 to 2021). Read it and answer four questions.

* **Tone**: *positive* (pride, hope, good news), *negative* (warning, loss, complaint) or
  *neutral* (a report, a request, a plan).
* **Subjects**: tick every subject the excerpt touches, even in passing; none is fine.
* **Concreteness**: *1* is general talk, *5* is dates, sums and named measures.
* **Summary**: optional, one line.

Keyboard: `1` `2` `3` pick the tone, `Enter` submits, `s` skips; the Keyboard panel lists every key.
"""


def _classify_tasks(_: ImageRefs) -> list[dict[str, Any]]:
    return _speech_tasks("classify", "demo-speech")


def _speech_tasks(part: str, prefix: str) -> list[dict[str, Any]]:
    """One task per excerpt of ``speeches.json``'s ``part``: the speech's title and the excerpt."""
    return [
        _task(
            f"{prefix}-{number:04d}",
            {"speech": _speech_title(excerpt), "excerpt": excerpt["text"]},
            **_speech_metadata(excerpt),
        )
        for number, excerpt in enumerate(_json("speeches.json")[part], start=1)
    ]


# --- named entities: spans on other excerpts -----------------------------------------------------

ENTITIES_SPEC: dict[str, Any] = {
    "fields": SPEECH_FIELDS,
    "questions": [
        {
            "name": "entities",
            "type": "spans",
            "field": "excerpt",
            "prompt": "Mark every person, place, organization and date.",
            "labels": ["person", "place", "organization", "date"],
        }
    ],
}

ENTITIES_INSTRUCTIONS = """\
# Named entities

Mark the names in an excerpt of a State of the Union address: select the words, then pick the
label.

* **person**: a named person or title used as a name ("Mr. Monroe", "the Sultan").
* **place**: countries, states, cities, rivers, seas ("Gibraltar", "the Mediterranean").
* **organization**: governments, parliaments, departments, companies, treaties' bodies
  ("the French Chambers", "the Navy Department", "the United Nations").
* **date**: days, months and years ("April 21st, 1832", "1883").

Mark the whole name and nothing around it (not "the" before it, not the comma after it).
"""


def _entities_tasks(_: ImageRefs) -> list[dict[str, Any]]:
    return _speech_tasks("entities", "demo-entities")


# --- ordering: four excerpts, oldest first (ranking, order mode) ---------------------------------

ORDERING_SPEC: dict[str, Any] = {
    "fields": [{"name": "excerpts", "type": "responses", "label": "Four excerpts"}],
    "questions": [
        {
            "name": "chronology",
            "type": "ranking",
            "field": "excerpts",
            "mode": "order",
            "prompt": "Put the excerpts in the order they were spoken: **oldest at the top**.",
        }
    ],
}

ORDERING_INSTRUCTIONS = """\
# Oldest to newest

Four excerpts of State of the Union addresses, each from a different quarter of the years 1790 to
2021. Put them in the order they were delivered, the oldest at the top. The words, the issues and
the spelling are the clues; the year and the President are hidden until the task is done (they are
in each task's metadata, with the right order).

Keyboard: `↑` `↓` (or `k` `j`) select an excerpt, `Shift`+`↑` `↓` (or `K` `J`) move it, `c` accepts
the order as shown; the mouse uses each row's arrows.
"""


def _ordering_tasks(_: ImageRefs) -> list[dict[str, Any]]:
    tasks = []
    for number, item in enumerate(_json("speeches.json")["ordering"], start=1):
        excerpts = item["excerpts"]
        years = [excerpt["year"] for excerpt in excerpts]
        tasks.append(
            _task(
                f"demo-order-{number:04d}",
                {"excerpts": [{"content": excerpt["text"]} for excerpt in excerpts]},
                years=years,
                presidents=[excerpt["president"] for excerpt in excerpts],
                expected_order=sorted(range(len(years)), key=years.__getitem__),
            )
        )
    return tasks


# --- object detection: boxes and polygons on photographs ----------------------------------------

SHAPE_LABELS = ["person", "animal", "vehicle", "building", "object"]

DETECTION_SPEC: dict[str, Any] = {
    "fields": [
        {"name": "photo", "type": "image", "label": "Photo"},
        {"name": "credit", "type": "text", "label": "Photo credit"},
    ],
    "questions": [
        {
            "name": "objects",
            "type": "boxes",
            "field": "photo",
            "prompt": "Draw a box around every person, animal, vehicle, building and notable object.",
            "labels": SHAPE_LABELS,
            "max_shapes": 50,
        },
        {
            "name": "outline",
            "type": "polygons",
            "field": "photo",
            "prompt": "Outline the photo's main subject (optional).",
            "labels": SHAPE_LABELS,
            "max_shapes": 5,
            "required": False,
        },
    ],
}

DETECTION_INSTRUCTIONS = """\
# Objects in photos

Photographs from 1865 to 2015: NASA, SpaceX, the Getty's open content and photographers who gave
theirs to the public domain (each task names its photo's author and license).

1. **Boxes**: draw a tight box around each person, animal, vehicle (boats, planes, rockets) and
   building, and around notable objects (a cup, a camera); give each its label. Several animals
   side by side are several boxes. Nothing to box? Leave it empty: that is an answer too.
2. **Outline** (optional): trace the main subject with a polygon, point by point.

Zoom in on small things with the zoom buttons; the Keyboard panel lists the drawing keys.
"""


def _credit(photo: dict[str, Any]) -> str:
    date = f", {photo['date']}" if photo.get("date") else ""
    return f"{photo['title']}. {photo['creator']}{date}. License: {photo['license']}."


def _detection_tasks(refs: ImageRefs) -> list[dict[str, Any]]:
    return [
        _task(
            f"demo-photo-{number:04d}",
            {"photo": refs.get(photo["file"], photo["file"]), "credit": _credit(photo)},
            file=photo["file"],
            width=photo["width"],
            height=photo["height"],
        )
        for number, photo in enumerate(_json("images.json")["photos"], start=1)
    ]


# --- counting: a number on photos and parts of photos -------------------------------------------

COUNTING_SPEC: dict[str, Any] = {
    "fields": [
        {"name": "what", "type": "text", "label": "Count"},
        {"name": "photo", "type": "image", "label": "Photo"},
        {"name": "credit", "type": "text", "label": "Photo credit"},
    ],
    "questions": [
        {
            "name": "count",
            "type": "number",
            "prompt": "How many are there in the picture?",
            "min": 0,
            "max": 200,
            "step": 1,
        }
    ],
}

COUNTING_INSTRUCTIONS = """\
# Counting

Count the things named above the picture: coins from Pompeii, the frames of Muybridge's running
cat, sheep, boats. Count only what is wholly or mostly inside the picture; a thing cut in half at
the edge counts if you can tell what it is.

Type the number and press `Enter`; `↑` and `↓` add or take one.
"""


def _counting_tasks(refs: ImageRefs) -> list[dict[str, Any]]:
    tasks = []
    for number, item in enumerate(_json("images.json")["counting"], start=1):
        known = {"expected": item["count"]} if item["count"] is not None else {}
        tasks.append(
            _task(
                f"demo-count-{number:04d}",
                {"what": item["what"], "photo": refs.get(item["file"], item["file"]), "credit": _credit(item)},
                file=item["file"],
                **known,
            )
        )
    return tasks


# --- chatbot comparison: a conversation, two replies ---------------------------------------------

CHAT_SPEC: dict[str, Any] = {
    "fields": [
        {"name": "conversation", "type": "conversation", "label": "Conversation so far"},
        {"name": "replies", "type": "responses", "label": "Candidate replies", "count": 2},
    ],
    "questions": [
        {
            "name": "preference",
            "type": "ranking",
            "field": "replies",
            "mode": "pairwise",
            "allow_tie": True,
            "strength": ["much better", "slightly better"],
            "prompt": "Which reply is better?",
        },
        {
            "name": "grade",
            "type": "rubric",
            "for_each": "replies",
            "prompt": "Grade this reply.",
            "criteria": [
                {"name": "accuracy", "description": "Are the facts and the code right?", "comment": "optional"},
                {"name": "helpfulness", "description": "Does it answer what was asked?"},
                {"name": "tone", "description": "Clear, polite, not padded?"},
            ],
        },
        {
            "name": "problems",
            "type": "spans",
            "for_each": "replies",
            "required": False,
            "prompt": "Mark what is wrong in the **worse** reply: select words, then press a label's key.",
            "labels": [
                {"value": "error", "label": "Factual or code error", "hotkey": "e"},
                {"value": "unclear", "label": "Unclear or padded", "hotkey": "u"},
            ],
        },
        {
            "name": "rewrite",
            "type": "text",
            "prompt": "Write a better reply (optional).",
            "required": False,
            "max_length": 4000,
        },
    ],
}

CHAT_INSTRUCTIONS = """\
# Chatbot comparison

Read the conversation, then the two candidate replies to its last message. Which model wrote which
is hidden, and the two are shown in a different order to each annotator.

1. **Which reply is better?** Pick one (and how much better), or call them equal.
2. **Grade each reply**, A and B: accuracy, helpfulness and tone, 1 to 5 each. Say why in a comment
   when accuracy is low.
3. **Problems** (optional): in the worse reply, mark the words that are wrong or unclear.
4. **Rewrite** (optional): the reply you wish a model had written.

These conversations and replies were written for this demo (see the data's README), one reply of
each pair deliberately weaker.
"""


def _chat_tasks(_: ImageRefs) -> list[dict[str, Any]]:
    return [
        _task(f"demo-chat-{number:04d}", {"conversation": chat["conversation"], "replies": chat["replies"]})
        for number, chat in enumerate(_json("chats.json")["chats"], start=1)
    ]


PROJECTS: list[DemoProject] = [
    # First: the e2e tests label in the first demo project (tests/e2e/conftest.py).
    DemoProject("Demo: tone and topics of speeches", CLASSIFY_INSTRUCTIONS, CLASSIFY_SPEC, _classify_tasks),
    DemoProject("Demo: named entities", ENTITIES_INSTRUCTIONS, ENTITIES_SPEC, _entities_tasks),
    DemoProject("Demo: oldest to newest", ORDERING_INSTRUCTIONS, ORDERING_SPEC, _ordering_tasks),
    DemoProject("Demo: objects in photos", DETECTION_INSTRUCTIONS, DETECTION_SPEC, _detection_tasks, "photos"),
    DemoProject("Demo: counting", COUNTING_INSTRUCTIONS, COUNTING_SPEC, _counting_tasks, "counting"),
    DemoProject("Demo: chatbot comparison", CHAT_INSTRUCTIONS, CHAT_SPEC, _chat_tasks),
]
