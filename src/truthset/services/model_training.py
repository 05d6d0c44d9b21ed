"""The built-in text model: trained by a ``model.train`` job, versioned, and a worker like any other.

:func:`request_training` (managers and up) checks the question and queues a ``model.train`` job;
:func:`run_training` (its handler) does the work:

1. Training labels: per completed task, the result's answer to the question when a reviewer
   accepted or fixed it, or else when its confidence reached the question's target; per gold task,
   its known answer. Reviewed and gold answers win over confidence: a person checked them.
2. :class:`~truthset.learners.text_classifier.TextClassifier` is evaluated (cross-validated accuracy,
   the majority baseline, ECE) and fitted. Its version is a digest of the training data and settings,
   so the same data gives the same version: a second run on unchanged data says ``unchanged`` and
   stores no new row (it still predicts tasks added since).
3. The model file is written under the data directory (``models/<project>/<version>.skops``, 0600)
   and a ``project_models`` row records its SHA-256. A file is loaded only through :func:`load_model`,
   which checks that digest (the trust rule of docs/models.md).
4. Every task still waiting for people (``staged``, ``pending``) is predicted, in chunks, and the
   predictions are stored through :func:`truthset.services.predictions.upload_predictions` as model
   ``truthset-text``, version = the model's version: a model worker measured like any other. Each
   gold task it learned from gets its out-of-fold prediction from step 2 (:func:`_predict_gold`),
   so the version is graded on gold honestly.

Too few labels ends the job with a ``not_enough_data`` result naming the counts, and no row.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from truthset.config import Settings, get_settings
from truthset.domain import Principal, ReviewStatus, Role, TaskStatus
from truthset.errors import Conflict, InvalidInput, NotFound
from truthset.learners import Prediction, Task
from truthset.questions import QuestionConfig
from truthset.schemas import PredictionUpload
from truthset.services import jobs, predictions
from truthset.services.completion import completion_rules
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project, require_active
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.files import PRIVATE_FILE, make_private_dirs
from truthset.storage.ids import new_id, utcnow

if TYPE_CHECKING:  # imported where a model is trained or loaded: scikit-learn (and pandas with it)
    # is ~130 MiB of every server process's memory from start-up otherwise (benchmarks/README.md)
    from truthset.learners import text_classifier as tc

__all__ = ["KIND", "MODEL", "list_models", "load_model", "request_training", "run_training"]

KIND = "model.train"
#: The model name its predictions are stored under (the worker is ``truthset-text@<version>``).
MODEL = "truthset-text"
READY = "ready"
#: Tasks read, predicted and stored per step: one prediction upload (and its short transactions).
CHUNK = 500
_REVIEWED = frozenset({str(ReviewStatus.ACCEPTED), str(ReviewStatus.FIXED)})
_WAITING = (str(TaskStatus.STAGED), str(TaskStatus.PENDING))


# --- the API's side ----------------------------------------------------------------------------------


def request_training(db: Database, principal: Principal, project_id: str, question: str) -> dict[str, Any]:
    """Queue a ``model.train`` job for ``question`` of the project (managers and up); returns the job.

    Refused before anything is queued: 404 for a project of another organization, 403 below manager,
    422 naming ``question`` when the spec has no such text ``label``/``labels`` question. One job per
    project and question waits at a time: asking again while it waits returns it.
    """
    with db.write() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        _question(project, question)
        payload = {"project_id": project["id"], "question": question}
        key = f"{KIND}:{project['id']}:{question}"
        job = jobs.enqueue(
            conn, principal.organization_id, KIND, payload, dedupe_key=key, created_by=principal.member_id
        )
    return jobs.public(job)


def list_models(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The project's trained model versions with their metrics, newest first (managers and up)."""
    m = t.project_models
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.READ_QUALITY)
        query = repo.scoped(m, principal.organization_id).where(m.c.project_id == project_id)
        return repo.page(conn, query, m, cursor=cursor, limit=limit, descending=True)


