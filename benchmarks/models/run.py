"""Human judgments saved by the built-in model in the loop: real crowds replayed through the platform.

    .venv/bin/python benchmarks/models/run.py [DATA_DIR] [--seed N] [--targets 0.90 0.95] [--train-every K]
        [--arms ...] [--out FILE] [--no-plots]

DATA_DIR (default ``../shared/data/crowd/product``) is one data set: ``answers.csv``
(``task,worker,label``), ``truth.csv`` (``task,label``) and ``items.jsonl`` (one JSON object per task,
``{"task": id, ...its texts}``). Every judgment a person gives is one of the recorded answers, served
through the replay simulator's mechanics (benchmarks/replay/run.py, imported, not copied): the same
organization of one annotator per recorded worker, the same seeded orders, the same submits through
``queue.submit`` and the platform's own refit jobs run between batches.

Arms (each its own project in one temporary SQLite database):

1. ``full_overlap``: every recorded answer (fixed overlap), results from the platform's Dawid-Skene
   refit; the baseline the goal is measured against.
2. ``dynamic`` at each target: min overlap 1, max the most answers any task has, no model.
3. ``model`` at each target: the same, plus the built-in text model trained by the ``model.train``
   job (``services.model_training``) every ``--train-every`` newly completed tasks, its predictions
   of the waiting tasks stored as the model worker ``truthset-text@<version>``, weighed by the refit.
4. ``model_uncertainty``, ``model_auto_label``, ``model_uncertainty_auto_label``: the same with the
   policy's ``ordering`` (``--ordering``: "uncertainty", the default, or "model_uncertainty", which
   also ranks untouched tasks by the model) and/or ``auto_label``, when the installed
   ``QualityPolicy`` accepts them (otherwise the arm is reported "not available" with the reason).

See README.md beside this file for the JSON keys. A benchmark, not a test: goals are printed as met or
not, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import re
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

import truthset.quality as tq
from truthset.config import Settings
from truthset.domain import TaskStatus
from truthset.jobs import Runner, kinds
from truthset.schemas import ProjectCreate, QualityPolicy
from truthset.services import jobs, model_training, projects, refit, tasks
from truthset.storage import repositories as repo
from truthset.storage import tables

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "benchmarks" / "replay" / "run.py"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crowd" / "product"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_TARGETS = (0.90, 0.95)
GOAL_SAVING = 0.40  # the goal: at least 40% fewer human judgments...
HALF_POINT = 0.005  # ...at equal accuracy (within 0.5 point)...
TWO_POINTS = 0.02  # ...with the stated confidence within 2 points of the measured accuracy
EPS = 1e-9
RECORDS = "records"  # the responses field two nested records (left/right) become
ARMS = ("dynamic", "model", "model_uncertainty", "model_auto_label", "model_uncertainty_auto_label")
console = Console(width=150)


def _replay_module() -> ModuleType:
    """benchmarks/replay/run.py, imported once (registered: its dataclasses look themselves up)."""
    name = "benchmarks_replay_run"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPLAY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


rp = _replay_module()
QUESTION = rp.QUESTION


# --- items: the texts of each task, as a project's fields -----------------------------------------


def _field_name(raw: str) -> str:
    """A spec field name (``[A-Za-z_][A-Za-z0-9_-]*``, at most 64) from an item key."""
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", raw)[:64] or "field"
    return name if re.match(r"[A-Za-z_]", name) else f"f_{name}"[:64]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Items:
    """Each task's data as the project stores it, and the spec's fields for it."""

    data: dict[str, dict[str, Any]]
    fields: list[dict[str, Any]]
    layout: str  # how nested records were laid out (for the JSON)


def load_items(path: Path) -> Items:
    """``items.jsonl`` as task data. Top-level texts (and numbers) become text fields. Exactly two
    nested objects (``left``/``right``) become one ``responses`` field of two records, each keeping
    its keys (its first key renamed ``text``, which a responses item needs), so the built-in model
    sees ``records.0.name``-style paths differing in one part and pairs them (its pair similarity
    features: spec field names cannot hold a dot, so ``left.name`` itself cannot be a field). Other
    nested objects are flattened into text fields ``key_subkey``."""
    raw: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("task"), str | int):
                raise ValueError(f"{path}:{number}: each line must be an object with a 'task' id")
            raw[str(item.pop("task"))] = item
    nested = sorted({k for item in raw.values() for k, v in item.items() if isinstance(v, dict)})
    paired = nested if len(nested) == 2 else []
    data = {task: _task_data(item, paired) for task, item in raw.items()}
    names = sorted({k for d in data.values() for k in d if k != RECORDS})
    fields = [{"name": n, "type": "text", "required": False} for n in names]
    if paired:
        fields.append({"name": RECORDS, "type": "responses", "count": 2, "required": False})
    layout = f"{paired[0]}, {paired[1]} -> {RECORDS}.0, {RECORDS}.1 (first key as text)" if paired else "flat"
    return Items(data, fields or [{"name": "item", "type": "text", "required": False}], layout)


def _task_data(item: dict[str, Any], paired: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in paired or value is None:
            continue
        if isinstance(value, dict):
            out.update({_field_name(f"{key}_{k}"): _text(v) for k, v in value.items() if v is not None})
        else:
            out[_field_name(key)] = _text(value)
    if paired:
        out[RECORDS] = [_record(item.get(side)) for side in paired]
    return out


def _record(value: Any) -> dict[str, str]:
    record = {str(k): _text(v) for k, v in (value or {}).items() if v is not None}
    if "text" in record or "content" in record:
        return record
    if not record:
        return {"text": ""}
    first = next(iter(record))
    return {"text" if k == first else k: v for k, v in record.items()}


# --- arms --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    key: str
    target: float | None  # None: full overlap
    model: bool = False
    ordering: str | None = None  # "uncertainty" or "model_uncertainty"
    auto_label: bool = False

    @property
    def name(self) -> str:
        return self.key if self.target is None else f"{self.key}@{self.target:.2f}"


def arms_for(targets: list[float], chosen: list[str], ordering: str = "uncertainty") -> list[Arm]:
    out = [Arm("full_overlap", None)]
    for target in targets:
        for key in chosen:
            out.append(
                Arm(
                    key,
                    target,
                    model=key != "dynamic",
                    ordering=ordering if "uncertainty" in key else None,
                    auto_label="auto_label" in key,
                )
            )
    return out


def policy_for(arm: Arm, most: int, args: argparse.Namespace) -> QualityPolicy:
    """The arm's quality policy; raises ValidationError when the installed policy lacks a setting."""
    if arm.target is None:
        return QualityPolicy(overlap=most)
    extra: dict[str, Any] = {}
    if arm.ordering:
        extra["ordering"] = arm.ordering
    if arm.auto_label:
        extra["auto_label"] = {
            "min_accuracy": args.auto_min_accuracy if args.auto_min_accuracy is not None else arm.target,
            "min_verified": args.auto_min_verified,
            "audit_rate": args.audit_rate,
        }
    return QualityPolicy(min_overlap=1, max_overlap=most, target_confidence=arm.target, **extra)


