"""The official ``scaleapi`` client, unchanged, against a real ``truthset serve`` (docs/scale.md).

The test reads like the client's README: create a project and a batch, create tasks of every
supported type, finalize the batch; annotators answer through truthset's own API; the callbacks
arrive at a receiver on 127.0.0.1; get_task, get_tasks and get_tasks_count read the results.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import scaleapi
from scaleapi.batches import BatchStatus
from scaleapi.exceptions import ScaleDuplicateResource, ScaleInvalidRequest, ScaleResourceNotFound, ScaleUnauthorized
from scaleapi.tasks import TaskReviewStatus, TaskStatus, TaskType

from .conftest import Live, Receiver

IMAGE = "https://example.com/street.jpg"

# Each supported type: the project params, the task params, and an annotator's answer (truthset's shape).
CASES: dict[TaskType, dict[str, Any]] = {
    TaskType.Categorization: {
        "task": {"attachment": "The service was quick and kind.", "categories": ["positive", "negative"]},
        "answer": {"category": "positive"},
        "response": {"category": "positive"},
    },
    TaskType.TextCollection: {
        "task": {
            "attachments": [{"type": "text", "content": "Bonjour tout le monde"}],
            "fields": [{"type": "text", "field_id": "translation", "title": "Translate to English"}],
        },
        "answer": {"translation": "Hello everyone"},
        "response": {"annotations": {"translation": "Hello everyone"}},
    },
    TaskType.NamedEntityRecognition: {
        "task": {"text": "Ada Lovelace lived in London.", "labels": [{"name": "PER"}, {"name": "LOC"}]},
        "answer": {"entities": [{"start": 0, "end": 12, "label": "PER"}, {"start": 22, "end": 28, "label": "LOC"}]},
        "response": {
            "annotations": [
                {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"},
                {"start": 22, "end": 28, "label": "LOC", "text": "London"},
            ],
            "relationships": [],
        },
    },
    TaskType.ImageAnnotation: {
        "task": {
            "attachment": IMAGE,
            "geometries": {"box": {"objects_to_annotate": ["car"]}, "polygon": {"objects_to_annotate": ["road"]}},
        },
        "answer": {
            "box": [{"label": "car", "x": 10, "y": 20, "width": 30, "height": 40}],
            "polygon": [{"label": "road", "points": [[0, 0], [100, 0], [100, 50]]}],
        },
        "response": {
            "annotations": [
                {"type": "box", "label": "car", "left": 10.0, "top": 20.0, "width": 30.0, "height": 40.0},
                {
                    "type": "polygon",
                    "label": "road",
                    "vertices": [{"x": 0.0, "y": 0.0}, {"x": 100.0, "y": 0.0}, {"x": 100.0, "y": 50.0}],
                },
            ]
        },
    },
    TaskType.Comparison: {
        "task": {"attachments": ["Paris is in France.", "Paris is in Texas."], "choices": ["first", "second"]},
        "answer": {"choice": "first"},
        "response": {"choice": "first"},
    },
    TaskType.DocumentTranscription: {
        "task": {"attachment": "https://example.com/receipt.png"},
        "answer": {"transcription": "TOTAL 12.50"},
        "response": {"annotations": [{"page": 0, "label": "transcription", "text": "TOTAL 12.50"}]},
    },
}


def _without_ids(response: dict[str, Any]) -> dict[str, Any]:
    """The response without its annotations' ids (Scale gives each one a ``uuid`` or an ``id``),
    after checking each is a UUID."""
    annotations = response.get("annotations")
    if not isinstance(annotations, list):
        return response
    stripped = []
    for annotation in annotations:
        ids = {k: annotation[k] for k in ("uuid", "id") if k in annotation}
        assert len(ids) == 1 and all(str(uuid.UUID(v)) == v for v in ids.values()), annotation
        stripped.append({k: v for k, v in annotation.items() if k not in ids})
    return {**response, "annotations": stripped}


def _answer_everything(live: Live, project_id: str, answers: dict[str, dict[str, Any]]) -> list[str]:
    """The annotator answers every task waiting in the project through truthset's own API."""
    answered = []
    with live.api(live.annotator_key) as api:
        while (lease := api.post(f"/projects/{project_id}/next")).status_code == 200:
            assignment = lease.json()
            task_id = assignment["task"]["id"]
            submitted = api.post(
                f"/tasks/{task_id}/responses",
                json={"answer": answers[task_id], "assignment_id": assignment["id"]},
            )
            assert submitted.status_code in (200, 201), submitted.text
            answered.append(task_id)
        assert lease.status_code == 204, lease.text
    return answered


