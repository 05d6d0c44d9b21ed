"""Replay real crowds through the platform's own services: dynamic overlap against full overlap.

    .venv/bin/python benchmarks/replay/run.py [DATA_DIR] [--targets 0.90 0.95 0.99] [--seed N] [--out FILE]
        [--refit-every N] [--annotators N] [--no-plots]

DATA_DIR (default ``../shared/data/crowd``) is any folder of data sets: sub-folders holding
``answers.csv`` (``task,worker,label``) and ``truth.csv`` (``task,label``). A data set whose labels
take more than 10 values is numeric and skipped (listed under ``skipped`` in the JSON).

For each data set, one temporary SQLite database holds an organization with one annotator member
(and so one worker) per recorded worker, and, per target confidence, one project whose quality
policy is ``min_overlap=1, max_overlap=<most answers any task has>, target_confidence=<target>``.
Every task is imported through the import service, in a seeded order (which is the queue's order).
Then the queue is driven in steps: each step takes the first ``--annotators`` tasks in queue order
that want a judgment (as that many annotators taking the queue's next tasks would) and gives each
its next recorded answer (a task's answers in a seeded order, the same at every target), submitted
by its recorded worker with ``queue.submit`` through ``Database.submit``, exactly as the API's submit
route calls it (no lease: the answer takes the free slot the task asks for). The task's status after
the call says whether the policy wants one more judgment; then it keeps its place in the queue.
The refit jobs the submits queue ("quality.refit") run in this process between batches of submits, as
a job runner would run them (``--refit-every N``: an on-demand refit every N judgments instead).

Beside it, the full-overlap baselines: majority vote and Dawid-Skene (``truthset.quality``) over all
recorded answers. See README.md beside this file for the JSON keys. A benchmark, not a test: the
goals are printed as met or not, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from argon2 import PasswordHasher
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

import truthset.quality as tq
from truthset.domain import Principal, Role, TaskStatus
from truthset.errors import TruthsetError
from truthset.jobs import Runner
from truthset.schemas import MemberCreate, ProjectCreate, QualityPolicy, ResponseCreate
from truthset.services import accounts, gold, jobs, projects, queue, refit, tasks
from truthset.services.tasks import TaskFilter
from truthset.storage import Database, tables, upgrade

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crowd"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_TARGETS = (0.90, 0.95, 0.99)
QUESTION = "label"
MAX_CLASSES = 10  # more distinct labels than this: a numeric data set (as benchmarks/quality does)
MAX_OVERLAP = 100  # the policy's bound (schemas.QualityPolicy)
MAX_LABEL = 200  # an option value's longest (questions._options.Option)
FULL_ANSWERS = 9  # the goals apply to data sets with at least this many answers per task (median)
N_BINS = 10
EPS = 1e-9
CHUNK = 64  # submits handed to the writer thread at once (its largest batch); refits fall between chunks
console = Console(width=140)


# --- data ------------------------------------------------------------------------------------------


@dataclass
class Crowd:
    """One data set: recorded answers grouped by task, in file order, and the truth."""

    name: str
    answers: dict[str, list[tuple[str, str]]]  # task -> [(worker, label)]
    truth: dict[str, str]
    labels: list[str]
    dropped: int = 0  # answer rows left out: an empty field, or a worker's second answer to a task

    @property
    def judgments(self) -> int:
        return sum(len(a) for a in self.answers.values())

    @property
    def workers(self) -> list[str]:
        return sorted({w for a in self.answers.values() for w, _ in a})

    @property
    def answers_per_task(self) -> float:
        return float(statistics.median(len(a) for a in self.answers.values()))

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(task, worker, label) arrays, as ``truthset.quality`` estimators take them."""
        flat = [(t, w, lab) for t, a in self.answers.items() for w, lab in a]
        return tuple(np.array([r[i] for r in flat], dtype=object).astype(str) for i in range(3))  # type: ignore[return-value]


def _read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: header lacks {', '.join(missing)}")
        for row in reader:
            yield tuple(row[c].strip() for c in columns)