def queue_order_function() -> tuple[Any, str]:
    """Where the uncertainty arm reads the queue's order from, and what the run says about it:
    ``services.active_learning.queue_order`` if it exists; else the queue's own sort
    (``repositories.QUEUE_ORDER``: priority, rank, id) read from the tasks, if the queue has one;
    else None (the replay's own order)."""
    try:
        from truthset.services import active_learning  # type: ignore[attr-defined]
    except ImportError:
        active_learning = None
    found = getattr(active_learning, "queue_order", None)
    if found is not None:
        return found, "services.active_learning.queue_order"
    if getattr(repo, "QUEUE_ORDER", None) is not None:
        return _stored_order, "the queue's sort (repositories.QUEUE_ORDER) read from the tasks"
    return None, "the replay's own order (neither services.active_learning.queue_order nor a queue rank exists)"


def _stored_order(db: Any, principal: Any, project_id: str) -> list[str]:
    """The project's pending tasks in the order the queue leases them (its ``QUEUE_ORDER``)."""
    tk = tables.tasks
    query = (
        select(tk.c.id)
        .where(tk.c.organization_id == principal.organization_id, tk.c.project_id == project_id)
        .where(tk.c.status == str(TaskStatus.PENDING))
        .order_by(*repo.QUEUE_ORDER)
    )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