def _question(project: dict[str, Any], name: str) -> QuestionConfig:
    """The project's ``label``/``labels`` question ``name``, or 422 naming the field."""
    found = next((q for q in compiled_spec(project).questions if q.name == name), None)
    if found is None or found.type not in ("label", "labels"):
        choices = [q.name for q in compiled_spec(project).questions if q.type in ("label", "labels")]
        raise InvalidInput(
            f"question: {name!r} is not a label or labels question of the project (it has: {', '.join(choices)})",
            details={"field": "question"},
        )
    return found


# --- loading a stored model --------------------------------------------------------------------------


def load_model(db: Database, principal: Principal, model_id: str, settings: Settings) -> tc.TextClassifier:
    """A trained model, loaded from its file only when the file's SHA-256 is the one recorded.

    The path is the row's, inside ``<data_dir>/models``: nothing outside it is ever read.
    """
    with db.read() as conn:
        row = repo.get(conn, t.project_models, principal.organization_id, model_id)
    if row is None:
        raise NotFound(f"model {model_id} not found")
    require(principal, Action.READ_QUALITY)
    from truthset.learners import text_classifier as tc  # here, not at start-up: see above

    root = (settings.data_dir / "models").resolve()
    path = (settings.data_dir / row["path"]).resolve()
    if not path.is_relative_to(root):
        raise tc.ModelFileRefused(f"{row['path']}: not under the data directory's models folder")
    return tc.load(path, row["sha256"])


# --- the job -----------------------------------------------------------------------------------------


def run_training(db: Database, context: JobContext) -> dict[str, Any]:
    """The ``model.train`` job: labels, training, the stored version, then predictions of waiting tasks."""
    settings: Settings = context.settings or get_settings()
    project_id, name = context.payload.get("project_id"), context.payload.get("question")
    if not isinstance(project_id, str) or not isinstance(name, str):
        raise JobFailed("the payload names no project_id or question")
    principal = _job_principal(db, context)
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
    try:
        require_active(project)  # an archived project takes no predictions: nothing to train for
    except Conflict as exc:
        raise JobFailed(exc.message) from exc
    question = _question(project, name)
    examples, sources = _labels(db, principal, project, name)
    context.check()
    from truthset.learners import text_classifier as tc  # here, not at start-up: see above

    classifier = tc.TextClassifier(question)
    try:
        report = classifier.evaluate(
            [e.task for e in examples], [e.label for e in examples], [e.source in VERIFIED for e in examples]
        )
    except tc.NotEnoughData as exc:
        return {"status": "not_enough_data", "question": name, "message": str(exc), "labels": sources}
    context.check()
    metrics = {**report.as_dict(), "labels": sources}
    row, created = _store(db, settings, principal, project_id, name, classifier, metrics)
    predicted = _predict_waiting(db, context, principal, project_id, classifier)
    on_gold = _predict_gold(db, principal, project_id, classifier, examples)
    return {
        "status": "trained" if created else "unchanged",
        "question": name,
        "model_id": row["id"],
        "version": row["version"],
        "model": predictions.model_name(MODEL, row["version"]),
        "metrics": row["metrics"],
        "predictions": predicted,
        "gold_predictions": on_gold,
    }


def _job_principal(db: Database, context: JobContext) -> Principal:
    """The member who asked for the training, as they are now (a manager still, not disabled); for a
    training the project's ``retrain`` policy queued (no member asked), the project's manager."""
    if context.job.get("created_by") is None and context.payload.get("trigger") == "retrain":
        return Principal(context.organization_id, "", Role.MANAGER, "")  # only the server writes payloads
    return jobs.started_by(db, context, Action.MANAGE_TASKS, "training")


#: What :func:`training_label` reads of a task.
LABEL_COLUMNS = tuple(
    t.tasks.c[name] for name in ("status", "data", "result", "gold", "review_status", "response_count")
)