def _callback_outcome(client: scaleapi.ScaleClient, task_id: str) -> bool | None:
    """``callback_succeeded`` once the job recorded a successful attempt (it writes it just after the
    receiver answered, so the test may look first): polled within a deadline, not timed."""
    deadline = time.monotonic() + 30
    while not (outcome := client.get_task(task_id).as_dict().get("callback_succeeded")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return outcome


@pytest.fixture
def client(live: Live) -> scaleapi.ScaleClient:
    return scaleapi.ScaleClient(live.owner_key, api_instance_url=f"{live.url}/scale/v1")


def test_the_readme_flow_for_every_supported_type(client: scaleapi.ScaleClient, live: Live, receiver: Receiver) -> None:
    for task_type, case in CASES.items():
        name = f"Project {task_type.value}"
        project = client.create_project(name, task_type, params={"instruction": f"Label the {task_type.value}"})
        assert (project.name, project.type, project.instruction) == (
            name,
            task_type.value,
            f"Label the {task_type.value}",
        )
        batch = client.create_batch(project=name, batch_name=f"batch-{task_type.value}")
        assert batch.status == "staging"

        payload = dict(
            project=name,
            batch=batch.name,
            callback_url=receiver.url,
            unique_id=f"{task_type.value}-1",
            metadata={"source": "migration"},
            tags=["first", task_type.value],
            instruction="Read it twice.",
            **case["task"],
        )
        task = client.create_task(task_type, **payload)
        # the project's instruction is appended after the task's, as Scale does
        assert task.instruction == f"Read it twice.\n\nLabel the {task_type.value}"
        assert (task.status, task.type, task.unique_id, task.tags) == (
            "pending",
            task_type.value,
            payload["unique_id"],
            ["first", task_type.value],
        )
        with pytest.raises(ScaleDuplicateResource):
            client.create_task(task_type, **payload)
        second = client.create_task(task_type, **{**payload, "unique_id": f"{task_type.value}-2", "tags": ["second"]})

        assert client.finalize_batch(batch.name).status == "in_progress"
        assert client.batch_status(batch.name) == {
            "status": "in_progress",
            "pending": 2,
            "completed": 0,
            "canceled": 0,
            "error": 0,
        }

        # the second task is canceled, its unique_id freed for a new task
        canceled = client.cancel_task(second.id, clear_unique_id=True)
        assert (canceled.status, canceled.unique_id) == ("canceled", None)

        answered = _answer_everything(live, project.as_dict()["truthset"]["project_id"], {task.id: case["answer"]})
        assert answered == [task.id]

        done = client.get_task(task.id)
        assert (done.status, done.completed_at is not None) == ("completed", True)
        assert _without_ids(done.response) == case["response"]
        assert client.get_task(task.id).response == done.response  # annotation ids are stable
        assert 0 < done.truthset["confidence"] <= 1  # truthset's confidence, in its documented extra field
        assert done.metadata == {"source": "migration"}
        assert client.get_batch(batch.name).status == "completed"
        assert [t.id for t in client.get_tasks(project_name=name, status=TaskStatus.Completed)] == [task.id]
        assert [t.id for t in client.get_tasks(batch_name=batch.name, status=TaskStatus.Canceled)] == [second.id]
        assert client.get_tasks_count(project_name=name, completed_after=done.created_at) == 1
        with pytest.raises(ScaleInvalidRequest, match="only a pending task can be canceled"):
            client.cancel_task(task.id)
        # the canceled task's unique_id is free again
        reused = client.create_task(task_type, **{**payload, "batch": None, "unique_id": f"{task_type.value}-2"})
        client.cancel_task(reused.id)

        callback = receiver.next()
        while callback["failed"]:  # the receiver fails the first POST of the test: the job runner retries
            callback = receiver.next()
        assert callback["auth"] == project.as_dict()["callback_auth_key"]
        assert callback["body"]["task"]["task_id"] == callback["body"]["task_id"] == task.id
        assert callback["body"]["status"] == "completed"
        assert callback["body"]["response"] == callback["body"]["task"]["response"] == done.response
        assert _callback_outcome(client, task.id) is True


def test_get_tasks_pages_to_the_end_with_filters_and_counts_match(client: scaleapi.ScaleClient, live: Live) -> None:
    client.create_project("Reviews", TaskType.Categorization, params={"categories": ["good", "bad"]})
    client.create_batch(project="Reviews", batch_name="reviews-1")
    made = [
        client.create_task(
            TaskType.Categorization,
            project="Reviews",
            batch="reviews-1",
            attachment=f"review number {i}",
            unique_id=f"review-{i}",
            tags=["even"] if i % 2 == 0 else ["odd"],
        )
        for i in range(7)
    ]
    listed = list(client.get_tasks(project_name="Reviews", limit=3))
    assert [t.id for t in listed] == [t.id for t in made]  # three pages of 3, 3 and 1, in creation order
    assert client.get_tasks_count(project_name="Reviews") == 7
    assert client.get_tasks_count(project_name="Reviews", tags=["even"]) == 4
    assert [t.id for t in client.get_tasks(batch_name="reviews-1", tags="odd", limit=2)] == [t.id for t in made[1::2]]
    assert client.get_tasks_count(project_name="Reviews", unique_id=["review-1", "review-2"]) == 2
    assert client.get_tasks_count(project_name="Reviews", status=TaskStatus.Completed) == 0
    assert client.get_tasks_count(project_name="Reviews", status=TaskStatus.Pending) == 7
    assert client.get_tasks_count(project_name="Reviews", task_type=TaskType.Categorization) == 7
    assert client.get_tasks_count(project_name="Reviews", review_status=[TaskReviewStatus.Accepted]) == 0
    first = made[0].as_dict()["created_at"]
    assert client.get_tasks_count(project_name="Reviews", created_after=first) == 7
    assert client.get_tasks_count(project_name="Reviews", created_before=first) == 0
    assert client.get_tasks_count(project_name="Reviews", completed_after="2020-01-01 00:00:00.000000") == 0
    assert client.get_tasks_count(project_name="Reviews", updated_after="2020-01-01T00:00:00Z") == 7

    # tags, metadata and unique_id edits
    task = made[0]
    assert client.add_task_tags(task.id, ["urgent"]).tags == ["even", "urgent"]
    assert client.delete_task_tags(task.id, ["even"]).tags == ["urgent"]
    assert client.set_task_tags(task.id, ["a", "b"]).tags == ["a", "b"]
    assert client.get_tasks_count(project_name="Reviews", tags=["a", "b"]) == 1
    assert client.set_task_metadata(task.id, {"k": 1}).metadata == {"k": 1}
    with pytest.raises(ScaleDuplicateResource):
        client.update_task_unique_id(task.id, "review-1")
    assert client.update_task_unique_id(task.id, "review-zero").unique_id == "review-zero"
    assert client.clear_task_unique_id(task.id).unique_id is None

    # projects and batches as the client lists them
    assert "Reviews" in [p.name for p in client.get_projects()]
    assert client.get_project("Reviews").params["categories"] == ["good", "bad"]
    updated = client.update_project("Reviews", instruction="Is the review good?")
    assert (updated.version, updated.instruction) == (1, "Is the review good?")
    assert [b.name for b in client.get_batches(project_name="Reviews")] == ["reviews-1"]
    assert [b.name for b in client.get_batches(project_name="Reviews", batch_status=BatchStatus.Staging)] == [
        "reviews-1"
    ]
    assert list(client.get_batches(project_name="Reviews", batch_status=BatchStatus.InProgress)) == []
    assert list(client.get_batches(project_name="Reviews", created_before="2020-01-01T00:00:00Z")) == []
    batch = client.get_batch("reviews-1")
    assert (batch.get_status()["pending"], batch.tasks_pending, batch.tasks_completed) == (7, 7, 0)

    # limited_response: only the fields the client's README lists
    limited = client.tasks(project="Reviews", limited_response=True, limit=2)
    assert (len(limited), limited.has_more) == (2, True)
    assert set(limited[0].as_dict()) <= {"task_id", "status", "metadata", "project", "otherVersion"}

    # a task named by its batch only goes to the batch's project ("you need not specify the project")
    by_batch = client.create_task(TaskType.Categorization, batch="reviews-1", attachment="one more review")
    assert (by_batch.project, by_batch.batch) == ("Reviews", "reviews-1")


def test_errors_are_the_clients_exceptions(client: scaleapi.ScaleClient, live: Live) -> None:
    wrong = scaleapi.ScaleClient("ts_not-a-key", api_instance_url=f"{live.url}/scale/v1")
    with pytest.raises(ScaleUnauthorized):
        wrong.get_projects()
    with pytest.raises(ScaleInvalidRequest, match="task type 'lidarannotation' is not supported"):
        client.create_task(TaskType.LidarAnnotation, project="Reviews", attachments=[])
    client.create_project("Boxes", TaskType.ImageAnnotation)
    with pytest.raises(ScaleInvalidRequest, match=r"geometries\.point: is not supported"):
        client.create_task(
            TaskType.ImageAnnotation,
            project="Boxes",
            attachment=IMAGE,
            geometries={"point": {"objects_to_annotate": ["x"]}},
        )
    with pytest.raises(ScaleInvalidRequest, match="parameter 'frame_rate' is not supported"):
        client.create_task(TaskType.ImageAnnotation, project="Boxes", attachment=IMAGE, frame_rate=3)
    with pytest.raises(ScaleResourceNotFound):
        client.get_task("0" * 24)
    with pytest.raises(ScaleDuplicateResource):
        client.create_project("Boxes", TaskType.ImageAnnotation)


def test_what_is_not_supported_is_a_400_naming_it(client: scaleapi.ScaleClient) -> None:
    """Every param or type the client can send that truthset does not support: ScaleInvalidRequest."""
    client.create_project("Pairs", TaskType.Comparison)
    client.create_project("Forms", TaskType.TextCollection)
    client.create_batch(project="Pairs", batch_name="pairs-1")
    with pytest.raises(ScaleInvalidRequest, match="task type 'videoannotation' is not supported"):
        client.create_project("Videos", TaskType.VideoAnnotation)
    with pytest.raises(ScaleInvalidRequest, match="attachment_type: 'image' is not supported for comparison"):
        client.create_task(
            TaskType.Comparison, project="Pairs", attachments=["a", "b"], choices=["x", "y"], attachment_type="image"
        )
    with pytest.raises(ScaleInvalidRequest, match=r"fields\[0\]\.type: 'category' is not supported"):
        client.create_task(
            TaskType.TextCollection,
            project="Forms",
            attachments=[{"type": "text", "content": "hello"}],
            fields=[{"type": "category", "field_id": "kind", "title": "Kind", "choices": []}],
        )
    with pytest.raises(ScaleInvalidRequest, match="parameter 'responses_required' is not supported"):
        client.create_task(
            TaskType.Comparison, project="Pairs", attachments=["a", "b"], choices=["x", "y"], responses_required=3
        )
    with pytest.raises(ScaleInvalidRequest, match="batch 'pairs-1' belongs to project 'Pairs', not 'Forms'"):
        client.create_task(TaskType.TextCollection, project="Forms", batch="pairs-1", attachments=["hi"], fields=[])
    with pytest.raises(ScaleInvalidRequest, match="calibration and self-label batches are not supported"):
        client.create_batch(project="Pairs", batch_name="calibration", calibration_batch=True)
    with pytest.raises(ScaleInvalidRequest, match="batch callbacks are not supported"):
        client.create_batch(project="Pairs", batch_name="called", callback="https://example.com/hook")
    with pytest.raises(ScaleInvalidRequest, match="Rapid and Studio projects are not supported"):
        client.create_project("Rapid", TaskType.Categorization, rapid=True)
    with pytest.raises(ScaleInvalidRequest, match="limit: must be between 1 and 100"):
        client.tasks(project="Pairs", limit=101)
    with pytest.raises(ScaleInvalidRequest, match="limit: 'many' is not a whole number"):
        client.tasks(project="Pairs", limit="many")
    with pytest.raises(ScaleInvalidRequest, match="customer_review_status: 'bogus' is not one of"):
        client.tasks(project="Pairs", customer_review_status="bogus")
    with pytest.raises(ScaleInvalidRequest, match="status: 'done' is not one of"):
        client.tasks(project="Pairs", status="done")
    task = client.create_task(TaskType.Comparison, project="Pairs", attachments=["a", "b"], choices=["x", "y"])
    with pytest.raises(ScaleInvalidRequest, match="auditing through the Scale API is not supported"):
        client.audit_task(task.id, accepted=True)
    with pytest.raises(ScaleResourceNotFound, match="not supported by truthset's Scale-compatible API"):
        client.get_project_template("Forms")