# --- one arm -----------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one arm's replay produced."""

    answers: dict[str, tuple[str | None, float | None]]
    progress: Any  # the replay's Progress
    seconds: float
    cpu_seconds: float
    train_cpu_seconds: float
    statuses: dict[str, int]
    without_people: list[str]  # the tasks (replay names) with an answer and no human judgment
    trainings: list[dict[str, Any]] = field(default_factory=list)
    ordering: str | None = None
    order_errors: int = 0


class Bench:
    """One data set in one temporary database: the replay's organization, and a data directory for models."""

    def __init__(self, crowd: Any, items: Items, directory: Path, args: argparse.Namespace) -> None:
        self.crowd, self.items, self.args = crowd, items, args
        self.org = rp.Organization(crowd, directory)
        self.settings = Settings(data_dir=directory / "data")
        # between batches of submits, every job the platform queued runs (refits, and whatever the
        # policy's features queue), as a job runner would; training runs only when the arm asks
        others = [kind for kind in kinds() if kind != model_training.KIND]
        self.org.runner = Runner(self.org.db, kinds=others, name="albench-jobs", settings=self.settings)
        self.trainer = Runner(self.org.db, kinds=[model_training.KIND], name="albench", settings=self.settings)
        self.most = min(rp.MAX_OVERLAP, max(len(a) for a in crowd.answers.values()))

    def close(self) -> None:
        self.org.close()

    def make_project(self, arm: Arm, policy: QualityPolicy, order: list[str]) -> tuple[str, dict[str, str]]:
        """A project with the items' fields and a label question, its tasks imported in ``order``."""
        spec = {
            "fields": self.items.fields,
            "questions": [{"name": QUESTION, "type": "label", "options": self.crowd.labels}],
        }
        data = ProjectCreate(name=f"{self.crowd.name} {arm.name}", spec=spec, quality=policy)
        project = projects.create_project(self.org.db, self.org.owner, data)
        prefix = f"{project['id']}:"
        rows = ((i, {"data": self.items.data.get(t, {}), "unique_id": prefix + t}) for i, t in enumerate(order, 1))
        report = tasks.import_tasks(self.org.db, self.org.owner, project["id"], rows)
        if report.invalid:
            raise RuntimeError(f"{self.crowd.name}: the import refused {report.invalid} tasks: {report.errors[:3]}")
        ids = {row["unique_id"][len(prefix) :]: row["id"] for row in rp.project_tasks(self.org, project["id"])}
        return project["id"], ids

    def run(self, arm: Arm, policy: QualityPolicy) -> Run:
        """Serve every judgment the policy asks for with a recorded one (the replay's steps), training
        the model every ``--train-every`` newly completed tasks when the arm has one."""
        args, crowd = self.args, self.crowd
        order = rp.task_order(crowd, args.seed)
        project_id, ids = self.make_project(arm, policy, order)
        answers = rp.answer_order(crowd, args.seed)
        given = dict.fromkeys(order, 0)
        wanting = deque(order)
        progress = rp.Progress()
        reorder, ordering = queue_order_function() if arm.ordering else (None, None)
        run = Run({}, progress, 0.0, 0.0, 0.0, {}, [], ordering=ordering)
        completed = 0
        # the first --gold tasks of the seeded order are the customer's gold set (as in the replay):
        # each marked gold with its truth once people are done with it; refits calibrate on them
        known = {t for t in order[: args.gold] if t in crowd.truth}
        started, cpu_started = time.perf_counter(), time.process_time()
        while wanting:
            if reorder is not None:
                wanting = self._reordered(reorder, project_id, ids, wanting, run)
            step = [wanting.popleft() for _ in range(min(args.annotators, len(wanting)))]
            progress.steps += 1
            again: list[str] = []
            for chunk in rp._chunks(step, rp.CHUNK):
                rp._run_refits(self.org, project_id, progress, 0)
                if arm.auto_label:  # the jobs just run may have completed some without people
                    statuses = rp._statuses(self.org, [ids[t] for t in chunk])
                    chunk = [t for t in chunk if statuses.get(ids[t]) == TaskStatus.PENDING]
                more = rp._judge(self.org, [(t, ids[t]) for t in chunk], answers, given, progress)
                again += more
                completed += len(chunk) - len(more)
                rp._mark_gold(self.org, crowd, ids, [t for t in chunk if t in known and t not in set(more)])
            wanting.extendleft(reversed(again))
            due = completed >= args.train_every * (len(run.trainings) + 1)
            if arm.model and due and (not args.max_trainings or len(run.trainings) < args.max_trainings):
                self._train(project_id, ids, run, completed)
            if arm.auto_label:  # the platform may complete a task without people, or reopen one, at any step
                wanting = self._still_waiting(project_id, wanting, ids, given, answers)
        rp._run_refits(self.org, project_id, progress, 0)
        refit.refit(self.org.db, self.org.owner, project_id)  # results as the last refit leaves them
        run.seconds, run.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        run.answers, run.statuses, _flags = rp.read_results(self.org, project_id, ids)
        run.without_people = self._without_people(project_id, ids)
        return run

    def _reordered(self, reorder: Any, project_id: str, ids: dict[str, str], wanting: deque, run: Run) -> deque:
        """The waiting tasks in the order ``queue_order`` gives (those it leaves out keep theirs, after)."""
        names = {ids[t]: t for t in wanting}
        offered = {"db": self.org.db, "principal": self.org.owner, "project_id": project_id, "limit": len(wanting)}
        offered["task_ids"] = list(names)
        try:
            wanted = inspect.signature(reorder).parameters
            got = reorder(**{k: v for k, v in offered.items() if k in wanted})
        except Exception as exc:  # the function is another helper's, built now: report, fall back
            run.order_errors += 1
            if run.order_errors == 1:
                console.print(f"[yellow]queue_order failed ({exc!r}): the replay's order is kept[/yellow]")
            return wanting
        first = [names[i] for i in (g["id"] if isinstance(g, dict) else g for g in got) if i in names]
        seen = set(first)
        return deque([*first, *(t for t in wanting if t not in seen)])

    def _train(self, project_id: str, ids: dict[str, str], run: Run, completed: int) -> None:
        """One ``model.train`` job run to its end, then the refits its predictions asked for."""
        cpu = time.process_time()
        job = model_training.request_training(self.org.db, self.org.owner, project_id, QUESTION)
        self.trainer.run_until_idle()
        done = jobs.get_job(self.org.db, self.org.owner, job["id"])
        run.train_cpu_seconds += time.process_time() - cpu
        result = done.get("result") or {}
        entry: dict[str, Any] = {
            "completed_tasks": completed,
            "human_judgments": run.progress.judgments,
            "job_status": done["status"],
            "status": result.get("status"),
            "cpu_seconds": time.process_time() - cpu,
        }
        metrics = result.get("metrics") or {}
        if result.get("status") in ("trained", "unchanged"):
            entry.update(
                version=result["version"],
                training_labels=metrics.get("n_examples"),
                label_sources=metrics.get("labels"),
                heldout_accuracy=metrics.get("accuracy"),
                heldout_ece=metrics.get("ece"),
                heldout_verified_accuracy=metrics.get("verified_accuracy"),
                heldout_verified_examples=metrics.get("verified_examples"),
                baseline_accuracy=metrics.get("baseline_accuracy"),
                predictions=result.get("predictions"),
                **self._prediction_figures(project_id, result["model"], ids),
            )
        else:
            entry["message"] = result.get("message") or done.get("error")
        run.trainings.append(entry)
        console.print(
            f"  trained at {completed:,} completed tasks: {entry['status'] or entry['job_status']}, "
            f"{entry.get('training_labels') or 0:,} labels, held-out accuracy {_fmt(entry.get('heldout_accuracy'))}, "
            f"on truth {_fmt(entry.get('predicted_accuracy'))}, {entry['cpu_seconds']:.0f} s CPU"
        )

    def _prediction_figures(self, project_id: str, model: str, ids: dict[str, str]) -> dict[str, Any]:
        """Accuracy and ECE of a model version's stored predictions in the project against the truth
        (the worker is the organization's: another arm trained on the same data has the same version)."""
        w, r = tables.workers, tables.responses
        query = (
            select(r.c.task_id, r.c.answer, r.c.scores)
            .join(w, w.c.id == r.c.worker_id)
            .where(w.c.organization_id == self.org.owner.organization_id, w.c.name == model)
            .where(r.c.project_id == project_id)
        )
        with self.org.db.read() as conn:
            rows = conn.execute(query).all()
        names = {v: k for k, v in ids.items()}
        truth = self.crowd.truth
        scored = [(row, names[row.task_id]) for row in rows if names.get(row.task_id) in truth]
        if not scored:
            return {"predicted_tasks": len(rows), "predicted_accuracy": None, "predicted_ece": None}
        correct = np.array([(row.answer or {}).get(QUESTION) == truth[t] for row, t in scored], dtype=bool)
        score = np.array([float((row.scores or {}).get(QUESTION) or 0.0) for row, _ in scored])
        return {
            "predicted_tasks": len(rows),
            "predicted_accuracy": float(correct.mean()),
            "predicted_ece": tq.expected_calibration_error(score, correct, rp.N_BINS),
            "predicted_mean_score": float(score.mean()),
        }

    def _still_waiting(
        self,
        project_id: str,
        wanting: deque,
        ids: dict[str, str],
        given: dict[str, int],
        answers: dict[str, list[tuple[str, str]]],
    ) -> deque:
        """The human queue after the platform's own moves: tasks it completed without people
        (auto-labeled) leave it; tasks it sent back to people (an auto-label reopened when its model
        was suspended) that still have recorded answers join it at the end, in the replay's order."""
        tk = tables.tasks
        query = select(tk.c.id).where(tk.c.project_id == project_id, tk.c.status == str(TaskStatus.PENDING))
        with self.org.db.read() as conn:
            pending = set(conn.execute(query).scalars())
        kept = [t for t in wanting if ids[t] in pending]
        queued = set(kept)
        back = [t for t in ids if ids[t] in pending and t not in queued and given[t] < len(answers[t])]
        return deque([*kept, *back])

    def _without_people(self, project_id: str, ids: dict[str, str]) -> list[str]:
        """Tasks with a result and no human judgment (auto-labeled: predictions do not count)."""
        tk = tables.tasks
        names = {task_id: name for name, task_id in ids.items()}
        query = select(tk.c.id, tk.c.result).where(tk.c.project_id == project_id, tk.c.response_count == 0)
        with self.org.db.read() as conn:
            return [names[task_id] for task_id, result in conn.execute(query) if (result or {}).get("answer")]