def task_rows(
    db: Database,
    organization_id: str,
    project_id: str,
    statuses: tuple[str, ...],
    *columns: Any,
    changed_since: datetime | None = None,
    chunk: int = CHUNK,
) -> Iterator[Any]:
    """The project's tasks of ``statuses`` (changed after ``changed_since``, when given) in id order,
    with their id and ``columns``, read a chunk per short transaction."""
    tk = t.tasks
    after = ""
    while True:
        query = (
            repo.scoped(tk, organization_id, tk.c.id, *columns)
            .where(tk.c.project_id == project_id, tk.c.status.in_(statuses), tk.c.id > after)
            .order_by(tk.c.id)
            .limit(chunk)
        )
        if changed_since is not None:
            query = query.where(tk.c.updated_at > changed_since)
        with db.read() as conn:
            rows = conn.execute(query).all()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1].id


class Example(NamedTuple):
    """A training example: the task, its label, and where the label came from (``training_label``)."""

    task: Task
    label: Any
    source: str


#: Label sources people verified: the held-out accuracy on these alone is the honest one (a confident
#: result leaves out the hard tasks, so the model's accuracy on them flatters it).
VERIFIED = frozenset({"gold", "reviewed"})


def _labels(
    db: Database, principal: Principal, project: dict[str, Any], name: str
) -> tuple[list[Example], dict[str, int]]:
    """The examples to train on, in task id order (so the version is a function of the data), and
    how many came from each source (and how many completed tasks were left out below target)."""
    target = completion_rules(project).questions[name].target
    statuses = (str(TaskStatus.COMPLETED), str(TaskStatus.GOLD))
    examples: list[Example] = []
    sources: Counter[str] = Counter()
    for row in task_rows(db, principal.organization_id, project["id"], statuses, *LABEL_COLUMNS):
        label, source = training_label(row, name, target)
        sources[source] += 1
        if label is not None:
            examples.append(Example(Task(row.id, row.data), label, source))
    sources_kept = ("gold", "reviewed", "confident", "below_target", "auto_labeled")
    return examples, {key: sources.get(key, 0) for key in sources_kept}


def training_label(row: Any, name: str, target: float | None) -> tuple[Any, str]:
    """A task's training label for ``name`` and where it came from (None: not used)."""
    if row.status == str(TaskStatus.GOLD):
        answer = (row.gold or {}).get(name)
        return answer, "gold" if answer is not None else "no_answer"
    result = row.result or {}
    answer = (result.get("answer") or {}).get(name)
    if answer is None:
        return None, "no_answer"
    if row.review_status in _REVIEWED:
        return answer, "reviewed"
    if row.response_count == 0:
        # completed by a model with nobody's answer (auto-labeling): learning from it would teach
        # the model its own mistakes and make it look surer with each retraining
        return None, "auto_labeled"
    confidence = (result.get("confidence") or {}).get(name)
    if target is None or (confidence is not None and confidence >= target):
        return answer, "confident"
    return None, "below_target"