def load_crowd(folder: Path) -> Crowd:
    answers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    dropped = 0
    for task, worker, label in _read_csv(folder / "answers.csv", ("task", "worker", "label")):
        # the platform takes one answer per worker and task (the first), and no empty answer
        if not (task and worker and label) or (task, worker) in seen:
            dropped += 1
            continue
        seen.add((task, worker))
        answers[task].append((worker, label))
    truth = {t: lab for t, lab in _read_csv(folder / "truth.csv", ("task", "label")) if t and lab}
    labels = sorted({lab for a in answers.values() for _, lab in a} | set(truth.values()), key=_label_key)
    return Crowd(folder.name, dict(answers), truth, labels, dropped)


def _label_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def find_crowds(data_dir: Path) -> tuple[list[Crowd], dict[str, str]]:
    """The categorical data sets of ``data_dir``, and the skipped ones with the reason."""
    crowds, skipped = [], {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if not ((folder / "answers.csv").exists() and (folder / "truth.csv").exists()):
            continue
        try:
            crowd = load_crowd(folder)
        except (ValueError, UnicodeDecodeError, csv.Error) as exc:  # one bad folder does not stop the run
            skipped[folder.name] = f"unreadable: {exc}"
            continue
        if reason := unusable(crowd):
            skipped[crowd.name] = reason
        else:
            crowds.append(crowd)
    return crowds, skipped


def unusable(crowd: Crowd) -> str | None:
    """Why a data set cannot be replayed as a ``label`` question, or None."""
    if len(crowd.labels) > MAX_CLASSES:
        return f"numeric: {len(crowd.labels)} distinct labels (more than {MAX_CLASSES})"
    if len(crowd.labels) < 2:
        return "fewer than two distinct labels"
    if too_long := [lab for lab in crowd.labels if len(lab) > MAX_LABEL]:
        return f"labels longer than {MAX_LABEL} characters (an option value's limit): {too_long[0][:40]!r}..."
    return None


# --- metrics ---------------------------------------------------------------------------------------


def score(runs: list[dict[str, tuple[str | None, float | None]]], crowd: Crowd, judgments: int) -> dict[str, Any]:
    """Accuracy and ECE over the tasks with a truth, pooled over ``runs`` (one per seed); a task
    without an answer counts as wrong. ``judgments``: given over all runs."""
    scored = [t for t in crowd.answers if t in crowd.truth]
    nothing = (None, None)
    correct = np.array([run.get(t, nothing)[0] == crowd.truth[t] for run in runs for t in scored], dtype=bool)
    confidence = np.array([run.get(t, nothing)[1] or 0.0 for run in runs for t in scored], dtype=np.float64)
    return {
        "accuracy": float(correct.mean()) if scored else None,
        "judgments_per_task": judgments / (len(crowd.answers) * len(runs)),
        "ece": tq.expected_calibration_error(confidence, correct, N_BINS) if scored else None,
        "mean_confidence": float(confidence.mean()) if scored else None,
        "reliability": reliability(confidence, correct),
    }


def reliability(confidence: np.ndarray, correct: np.ndarray) -> list[dict[str, Any]]:
    """Per equal-width confidence bin (as the ECE bins them): tasks, mean confidence, accuracy."""
    bins = np.clip(np.ceil(confidence * N_BINS).astype(np.int64) - 1, 0, N_BINS - 1)
    out = []
    for b in range(N_BINS):
        inside = bins == b
        if inside.any():
            out.append(
                {
                    "bin": [b / N_BINS, (b + 1) / N_BINS],
                    "tasks": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return out


def full_overlap(crowd: Crowd) -> dict[str, dict[str, Any]]:
    """Majority vote and Dawid-Skene over every recorded answer (the quality engine's estimators)."""
    rows = crowd.rows()
    out = {}
    for key, model in (("majority_vote", tq.MajorityVote()), ("dawid_skene", tq.DawidSkene())):
        model.fit(rows)
        answers = {t: (lab, model.probas_[t][lab]) for t, lab in model.labels_.items()}
        out[key] = score([answers], crowd, crowd.judgments)
    return out


# --- the replay ------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Counters of one replay."""

    judgments: int = 0
    since_refit: int = 0
    refits: int = 0
    refit_seconds: float = 0.0
    changed_by_refits: int = 0  # completed tasks whose answer a refit changed (each a task event)
    steps: int = 0
    exhausted: int = 0  # tasks still asking for more when their recorded answers ran out
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Replayed:
    """What one replay of a data set at one target produced."""

    answers: dict[str, tuple[str | None, float | None]]
    progress: Progress
    seconds: float  # wall-clock time of the replay loop (submits and refits)
    cpu_seconds: float  # CPU time of the process (every thread) over the same loop
    statuses: dict[str, int]
    flags: dict[str, int]  # results marked "tie", results marked "low_confidence"


class Organization:
    """One temporary database with an organization and an annotator per recorded worker."""

    def __init__(self, crowd: Crowd, directory: Path) -> None:
        url = f"sqlite:///{directory / 'replay.db'}"
        upgrade(url)
        # Relaxed durability for the benchmark: commits are not fsynced (the data is thrown away).
        self.db = Database(url, sqlite_synchronous="NORMAL")
        org = accounts.init_organization(self.db, f"replay {crowd.name}", "owner@replay.invalid")
        member = org["member"]
        self.owner = Principal(org["organization"]["id"], member["id"], Role.OWNER, member["worker_id"])
        self.workers = {w: self._annotator(i, w) for i, w in enumerate(crowd.workers)}
        # the refit jobs the submits ask for, run in this thread between batches of submits
        self.runner = Runner(self.db, kinds=[refit.JOB_KIND], name="replay")

    def _annotator(self, number: int, name: str) -> Principal:
        data = MemberCreate(email=f"w{number}@replay.invalid", name=name[:200], role=Role.ANNOTATOR)
        member = accounts.add_member(self.db, self.owner, data)["member"]
        return Principal(self.owner.organization_id, member["id"], Role.ANNOTATOR, member["worker_id"])

    def close(self) -> None:
        self.db.dispose()


def _cheap_passwords() -> None:
    """Annotators never log in here: hash their one-time passwords at argon2's lowest cost."""
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_project(org: Organization, crowd: Crowd, target: float, order: list[str]) -> tuple[str, dict[str, str]]:
    """A project for ``crowd`` at ``target``, its tasks imported in ``order`` (the queue's order, as ids
    grow with creation); returns (project id, recorded task -> task id)."""
    most = min(MAX_OVERLAP, max(len(a) for a in crowd.answers.values()))
    policy = QualityPolicy(min_overlap=1, max_overlap=most, target_confidence=target)
    spec = {
        "fields": [{"name": "item", "type": "text"}],
        "questions": [{"name": QUESTION, "type": "label", "options": crowd.labels}],
    }
    data = ProjectCreate(name=f"{crowd.name} at {target:.2f}", spec=spec, quality=policy)
    project = projects.create_project(org.db, org.owner, data)
    prefix = f"{project['id']}:"
    items = ((i, {"data": {"item": t}, "unique_id": prefix + t}) for i, t in enumerate(order, 1))
    report = tasks.import_tasks(org.db, org.owner, project["id"], items)
    if report.invalid:
        raise RuntimeError(f"{crowd.name}: the import refused {report.invalid} tasks: {report.errors[:3]}")
    ids = {row["unique_id"][len(prefix) :]: row["id"] for row in project_tasks(org, project["id"])}
    return project["id"], ids


def project_tasks(org: Organization, project_id: str) -> Iterator[dict[str, Any]]:
    """Every task of the project, through the listing service (pages of 1,000)."""
    cursor = None
    while True:
        page, cursor = tasks.list_tasks(org.db, org.owner, TaskFilter(project_id=project_id), cursor=cursor, limit=1000)
        yield from page
        if cursor is None:
            return


def replay(org: Organization, crowd: Crowd, target: float, seed: int, args: argparse.Namespace) -> Replayed:
    """Serve every judgment the policy asks for with a recorded one, ``--annotators`` tasks at a time.

    Each step judges the first ``args.annotators`` tasks in queue order that want a judgment (as that
    many annotators taking the queue's next tasks would); a task asking for one more stays at its
    place in the queue, so it is served again in the next step.
    """
    order = task_order(crowd, seed)
    project_id, ids = make_project(org, crowd, target, order)
    answers = answer_order(crowd, seed)
    given = dict.fromkeys(order, 0)
    wanting = deque(order)  # tasks wanting a judgment, in queue order
    # the first --gold tasks of the queue are the customer's gold set: marked gold with their truth
    # once the crowd is done with them, so later refits can calibrate the confidence on them
    known = {t for t in order[: args.gold] if t in crowd.truth}
    progress = Progress()
    started, cpu_started = time.perf_counter(), time.process_time()
    while wanting:
        step = [wanting.popleft() for _ in range(min(args.annotators, len(wanting)))]
        progress.steps += 1
        again: list[str] = []
        for chunk in _chunks(step, CHUNK):
            _run_refits(org, project_id, progress, args.refit_every)
            more = _judge(org, [(t, ids[t]) for t in chunk], answers, given, progress)
            again += more
            _mark_gold(org, crowd, ids, [t for t in chunk if t in known and t not in set(more)])
        wanting.extendleft(reversed(again))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if not args.refit_every:
        progress.changed_by_refits = changed_by_jobs(org, project_id)
    results, statuses, flags = read_results(org, project_id, ids)
    return Replayed(results, progress, seconds, cpu_seconds, statuses, flags)


def _mark_gold(org: Organization, crowd: Crowd, ids: dict[str, str], done: list[str]) -> None:
    for t in done:
        gold.mark_gold(org.db, org.owner, ids[t], {QUESTION: crowd.truth[t]})


def _run_refits(org: Organization, project_id: str, p: Progress, every: int) -> None:
    """Between two batches of submits: the refit jobs the submits queued (``every`` 0), as a job runner
    would run them; or, with ``every``, the on-demand refit once ``every`` judgments came in."""
    started = time.perf_counter()
    if not every:
        p.refits += org.runner.run_until_idle()
    elif p.since_refit >= every:
        p.changed_by_refits += refit.refit(org.db, org.owner, project_id)["changed_answers"]
        p.refits, p.since_refit = p.refits + 1, 0
    p.refit_seconds += time.perf_counter() - started


def changed_by_jobs(org: Organization, project_id: str) -> int:
    """Answers changed by the project's finished refit jobs (each job's result says how many)."""
    changed, cursor = 0, None
    while True:
        page, cursor = jobs.list_jobs(org.db, org.owner, kind=refit.JOB_KIND, cursor=cursor, limit=500)
        for job in page:
            if job["payload"].get("project_id") == project_id and isinstance(job["result"], dict):
                changed += int(job["result"].get("changed_answers", 0))
        if cursor is None:
            return changed


def _judge(
    org: Organization,
    chunk: list[tuple[str, str]],
    answers: dict[str, list[tuple[str, str]]],
    given: dict[str, int],
    progress: Progress,
) -> list[str]:
    """Submit the next recorded answer of each (task, task id) at once; return the tasks wanting more."""
    futures = [_submit(org, task_id, *answers[t][given[t]]) for t, task_id in chunk]
    accepted = [_accepted(future, progress.errors) for future in futures]
    statuses = _statuses(org, [task_id for (_, task_id), ok in zip(chunk, accepted, strict=True) if ok])
    more = []
    for (t, task_id), ok in zip(chunk, accepted, strict=True):
        given[t] += 1
        if not ok:
            continue  # refused (counted in errors): the replay moves on
        status = statuses[task_id]
        progress.judgments += 1
        progress.since_refit += 1
        if status == TaskStatus.PENDING:
            if given[t] < len(answers[t]):
                more.append(t)
            else:
                progress.exhausted += 1
    return more


def task_order(crowd: Crowd, seed: int) -> list[str]:
    """The tasks in a seeded order: the order they are imported in, so the queue's order."""
    tasks_ = sorted(crowd.answers)
    return [tasks_[i] for i in np.random.default_rng([seed, 1]).permutation(len(tasks_))]


def answer_order(crowd: Crowd, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Each task's recorded answers in a seeded order (the same order at every target)."""
    rng = np.random.default_rng([seed, 0])
    out = {}
    for t in sorted(crowd.answers):
        answers = crowd.answers[t]
        out[t] = [answers[i] for i in rng.permutation(len(answers))]
    return out


def _chunks(calls: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(calls), size):
        yield calls[i : i + size]


def _submit(org: Organization, task_id: str, worker: str, label: str) -> Future:
    """One recorded answer, as the API's submit route sends it to the queue service."""
    body = ResponseCreate(answer={QUESTION: label})
    return org.db.submit(queue.submit, org.db, org.workers[worker], task_id, body)


def _accepted(future: Future, errors: dict[str, int]) -> bool:
    """Whether the submit was stored (a refusal is counted by its error code)."""
    try:
        future.result()
    except TruthsetError as exc:
        errors[exc.code] += 1
        return False
    return True


def _statuses(org: Organization, task_ids: list[str]) -> dict[str, TaskStatus]:
    """The tasks' statuses after a chunk of submits, in one read. (The submit's reply shows a worker
    every task blind, as a gold task is shown: the simulator reads the task as its owner would.)"""
    if not task_ids:
        return {}
    with org.db.read() as conn:
        rows = conn.execute(select(tables.tasks.c.id, tables.tasks.c.status).where(tables.tasks.c.id.in_(task_ids)))
        return {task_id: TaskStatus(status) for task_id, status in rows}


def read_results(
    org: Organization, project_id: str, ids: dict[str, str]
) -> tuple[dict[str, tuple[str | None, float | None]], dict[str, int], dict[str, int]]:
    """Each task's answer and stated confidence as the platform serves them; status and flag counts."""
    names = {v: k for k, v in ids.items()}
    answers: dict[str, tuple[str | None, float | None]] = {}
    statuses: dict[str, int] = defaultdict(int)
    flags = {"tie": 0, "low_confidence": 0}
    for task in project_tasks(org, project_id):
        statuses[task["status"]] += 1
        result = task.get("result") or {}
        answers[names[task["id"]]] = result_answer(result, task.get("confidence"))
        flags["tie"] += bool(((result.get("questions") or {}).get(QUESTION) or {}).get("tie"))
        flags["low_confidence"] += bool(result.get("low_confidence"))
    return answers, dict(statuses), flags


def result_answer(result: dict[str, Any] | None, confidence: float | None) -> tuple[str | None, float | None]:
    """The question's answer and confidence from a task result (per-question or flat shape)."""
    if not result:
        return None, None
    per_question = (result.get("questions") or {}).get(QUESTION)
    if isinstance(per_question, dict):
        return per_question.get("answer"), per_question.get("confidence")
    answer = (result.get("answer") or {}).get(QUESTION)
    stated = (result.get("confidence") or {}).get(QUESTION, confidence)
    return answer, stated


# --- one data set ----------------------------------------------------------------------------------


def run_crowd(crowd: Crowd, args: argparse.Namespace) -> dict[str, Any]:
    console.rule(f"[bold]{crowd.name}[/bold]")
    out: dict[str, Any] = {
        "tasks": len(crowd.answers),
        "tasks_with_truth": sum(t in crowd.truth for t in crowd.answers),
        "judgments": crowd.judgments,
        "dropped_answers": crowd.dropped,
        "workers": len(crowd.workers),
        "classes": len(crowd.labels),
        "answers_per_task": crowd.answers_per_task,
        "max_overlap": min(MAX_OVERLAP, max(len(a) for a in crowd.answers.values())),
        "full_overlap": full_overlap(crowd),
        "targets": {},
    }
    with tempfile.TemporaryDirectory(prefix=f"truthset-replay-{crowd.name}-") as directory:
        started = time.perf_counter()
        org = Organization(crowd, Path(directory))
        out["setup_seconds"] = time.perf_counter() - started
        try:
            for target in args.targets:
                runs = [replay(org, crowd, target, seed, args) for seed in args.seed]
                out["targets"][f"{target:.2f}"] = dynamic_figures(runs, crowd, target, args.seed)
        finally:
            org.close()
    out["goals"] = crowd_goals(out)
    return out


def dynamic_figures(runs: list[Replayed], crowd: Crowd, target: float, seeds: list[int]) -> dict[str, Any]:
    """The replays of one target (one per seed): scores pooled over them, counts and times summed."""
    judgments = sum(r.progress.judgments for r in runs)
    figures = score([r.answers for r in runs], crowd, judgments)
    stated = [c for r in runs for _, c in r.answers.values() if c is not None]
    seconds = sum(r.seconds for r in runs)
    figures.update(
        below_target=sum(c < target for c in stated),
        judgments=judgments,
        statuses=_summed(r.statuses for r in runs),
        ties=sum(r.flags["tie"] for r in runs),
        low_confidence=sum(r.flags["low_confidence"] for r in runs),
        exhausted=sum(r.progress.exhausted for r in runs),
        unanswered=sum(1 for r in runs for t in crowd.answers if r.answers.get(t, (None, None))[0] is None),
        refits=sum(r.progress.refits for r in runs),
        refit_seconds=sum(r.progress.refit_seconds for r in runs),
        changed_by_refits=sum(r.progress.changed_by_refits for r in runs),
        steps=sum(r.progress.steps for r in runs),
        errors=_summed(r.progress.errors for r in runs),
        seconds=seconds,
        cpu_seconds=sum(r.cpu_seconds for r in runs),
        judgments_per_second=judgments / seconds if seconds else None,
        seeds={str(seed): _seed_figures(r, crowd) for seed, r in zip(seeds, runs, strict=True)},
    )
    return figures


def _seed_figures(run: Replayed, crowd: Crowd) -> dict[str, Any]:
    figures = score([run.answers], crowd, run.progress.judgments)
    return {key: figures[key] for key in ("accuracy", "judgments_per_task", "ece")}


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for count in counts:
        for key, n in count.items():
            total[key] += n
    return dict(total)


def crowd_goals(out: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals for one data set, per target: met or not (never asserted)."""
    ds = out["full_overlap"]["dawid_skene"]
    goals: dict[str, Any] = {"applies": out["answers_per_task"] >= FULL_ANSWERS, "targets": {}}
    for key, fig in out["targets"].items():
        goals["targets"][key] = {
            # "within 0.5 point" includes exactly 0.5 point (EPS: a float difference is not a task)
            "accuracy_within_half_point_of_full_ds": fig["accuracy"] >= ds["accuracy"] - 0.005 - EPS,
            "at_most_half_the_judgments": fig["judgments_per_task"] <= ds["judgments_per_task"] / 2 + EPS,
            "ece_at_most_0.02": fig["ece"] <= 0.02 + EPS,
        }
    goals["all_met_at"] = [key for key, met in goals["targets"].items() if all(met.values())]
    return goals


# --- output ----------------------------------------------------------------------------------------


def print_crowd(name: str, out: dict[str, Any]) -> None:
    table = Table(title=f"{name}: {out['tasks']} tasks, {out['judgments']} judgments, {out['workers']} workers")
    for column in ("method", "accuracy", "judgments/task", "ECE", "mean conf.", "below target", "judgments/s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for key, fig in out["full_overlap"].items():
        table.add_row(f"full overlap, {key.replace('_', ' ')}", *_row(fig), "", "")
    for key, fig in out["targets"].items():
        flagged = f"{fig['below_target']}"
        rate = f"{fig['judgments_per_second']:,.0f}" if fig["judgments_per_second"] else ""
        table.add_row(f"dynamic, target {key}", *_row(fig), flagged, rate)
    console.print(table)
    for key, met in out["goals"]["targets"].items():
        words = ", ".join(f"{goal} {'met' if ok else 'NOT met'}" for goal, ok in met.items())
        scope = "" if out["goals"]["applies"] else f" (goals apply from {FULL_ANSWERS} answers per task)"
        console.print(f"  target {key}: {words}{scope}")
    console.print(f"  every goal met at: {', '.join(out['goals']['all_met_at']) or 'no target'}")
    for key, fig in out["targets"].items():
        if len(fig["seeds"]) > 1:
            each = ", ".join(
                f"seed {seed}: {f['accuracy']:.4f} / {f['judgments_per_task']:.2f}" for seed, f in fig["seeds"].items()
            )
            console.print(f"  target {key}, accuracy / judgments per task by seed: {each}")


def _row(fig: dict[str, Any]) -> list[str]:
    return [
        f"{fig['accuracy']:.4f}",
        f"{fig['judgments_per_task']:.2f}",
        f"{fig['ece']:.4f}",
        f"{fig['mean_confidence']:.3f}",
    ]


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Speed over every replay; also without the refits, which production runs as a background job."""
    figures = [f for d in results.values() for f in d["targets"].values()]
    judgments = sum(f["judgments"] for f in figures)
    seconds = sum(f["seconds"] for f in figures)
    refit_seconds = sum(f["refit_seconds"] for f in figures)
    rate = judgments / seconds if seconds else None
    submits = seconds - refit_seconds
    return {
        "judgments": judgments,
        "seconds": seconds,
        "cpu_seconds": sum(f["cpu_seconds"] for f in figures),
        "refit_seconds": refit_seconds,
        "judgments_per_second": rate,
        "judgments_per_second_without_refits": judgments / submits if submits > 0 else None,
        "seconds_per_100k_judgments": 100_000 / rate if rate else None,
        "under_a_minute_per_100k": bool(rate and 100_000 / rate < 60),
    }


def save_plots(results: dict[str, Any], stem: Path) -> list[str]:
    """Accuracy against judgments per task, and reliability diagrams; [] without matplotlib."""
    return save_figures(results, stem, (("accuracy", accuracy_plot), ("reliability", reliability_plot)))


def save_figures(results: Any, stem: Path, drawings: tuple[tuple[str, Any], ...]) -> list[str]:
    """Each ``(suffix, draw)`` of ``drawings`` as ``<stem>-<suffix>.png`` (``draw(plt, results)``
    makes the figure); the paths written, [] without matplotlib (the models benchmark's too)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("[yellow]matplotlib is not installed (pip install -e '.[bench]'): no plots[/yellow]")
        return []
    paths = []
    for suffix, draw in drawings:
        path = stem.with_name(f"{stem.name}-{suffix}.png")
        figure = draw(plt, results)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        paths.append(str(path))
    return paths


def _panels(plt: Any, count: int, height: float) -> tuple[Any, Any]:
    """One panel per data set, side by side."""
    count = max(1, count)
    return plt.subplots(1, count, figsize=(4.2 * count, height), squeeze=False, layout="constrained")


def accuracy_plot(plt: Any, results: dict[str, Any]) -> Any:
    """Per data set: accuracy against judgments per task, dynamic at each target and full overlap."""
    figure, axes = _panels(plt, len(results), 3.6)
    for ax, (name, out) in zip(axes[0], results.items(), strict=False):
        dynamic = sorted(out["targets"].items())
        ax.plot(
            [f["judgments_per_task"] for _, f in dynamic], [f["accuracy"] for _, f in dynamic], "o-", label="dynamic"
        )
        for key, fig in dynamic:
            ax.annotate(
                key,
                (fig["judgments_per_task"], fig["accuracy"]),
                fontsize=8,
                xytext=(4, -10),
                textcoords="offset points",
            )
        for key, marker in (("majority_vote", "s"), ("dawid_skene", "D")):
            fig = out["full_overlap"][key]
            ax.plot([fig["judgments_per_task"]], [fig["accuracy"]], marker, label=f"full, {key.replace('_', ' ')}")
        ax.set_title(name)
        ax.set_xlabel("judgments per task")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return figure


def reliability_plot(plt: Any, results: dict[str, Any]) -> Any:
    """Per data set: accuracy against stated confidence per bin, one line per target."""
    figure, axes = _panels(plt, len(results), 3.8)
    for ax, (name, out) in zip(axes[0], results.items(), strict=False):
        ax.plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
        for key, fig in sorted(out["targets"].items()):
            bins = fig["reliability"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=f"target {key}")
        ax.set_title(name)
        ax.set_xlabel("stated confidence (bin mean)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA, help="folder of data sets")
    parser.add_argument("--targets", type=float, nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="seeds the order of tasks and of each task's answers; several: one replay each, pooled",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file (default benchmarks/results/replay-<UTC>.json)"
    )
    parser.add_argument(
        "--refit-every",
        type=int,
        default=0,
        help="0 (default): run the refit jobs the platform queues itself; N: an on-demand refit every N judgments",
    )
    parser.add_argument(
        "--annotators",
        type=int,
        default=64,
        help="tasks judged at once: the first N in queue order wanting a judgment (N >= tasks: breadth-first rounds)",
    )
    parser.add_argument(
        "--gold",
        type=int,
        default=0,
        help="mark the first N tasks of the queue gold with their truth once answered (refits calibrate on 30+)",
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    for target in args.targets:
        if not 0.5 < target < 1.0:
            parser.error(f"--targets: {target} is not between 0.5 and 1 (exclusive)")
    if args.annotators < 1:
        parser.error("--annotators must be at least 1")
    if args.gold < 0:
        parser.error("--gold must be 0 or more")
    if args.refit_every < 0:
        parser.error("--refit-every must be 0 (the platform's own refit jobs) or more")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        console.print(f"[red]{args.data_dir} is not a folder[/red]")
        raise SystemExit(2)
    _cheap_passwords()
    crowds, skipped = find_crowds(args.data_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or RESULTS / f"replay-{stamp}.json"
    results = {crowd.name: run_crowd(crowd, args) for crowd in crowds}
    for name, out in results.items():
        print_crowd(name, out)
    for name, reason in skipped.items():
        console.print(f"skipped {name}: {reason}")
    report = {
        "created_at": stamp,
        "data_dir": str(args.data_dir),
        "seeds": args.seed,
        "targets": [f"{t:.2f}" for t in args.targets],
        "refit_every": args.refit_every,
        "gold": args.gold,
        "annotators": args.annotators,
        "database": "SQLite, temporary file, synchronous=NORMAL (no fsync: relaxed for the benchmark)",
        "datasets": results,
        "skipped": skipped,
        "throughput": summary(results),
    }
    thr = report["throughput"]
    if thr["judgments_per_second"]:
        console.print(
            f"replayed {thr['judgments']:,} judgments in {thr['seconds']:.1f} s ({thr['cpu_seconds']:.1f} s CPU): "
            f"{thr['judgments_per_second']:,.0f}/s ({thr['judgments_per_second_without_refits']:,.0f}/s without the "
            f"{thr['refit_seconds']:.1f} s of refits), "
            f"{thr['seconds_per_100k_judgments']:.1f} s per 100,000 (goal under 60 s: "
            f"{'met' if thr['under_a_minute_per_100k'] else 'NOT met'})"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report["plots"] = [] if args.no_plots else save_plots(results, out_path.with_suffix(""))
    out_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    console.print(f"saved {out_path}" + "".join(f", {p}" for p in report["plots"]))
    return report


if __name__ == "__main__":
    main()