# --- figures -----------------------------------------------------------------------------------------


def arm_figures(run: Run, crowd: Any) -> dict[str, Any]:
    figures = rp.score([run.answers], crowd, run.progress.judgments)
    machine = set(run.without_people)
    by_machine = {t: a for t, a in run.answers.items() if t in machine}
    by_people = {t: a for t, a in run.answers.items() if t not in machine}
    figures.update(
        available=True,
        human_judgments=run.progress.judgments,
        statuses=run.statuses,
        auto_labeled=len(machine),
        auto_labeled_figures=_subset(by_machine, crowd),
        people_figures=_subset(by_people, crowd),
        exhausted=run.progress.exhausted,
        refits=run.progress.refits,
        errors=dict(run.progress.errors),
        seconds=run.seconds,
        cpu_seconds=run.cpu_seconds,
        train_cpu_seconds=run.train_cpu_seconds,
        ordering=run.ordering,
        ordering_failures=run.order_errors,
        learning_curve=run.trainings,
    )
    return figures


def _subset(answers: dict[str, tuple[str | None, float | None]], crowd: Any) -> dict[str, Any]:
    """Tasks (with a truth), accuracy and mean stated confidence of some of an arm's tasks."""
    scored = [(a == crowd.truth[t], c or 0.0) for t, (a, c) in answers.items() if t in crowd.truth]
    if not scored:
        return {"tasks": 0, "accuracy": None, "mean_confidence": None}
    right, stated = zip(*scored, strict=True)
    return {"tasks": len(scored), "accuracy": sum(right) / len(scored), "mean_confidence": sum(stated) / len(scored)}