def _store(
    db: Database,
    settings: Settings,
    principal: Principal,
    project_id: str,
    question: str,
    classifier: tc.TextClassifier,
    metrics: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """The version's row, and whether this run made it (False: the same data trained it before)."""
    version = classifier.version
    found = _version_row(db, principal.organization_id, project_id, question, version)
    if found is not None:
        return found, False
    relative = Path("models") / project_id / f"{version}.skops"
    final = settings.data_dir / relative
    make_private_dirs(final.parent)
    part = final.with_name(f"{final.name}.{new_id()}.part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)  # 0600 before a byte is written
        os.close(fd)
        digest = classifier.save(part)
        row = {
            "id": new_id(),
            "organization_id": principal.organization_id,
            "project_id": project_id,
            "question": question,
            "version": version,
            "path": relative.as_posix(),
            "sha256": digest,
            "metrics": metrics,
            "created_at": utcnow(),
            "status": READY,
        }
        # the file takes its name inside the row's transaction: a run that loses the race for the
        # version (unique index) never replaces the winner's file, whose digest its row records
        with db.write() as conn:
            stored = repo.add(conn, t.project_models, row)
            os.replace(part, final)
        return stored, True
    except IntegrityError:
        found = _version_row(db, principal.organization_id, project_id, question, version)
        if found is None:
            raise
        return found, False
    finally:
        part.unlink(missing_ok=True)


def _version_row(
    db: Database, organization_id: str, project_id: str, question: str, version: str
) -> dict[str, Any] | None:
    m = t.project_models
    query = select(m).where(
        m.c.organization_id == organization_id,
        m.c.project_id == project_id,
        m.c.question == question,
        m.c.version == version,
    )
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def _predict_waiting(
    db: Database, context: JobContext, principal: Principal, project_id: str, classifier: tc.TextClassifier
) -> dict[str, int]:
    """Predict every task waiting for people, a chunk at a time; the upload reports' totals."""
    with db.read() as conn:
        total = _count_waiting(conn, principal.organization_id, project_id)
    totals: Counter[str] = Counter()
    chunk: list[Any] = []
    done = 0
    context.progress(0, total)
    for row in task_rows(db, principal.organization_id, project_id, _WAITING, t.tasks.c.data):
        chunk.append(row)
        if len(chunk) == CHUNK:
            totals.update(_upload(db, principal, project_id, classifier, chunk))
            done += len(chunk)
            chunk = []
            context.progress(done, total)
    if chunk:
        totals.update(_upload(db, principal, project_id, classifier, chunk))
        context.progress(done + len(chunk), total)
    return {key: totals.get(key, 0) for key in ("stored", "unchanged", "invalid")}


def _count_waiting(conn: Any, organization_id: str, project_id: str) -> int:
    tk = t.tasks
    query = select(func.count()).where(
        tk.c.organization_id == organization_id, tk.c.project_id == project_id, tk.c.status.in_(_WAITING)
    )
    return int(conn.execute(query).scalar_one())


def _upload(
    db: Database, principal: Principal, project_id: str, classifier: tc.TextClassifier, rows: list[Any]
) -> dict[str, int]:
    """Predict and store the tasks this version has not predicted yet (a repeat of the same version,
    whose scores may differ in the last digits, leaves the stored ones alone: ``unchanged``)."""
    return _store_new(
        db,
        principal,
        project_id,
        classifier.version,
        {row.id: row for row in rows},
        lambda todo: classifier.predict([Task(row.id, row.data) for row in todo]),
    )


def _predict_gold(
    db: Database, principal: Principal, project_id: str, classifier: tc.TextClassifier, examples: list[Example]
) -> dict[str, int]:
    """Store the version's out-of-fold prediction of each gold task it learned from.

    A gold task's prediction by the fitted model would be graded against the answer it was trained
    on; the cross-validation's prediction comes from a classifier that never saw that answer, so the
    version is graded on gold like anyone (its gold accuracy, docs/models.md), honestly: what the
    training report calls ``verified_accuracy`` on gold is then what the worker figures show.
    """
    found = classifier.out_of_fold_
    keys = [e.task.key for e in examples if e.source == "gold" and e.task.key in found]
    totals: Counter[str] = Counter()
    for start in range(0, len(keys), CHUNK):
        chunk = {key: found[key] for key in keys[start : start + CHUNK]}
        totals.update(_store_new(db, principal, project_id, classifier.version, chunk, list))
    return {key: totals.get(key, 0) for key in ("stored", "unchanged", "invalid")}


def _store_new(
    db: Database,
    principal: Principal,
    project_id: str,
    version: str,
    by_task: dict[str, Any],
    predict: Callable[[list[Any]], list[Prediction]],
) -> dict[str, int]:
    """Store ``predict``'s predictions of the tasks of ``by_task`` (task id -> what ``predict``
    takes) this version has not predicted yet."""
    with db.read() as conn:
        model = predictions.model_name(MODEL, version)
        done = predictions.predicted_tasks(conn, principal.organization_id, model, list(by_task))
    todo = [value for key, value in by_task.items() if key not in done]
    if not todo:
        return {"unchanged": len(done)}
    predicted = predict(todo)
    items = [{"task_id": p.task_key, "question": p.question, "answer": p.answer, "score": p.score} for p in predicted]
    # skip, not reject: a task completed or canceled since it was read takes no prediction, the rest do
    body = PredictionUpload(model=MODEL, version=version, predictions=items, on_error="skip")
    report = predictions.upload_predictions(db, principal, project_id, body)
    return {"stored": report["stored"], "unchanged": report["unchanged"] + len(done), "invalid": report["invalid"]}
