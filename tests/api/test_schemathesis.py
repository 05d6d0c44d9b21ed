"""schemathesis against the app's own OpenAPI document: no 5xx, and every answer is documented.

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests, valid
(positive) and invalid (negative) per the schema, sent in-process to the app, authenticated with
the owner's API key of an organization seeded with a project, batches, tasks, leases, a member,
a key and an image (``build_world``). Half the requests name those real objects in their path
(so bodies and queries reach the services), half use generated ids (so the 404 paths run too).
Generation is derandomized (a run is reproducible) and not shrunk (a failure shows the request
as sent); every operation runs, then the test fails once listing each failing operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from truthset.api import create_app
from truthset.config import Settings

from .helpers import API, Org, World, build_world

#: Examples per operation, generation mode and kind of path. Bounded for the suite's time: at 25 the
#: two runs (SQLite, PostgreSQL) took 424 of the suite's ~1,760 worker-seconds; at 12 about half that.
#: Generation is derandomized: every run sends the same requests.
MAX_EXAMPLES = 12
#: negative_data_rejection is left out on purpose: it blames pydantic's lax parsing (0 for a
#: boolean, 5.0 for an integer) and query values that serialize to nothing (an empty list).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
#: Operations whose input is checked beyond what their schema states (task data and answers against
#: the project's spec, a quality policy's question names against the spec, a question type's own
#: rules, free-form JSON's depth and 64-bit integers, the
#: bytes of an image, a gold answer against the spec, a gold CSV's header and lines, a review's reason
#: and fixed answer, which its verdict asks for; the current password of a password change; the lines of a
#: bulk import, an import file's format and contents; a sorted task list's cursor, which must be one the server
#: gave for that sort; a bulk action's ids or filter, exactly one; an export format the project's spec can be
#: written in, e.g. CoNLL needs a spans question; a deletion's confirm, the project's name): a schema-valid
#: request may rightly get a 422. Every other operation must
#: accept every schema-valid request (positive_data_acceptance).
CONTENT_CHECKED = {
    "list_tasks",
    "list_queue",  # its cursor must be one the server gave (a task's priority, queue rank and id)
    "bulk_task_action",
    "export_project",
    "create_export",
    "create_task",
    "import_tasks",
    "start_import",
    "submit_response",
    "create_project",
    "validate_spec",
    "update_project",
    "create_batch",
    "upload_media",
    "review_task",
    "mark_gold",
    "import_gold",
    "upload_predictions",  # each prediction's task, question and answer against the project and its spec
    "train_model",  # the question must be a label or labels question of the project's spec
    "create_webhook",  # the URL must pass the network guard (a schema-valid URL may name a private address)
    "start_llm_labeling",  # the question must be in the spec, the base_url must pass the network guard
    "start_model_server_predictions",  # the same: the question in the spec, the base_url through the guard
    "update_webhook",
    "change_my_password",
    "delete_project_with_data",  # confirm must repeat the project's name
}


def _checks(operation_id: str) -> list[Any]:
    return CHECKS if operation_id in CONTENT_CHECKED else [*CHECKS, positive_data_acceptance]


def _path_ids(world: World) -> dict[str, str]:
    """The seeded object each path parameter names."""
    return {
        "project_id": world.project["id"],
        "batch_id": world.batch["id"],
        "task_id": world.answer_task["id"],
        "assignment_id": world.skip_assignment["id"],
        "member_id": world.member.id,
        "key_id": world.member_key["id"],
        "media_id": world.media["id"],
        "worker_id": world.worker.worker_id,
        "job_id": world.extra["job"]["id"],
        "webhook_id": world.extra["webhook"]["id"],
        "delivery_id": world.extra["delivery"],
    }


def _run_operation(operation: Any, world: World, headers: dict[str, str]) -> None:
    checks = _checks(operation.definition.raw["operationId"])
    ids = _path_ids(world)
    fixed = {parameter.name: ids[parameter.name] for parameter in operation.path_parameters}
    strategies = [
        operation.as_strategy(generation_mode=mode, path_parameters=path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for path in ((fixed, None) if fixed else (None,))
    ]

    @settings(
        max_examples=MAX_EXAMPLES * len(strategies),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=["explicit", "generate"],
    )
    @given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


def test_schemathesis_finds_no_server_error_and_only_documented_answers(org: Org, tmp_path: Path) -> None:
    app_settings = Settings(data_dir=tmp_path / "data")
    world = build_world(org, app_settings)
    app = create_app(app_settings, db=org.db)
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", app)
    headers = {"Authorization": f"Bearer {org.owner.api_key}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _run_operation(operation, world, headers)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its failures
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