def goals(arms: dict[str, dict[str, Any]]) -> None:
    """Against full overlap (the platform's Dawid-Skene): saving, equal accuracy, honest confidence."""
    full = arms["full_overlap"]
    for figures in arms.values():
        if not figures.get("available"):
            continue
        saving = 1 - figures["human_judgments"] / full["human_judgments"] if full["human_judgments"] else None
        equal = figures["accuracy"] >= full["accuracy"] - HALF_POINT - EPS
        honest = abs(figures["mean_confidence"] - figures["accuracy"]) <= TWO_POINTS + EPS
        figures.update(
            saving_vs_full_overlap=saving,
            accuracy_within_half_point=equal,
            confidence_within_two_points=honest,
            goal_met=bool(equal and honest and saving is not None and saving >= GOAL_SAVING - EPS),
        )


# --- output ------------------------------------------------------------------------------------------


def print_tables(report: dict[str, Any]) -> None:
    d = report["dataset"]
    title = f"{d['name']}: {d['tasks']} tasks, {d['judgments']} recorded judgments, {d['workers']} workers"
    table = Table(title=title)
    columns = ("arm", "human judgments", "per task", "accuracy", "ECE", "mean conf.", "saving", "goal")
    columns += ("auto-labeled: tasks, acc., conf.", "CPU s")
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right")
    for name, f in report["arms"].items():
        if not f.get("available"):
            table.add_row(name, "not available", "", "", "", "", "", "", "", "")
            continue
        saving = f["saving_vs_full_overlap"]
        marks = "".join(
            [
                "=" if f["accuracy_within_half_point"] else "-",
                "c" if f["confidence_within_two_points"] else ".",
                " MET" if f["goal_met"] else "",
            ]
        )
        table.add_row(
            name,
            f"{f['human_judgments']:,}",
            f"{f['judgments_per_task']:.2f}",
            f"{f['accuracy']:.4f}",
            f"{f['ece']:.4f}",
            f"{f['mean_confidence']:.3f}",
            f"{saving:.1%}" if saving is not None else "",
            marks,
            _auto_cell(f["auto_labeled_figures"]),
            f"{f['cpu_seconds']:.1f}",
        )
    console.print(table)
    console.print(
        "goal: '=' accuracy within 0.5 point of full overlap, 'c' mean stated confidence within 2 points of "
        "accuracy, MET: both and at least 40% fewer human judgments. "
        f"Engine-only Dawid-Skene on every answer (no services): {d['engine_dawid_skene']['accuracy']:.4f}."
    )
    for name, f in report["arms"].items():
        if not f.get("available"):
            console.print(f"  {name}: not available: {f['reason']}")
    print_learning_curves(report)
    console.print(
        f"CPU time is time.process_time of this process (every thread), on a shared machine: other work "
        f"slows the wall clock ({report['seconds']:.0f} s wall, {report['cpu_seconds']:.0f} s CPU in all)."
    )


