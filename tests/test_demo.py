"""The demo projects' data: every spec and task is valid, the data is small and every file's license is stated."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from truthset import demo
from truthset.questions import CompiledSpec, Spec

DATA = resources.files("truthset.demo").joinpath("data")
FAKE_REF = "media:0123456789abcdef01234567"


def _installed_or_skip(project: demo.DemoProject) -> None:
    missing = project.missing_types(demo.installed_types())
    if missing:
        pytest.skip(f"{project.name} asks {', '.join(missing)}, not installed here (the demo skips it too)")


@pytest.mark.parametrize("project", demo.PROJECTS, ids=lambda p: p.name)
def test_every_spec_and_task_is_valid(project: demo.DemoProject) -> None:
    _installed_or_skip(project)
    Spec.model_validate(project.spec)  # as a new project's spec: every rule applies
    compiled = CompiledSpec(project.spec)
    tasks = project.tasks(dict.fromkeys(project.images(), FAKE_REF))
    assert 10 <= len(tasks) <= 30
    assert len({task["unique_id"] for task in tasks}) == len(tasks)
    for task in tasks:
        compiled.validate_data(task["data"])
    assert project.instructions.startswith("# ")  # Markdown, with a title


def test_every_kind_of_work_has_a_project() -> None:
    asked = set().union(*(project.question_types() for project in demo.PROJECTS))
    assert asked >= {"label", "labels", "rating", "text", "number", "rubric", "ranking", "boxes", "polygons", "spans"}
    assert len({project.name for project in demo.PROJECTS}) == len(demo.PROJECTS)
    # the e2e tests label in the first demo project: its keys and questions are theirs
    assert [q["name"] for q in demo.PROJECTS[0].spec["questions"]] == ["sentiment", "topics", "concreteness", "summary"]


def test_only_a_type_still_being_merged_may_be_missing() -> None:
    """A missing type skips its project; today only ``spans`` may be missing (merged separately)."""
    missing = {name for project in demo.PROJECTS for name in project.missing_types(demo.installed_types())}
    assert missing <= {"spans"}


def test_images_are_shipped_small_and_every_file_has_its_license() -> None:
    readme = DATA.joinpath("README.md").read_text()
    images = json.loads(DATA.joinpath("images.json").read_text())
    files = {item["file"] for section in images.values() for item in section}
    for file in files:
        blob = demo.data_file(file)
        assert blob.startswith(b"\xff\xd8\xff")  # JPEG, which the media store accepts
        assert len(blob) < 200_000
    for item in images["photos"] + images["counting"]:
        assert item["license"] and item["creator"]
    for photo in images["photos"]:
        assert photo["file"].removeprefix("images/") in readme
    total = sum(len(demo.data_file(f)) for f in files) + sum(
        len(DATA.joinpath(name).read_bytes()) for name in ("speeches.json", "chats.json", "images.json")
    )
    assert total < 3_000_000  # a few MB at most in the wheel


def test_counting_answers_that_are_known_are_recorded() -> None:
    counting = next(p for p in demo.PROJECTS if p.question_types() == {"number"})
    known = [task["metadata"]["expected"] for task in counting.tasks() if "expected" in task["metadata"]]
    assert known == [24, 6, 12, 4, 6, 24, 6, 12, 3, 4]


def test_the_guide_lists_every_demo_project() -> None:
    guide = (Path(__file__).parent.parent / "docs" / "guide.md").read_text().split("## The demo", 1)[1]
    assert [p.name for p in demo.PROJECTS if p.name not in guide] == []


def test_ordering_tasks_know_their_right_order() -> None:
    ordering = next(p for p in demo.PROJECTS if p.name == "Demo: oldest to newest")
    for task in ordering.tasks():
        years, expected = task["metadata"]["years"], task["metadata"]["expected_order"]
        assert len(set(years)) == 4 and [years[i] for i in expected] == sorted(years)
        assert all(set(item) == {"content"} for item in task["data"]["excerpts"])  # nothing gives the year away