def print_learning_curves(report: dict[str, Any]) -> None:
    for name, f in report["arms"].items():
        curve = f.get("learning_curve") or []
        if not curve:
            continue
        table = Table(title=f"learning curve, {name}")
        for column in ("completed", "labels", "held-out acc.", "held-out ECE", "predicted", "acc. (truth)", "ECE"):
            table.add_column(column, justify="right")
        for e in curve:
            if e.get("version") is None:
                table.add_row(str(e["completed_tasks"]), e.get("status") or e["job_status"], "", "", "", "", "")
                continue
            table.add_row(
                str(e["completed_tasks"]),
                str(e["training_labels"]),
                _fmt(e["heldout_accuracy"]),
                _fmt(e["heldout_ece"]),
                str(e["predicted_tasks"]),
                _fmt(e["predicted_accuracy"]),
                _fmt(e["predicted_ece"]),
            )
        console.print(table)


def _auto_cell(figures: dict[str, Any]) -> str:
    if not figures["tasks"]:
        return ""
    return f"{figures['tasks']:,}, {figures['accuracy']:.4f}, {figures['mean_confidence']:.3f}"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def save_plots(report: dict[str, Any], stem: Path) -> list[str]:
    """Accuracy against human judgments per task per arm; the model's learning curves. [] without matplotlib."""
    return rp.save_figures(report, stem, (("arms", _arms_plot), ("learning", _learning_plot)))


def _arms_plot(plt: Any, report: dict[str, Any]) -> Any:
    figure, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    for name, f in report["arms"].items():
        if f.get("available"):
            ax.plot([f["judgments_per_task"]], [f["accuracy"]], "o", label=name)
    full = report["arms"]["full_overlap"]
    ax.axhline(full["accuracy"] - HALF_POINT, ls=":", color="grey", label="full overlap - 0.5 point")
    ax.axvline(full["judgments_per_task"] * (1 - GOAL_SAVING), ls="--", color="grey", label="40% fewer judgments")
    ax.set_xlabel("human judgments per task")
    ax.set_ylabel("accuracy")
    ax.set_title(report["dataset"]["name"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return figure


def _learning_plot(plt: Any, report: dict[str, Any]) -> Any:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name, f in report["arms"].items():
        curve = [e for e in f.get("learning_curve") or [] if e.get("version")]
        if not curve:
            continue
        x = [e["training_labels"] for e in curve]
        left.plot(x, [e["heldout_accuracy"] for e in curve], "o-", label=f"{name} held-out")
        left.plot(x, [e["predicted_accuracy"] for e in curve], "s--", label=f"{name} on truth")
        right.plot(x, [e["heldout_ece"] for e in curve], "o-", label=f"{name} held-out")
        right.plot(x, [e["predicted_ece"] for e in curve], "s--", label=f"{name} on truth")
    for ax, what in ((left, "accuracy"), (right, "ECE")):
        ax.set_xlabel("training labels (human-labeled tasks the job trusted)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    left.set_title("model accuracy")
    right.set_title("model calibration")
    return figure


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data_dir", nargs="?", type=Path, default=DEFAULT_DATA, help="answers.csv, truth.csv, items.jsonl"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the order of tasks and of each task's answers")
    parser.add_argument("--targets", type=float, nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="arms run at each target")
    parser.add_argument(
        "--ordering",
        choices=("uncertainty", "model_uncertainty"),
        default="uncertainty",
        help="the policy's ordering in the *_uncertainty arms",
    )
    parser.add_argument("--train-every", type=int, default=1000, help="train the model every K newly completed tasks")
    parser.add_argument(
        "--max-trainings", type=int, default=0, help="train at most N times per arm (0, the default: no limit)"
    )
    parser.add_argument("--annotators", type=int, default=64, help="tasks judged at once (the replay's steps)")
    parser.add_argument(
        "--gold",
        type=int,
        default=0,
        help="mark the first N tasks of the seeded order gold with their truth once people answered them",
    )
    parser.add_argument("--audit-rate", type=float, default=0.1, help="auto_label.audit_rate")
    parser.add_argument("--auto-min-verified", type=int, default=50, help="auto_label.min_verified")
    parser.add_argument(
        "--auto-min-accuracy", type=float, default=None, help="auto_label.min_accuracy (default: the target)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file (default benchmarks/results/models-<UTC>.json)"
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    for target in args.targets:
        if not 0.5 < target < 1.0:
            parser.error(f"--targets: {target} is not between 0.5 and 1 (exclusive)")
    if args.train_every < 1:
        parser.error("--train-every must be at least 1")
    if args.annotators < 1:
        parser.error("--annotators must be at least 1")
    if args.max_trainings < 0:
        parser.error("--max-trainings must be 0 (no limit) or more")
    if args.gold < 0:
        parser.error("--gold must be 0 or more")
    if not 0.0 <= args.audit_rate <= 1.0:
        parser.error("--audit-rate must be between 0 and 1")
    return args


def load(data_dir: Path) -> tuple[Any, Items]:
    for name in ("answers.csv", "truth.csv", "items.jsonl"):
        if not (data_dir / name).is_file():
            console.print(f"[red]{data_dir}: no {name} (a data set needs answers.csv, truth.csv, items.jsonl)[/red]")
            raise SystemExit(2)
    crowd = rp.load_crowd(data_dir)
    if reason := rp.unusable(crowd):
        console.print(f"[red]{data_dir}: {reason}[/red]")
        raise SystemExit(2)
    return crowd, load_items(data_dir / "items.jsonl")


def run_all(crowd: Any, items: Items, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=f"truthset-models-{crowd.name}-") as directory:
        bench = Bench(crowd, items, Path(directory), args)
        try:
            for arm in arms_for(args.targets, args.arms, args.ordering):
                try:
                    policy = policy_for(arm, bench.most, args)
                except ValidationError as exc:
                    reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                    out[arm.name] = {"available": False, "reason": f"QualityPolicy refuses it ({reason})"}
                    console.print(f"{arm.name}: not available ({reason})")
                    continue
                console.print(f"{arm.name}: replaying ...")
                out[arm.name] = arm_figures(bench.run(arm, policy), crowd)
                f = out[arm.name]
                console.print(
                    f"{arm.name}: {f['human_judgments']:,} judgments, accuracy {f['accuracy']:.4f}, "
                    f"{f['seconds']:.0f} s wall, {f['cpu_seconds']:.0f} s CPU"
                )
        finally:
            bench.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        console.print(f"[red]{args.data_dir} is not a folder[/red]")
        raise SystemExit(2)
    rp._cheap_passwords()
    crowd, items = load(args.data_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or RESULTS / f"models-{stamp}.json"
    started, cpu_started = time.perf_counter(), time.process_time()
    engine = rp.full_overlap(crowd)["dawid_skene"]
    arms = run_all(crowd, items, args)
    goals(arms)
    report = {
        "created_at": stamp,
        "data_dir": str(args.data_dir),
        "seed": args.seed,
        "targets": [f"{t:.2f}" for t in args.targets],
        "train_every": args.train_every,
        "max_trainings": args.max_trainings,
        "annotators": args.annotators,
        "gold": args.gold,
        "auto_label": {
            "min_accuracy": args.auto_min_accuracy,
            "min_verified": args.auto_min_verified,
            "audit_rate": args.audit_rate,
        },
        "database": "SQLite, temporary file, synchronous=NORMAL (no fsync: relaxed for the benchmark)",
        "dataset": {
            "name": crowd.name,
            "tasks": len(crowd.answers),
            "tasks_with_truth": sum(t in crowd.truth for t in crowd.answers),
            "judgments": crowd.judgments,
            "dropped_answers": crowd.dropped,
            "workers": len(crowd.workers),
            "classes": len(crowd.labels),
            "answers_per_task": crowd.answers_per_task,
            "items": len(items.data),
            "fields": [f["name"] for f in items.fields],
            "layout": items.layout,
            "engine_dawid_skene": {k: engine[k] for k in ("accuracy", "ece", "mean_confidence")},
        },
        "arms": arms,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "machine": "shared: CPU seconds (time.process_time) say more than wall seconds",
    }
    print_tables(report)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report["plots"] = [] if args.no_plots else save_plots(report, out_path.with_suffix(""))
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"saved {out_path}" + "".join(f", {p}" for p in report["plots"]))
    return report


if __name__ == "__main__":
    main()
