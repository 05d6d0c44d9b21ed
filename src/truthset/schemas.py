"""Pydantic request and response models, shared by ``api/`` and ``client.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from truthset.domain import (
    AssignmentStatus,
    BatchStatus,
    DeliveryStatus,
    JobStatus,
    ReviewStatus,
    Role,
    TaskStatus,
    Verdict,
    WebhookEvent,
    WorkerKind,
)
from truthset.questions import Spec

T = TypeVar("T")


def _aware(value: datetime | None) -> datetime | None:
    """Stored times are naive UTC; the API always says so."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware)]
OptionalTimestamp = Annotated[datetime | None, AfterValidator(_aware)]
#: How deep stored JSON (task data, metadata, answers) may nest. orjson, which stores it, stops at 254.
MAX_JSON_DEPTH = 64
_INT64 = (-(2**63), 2**63 - 1)


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ValueError naming the first place where ``value`` cannot be stored as JSON.

    Stored JSON must survive both databases and orjson: nesting at most ``max_depth`` levels,
    integers within 64 bits, and no NUL character in a string or key (PostgreSQL's ``jsonb`` and
    ``text`` cannot hold one). Iterative, so a hostile depth cannot exhaust the stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            if kind is dict:
                for key, child in item.items():
                    if "\x00" in key:
                        raise ValueError(f"key {key!r} in {path or 'value'} contains a NUL (\\u0000) character")
                    stack.append((child, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
        elif kind is str:
            if "\x00" in item:
                raise ValueError(f"{path or 'value'} contains a NUL (\\u0000) character")
        elif kind is int and not _INT64[0] <= item <= _INT64[1]:
            raise ValueError(f"{path or 'value'} is an integer outside the 64-bit range")


def _stored_json(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value)
    return value


def _storable(value: Any) -> Any:
    check_json(value)
    return value


#: A JSON object that will be stored: bounded depth, 64-bit integers, no NUL (see :func:`check_json`).
JsonObject = Annotated[dict[str, Any], AfterValidator(_stored_json)]
Metadata = Annotated[JsonObject, Field(default_factory=dict, description="Free-form JSON kept with the object.")]


def _model_name(value: str) -> str:
    # a validator rather than a pattern: pydantic's pattern error quotes the regex, not the rule
    if "@" in value or value[:1].isspace():
        raise ValueError("a model name has no '@' (the version follows it) and does not start with a space")
    return value


#: A model's name: a model worker is named ``<name>@<version>``.
ModelName = Annotated[str, AfterValidator(_model_name)]


#: The JSON-schema pattern of a string without NUL (what :meth:`Input._no_nul` enforces).
NO_NUL_PATTERN = r"^[^\x00]*$"


def _no_nul_in_schema(schema: dict[str, Any]) -> None:
    """Say in the JSON schema what ``_no_nul`` enforces, on each string property without a pattern."""
    for prop in schema.get("properties", {}).values():
        for option in (prop, *prop.get("anyOf", ())):
            if option.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(option):
                option["pattern"] = NO_NUL_PATTERN


class Input(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_nul_in_schema)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null at the end.")


# --- organization, members, keys ---------------------------------------------------------------


class MemberCreate(Input):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00\x85]+@[^@\s\x00\x85]+$")
    name: str = Field("", max_length=200)
    role: Role = Role.ANNOTATOR
    password: str | None = Field(None, min_length=12, max_length=200)


class MemberUpdate(Input):
    name: str | None = Field(None, max_length=200)
    role: Role | None = None
    disabled: bool | None = None


class MemberOut(Output):
    id: str
    email: str
    name: str
    role: Role
    worker_id: str | None = None
    created_at: Timestamp
    disabled_at: OptionalTimestamp = None


class ApiKeyCreate(Input):
    name: str = Field("api key", min_length=1, max_length=200)
    member_id: str | None = Field(None, description="Whose key; default: the caller. Owners/admins only.")


class ApiKeyOut(Output):
    id: str
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    member_id: str
    created_at: Timestamp
    last_used_at: OptionalTimestamp = None
    revoked_at: OptionalTimestamp = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret. Shown once: it is stored only as a hash.")


class Me(Output):
    organization_id: str
    organization_name: str
    member: MemberOut


class PasswordChange(Input):
    current_password: str = Field(min_length=1, max_length=1000, description="Your password now.")
    new_password: str = Field(min_length=12, max_length=200, description="At least 12 characters.")


class PasswordChanged(Output):
    member: MemberOut
    sessions_ended: int = Field(description="Your other browser sessions, now signed out.")


class PasswordReset(Output):
    member: MemberOut
    password: str = Field(description="The member's new one-time password. Shown once: it is stored only as a hash.")


class OrganizationCreate(Input):
    name: str = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the name is blank")
        return value.strip()


class OrganizationOut(Output):
    id: str
    name: str
    created_at: Timestamp


class OrganizationCreated(Output):
    organization: OrganizationOut
    member: MemberOut = Field(description="You, as the new organization's owner (same email, name and password).")
    api_key: ApiKeyCreated | None = Field(
        None, description="A key for the new organization (yours work only in theirs). Shown once."
    )


# --- projects ----------------------------------------------------------------------------------


class QuestionPolicy(Input):
    """Per-question overrides of the project-wide overlap and confidence target."""

    min_overlap: int | None = Field(None, ge=1, le=100, description="Judgments every task gets at least.")
    max_overlap: int | None = Field(None, ge=1, le=100, description="Judgments no task gets more of.")
    target_confidence: float | None = Field(
        None, gt=0.5, lt=1.0, description="Stop asking once the answer's confidence reaches this."
    )


class GoldPolicy(Input):
    rate: float = Field(0.0, ge=0.0, le=0.5, description="Share of a worker's tasks that are gold.")
    min_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="Pause a worker whose gold accuracy is surely below this."
    )
    min_answers: int = Field(5, ge=1, le=1000, description="Gold answers before a worker can be paused.")
    qualification: int = Field(
        0, ge=0, le=100, description="Gold tasks a worker must pass (at min_accuracy) before real tasks."
    )


class ReviewPolicy(Input):
    sample_rate: float = Field(0.0, ge=0.0, le=1.0, description="Share of completed tasks sent to review.")
    low_confidence: bool = Field(False, description="Send every task completed below its target to review.")
    fix_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1.0,
        description="The confidence a reviewer's fix states while the reviewer has no gold record on the "
        "project: one expert's judgment, never certainty. Each gold answer of the reviewer moves it toward "
        "their record (this value weighs as much as 10 gold answers).",
    )


class AutoLabelPolicy(Input):
    """Auto-labeling with audits (docs/models.md, "Auto-labeling and audits"): a model version whose
    accuracy on human-verified tasks is surely high enough completes tasks without people."""

    min_accuracy: float = Field(
        0.95,
        gt=0.5,
        lt=1.0,
        description="The lower end of the 95% interval of a model's accuracy on human-verified tasks must reach this.",
    )
    min_verified: int = Field(
        50, ge=1, le=1_000_000, description="Human-verified tasks a model must have predicted before it auto-labels."
    )
    audit_rate: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of would-be auto-labels left to people as audits (seeded by task id)."
    )
    audit_min_agreement: float | None = Field(
        None, gt=0.0, le=1.0, description="Pause a model whose audits agree less often than this (null: min_accuracy)."
    )
    audit_min_count: int = Field(20, ge=1, le=1_000_000, description="Audits a model needs before it can be suspended.")

    @property
    def audit_target(self) -> float:
        return self.audit_min_agreement if self.audit_min_agreement is not None else self.min_accuracy


class RetrainPolicy(Input):
    """Retrain the built-in text model as trusted results accumulate (docs/models.md, "Retraining")."""

    question: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The text `label`/`labels` question to learn (default: the spec's first such question).",
    )
    every: int = Field(
        200, ge=10, le=1_000_000, description="Queue a model.train job once this many new training labels are in."
    )


class QualityPolicy(Input):
    """How many judgments a task gets and when its answer is good enough (docs/quality.md).

    A fixed overlap is ``min_overlap = max_overlap``; ``overlap`` is a shorthand for it. With
    ``max_overlap > min_overlap`` a ``target_confidence`` is required: a task completes as soon as
    every deciding question reaches it (after ``min_overlap``), and asks one more worker while below.
    """

    overlap: int | None = Field(None, ge=1, le=100, description="Shorthand: min_overlap = max_overlap = overlap.")
    min_overlap: int | None = Field(None, ge=1, le=100, description="Judgments every task gets at least.")
    max_overlap: int | None = Field(None, ge=1, le=100, description="Judgments no task gets more of.")
    target_confidence: float | None = Field(
        None, gt=0.5, lt=1.0, description="Stop asking once every deciding question's confidence reaches this."
    )
    questions: dict[str, QuestionPolicy] = Field(default_factory=dict, description="Per-question overrides.")
    deciding: list[str] | None = Field(
        None, description="Questions whose confidence decides completion (default: the spec's required ones)."
    )
    at_max_overlap: Literal["complete", "review"] = Field(
        "complete", description="A task still below target at max_overlap: complete flagged, or send to review."
    )
    gold: GoldPolicy = Field(default_factory=GoldPolicy)
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    prefill_predictions: bool = Field(
        False,
        description="Serve each lease with the best model prediction per question, which the workbench "
        "starts from; the response records whether it was kept (docs/models.md).",
    )
    price_per_judgment: float | None = Field(
        None, ge=0, le=1_000_000, description="What one judgment costs, for the dashboard's cost (any currency)."
    )
    auto_label: AutoLabelPolicy | None = Field(
        None, description="Let eligible model workers complete tasks without people, with audits (null: off)."
    )
    ordering: Literal["priority", "uncertainty", "model_uncertainty"] = Field(
        "priority",
        description="The queue's order within a priority: oldest first (`priority`); started tasks first, the "
        "least certain first, then the rest oldest first (`uncertainty`); or that and the untouched tasks by "
        "their model's uncertainty (`model_uncertainty`: active learning, docs/quality.md).",
    )
    retrain: RetrainPolicy | None = Field(
        None, description="Retrain the built-in text model every `every` new training labels (null: off)."
    )

    @model_validator(mode="after")
    def _overlaps(self) -> QualityPolicy:
        if self.overlap is not None:
            for name in ("min_overlap", "max_overlap"):
                if getattr(self, name) not in (None, self.overlap):
                    raise ValueError(f"overlap is a shorthand for min_overlap = max_overlap; it contradicts {name}")
            self.min_overlap = self.max_overlap = self.overlap
            self.overlap = None
        low = self.min_overlap or 1
        self.min_overlap = low
        if self.max_overlap is None:
            self.max_overlap = low
        elif self.max_overlap < low:  # never raised silently: a ceiling the customer set is a budget
            raise ValueError(f"max_overlap ({self.max_overlap}) must be at least min_overlap ({low})")
        for name, rule in self.questions.items():
            q_low = rule.min_overlap or low
            q_high = rule.max_overlap or max(q_low, self.max_overlap)  # an inherited ceiling rises to the floor
            if q_high < q_low:
                raise ValueError(f"questions.{name}: max_overlap must be at least min_overlap")
            if q_high > q_low and (rule.target_confidence or self.target_confidence) is None:
                raise ValueError(f"questions.{name}: a max_overlap above min_overlap needs a target_confidence")
        if self.max_overlap > low and self.target_confidence is None and not self.questions:
            raise ValueError("a max_overlap above min_overlap needs a target_confidence (when to stop asking)")
        return self

    def stored(self) -> dict[str, Any]:
        """The normalised policy as projects store it (``overlap`` expanded)."""
        return self.model_dump(mode="json", exclude={"overlap"})


class ProjectCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    instructions: str = Field("", max_length=200_000, description="Markdown shown to workers.")
    spec: Spec
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    lease_seconds: int | None = Field(None, ge=10, le=7 * 24 * 3600, description="Task lease length.")


class ProjectUpdate(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    instructions: str | None = Field(None, max_length=200_000)
    quality: QualityPolicy | None = None
    lease_seconds: int | None = Field(None, ge=10, le=7 * 24 * 3600)
    archived: bool | None = None
    spec: Spec | None = Field(
        None, description="A new spec: once the project holds work, only changes docs/guide.md allows (else 409)."
    )


class ProjectDeletion(Input):
    confirm: str = Field(
        min_length=1,
        max_length=200,
        description="The project's name, repeated: a guard against deleting the wrong project for good.",
    )


class MediaPruning(Input):
    older_than_hours: float = Field(
        24.0,
        ge=0,
        le=87_600,
        description="Remove only images uploaded more than this many hours ago (an upload awaiting its tasks stays).",
    )


class SpecCheck(Input):
    """A spec (and optionally a policy) to check without saving: the spec editor's live check."""

    spec: Spec
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    project_id: str | None = Field(None, description="Also check the change against this project's stored work.")


class SpecChecked(Output):
    spec: dict[str, Any] = Field(description="The spec as it would be stored.")
    quality: dict[str, Any] = Field(description="The policy as it would be stored.")
    questions: list[dict[str, Any]] = Field(
        description="Each question as the workbench gets it (defaults filled, options as objects)."
    )


class QuestionTypeOut(Output):
    """A question type a spec may use, and the JSON schema of its question config."""

    name: str = Field(description="The `type` value of a question in a spec.")
    description: str = Field(description="What the type asks, in one line.")
    config_schema: dict[str, Any] = Field(description="JSON Schema of a question of this type in a spec.")


class ProjectOut(Output):
    id: str
    name: str
    description: str
    instructions: str
    spec: dict[str, Any]
    quality: dict[str, Any]
    lease_seconds: int
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: OptionalTimestamp = None


# --- batches -----------------------------------------------------------------------------------


class BatchCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    metadata: Metadata


class BatchOut(Output):
    id: str
    project_id: str
    name: str
    status: BatchStatus
    metadata: dict[str, Any]
    created_at: Timestamp
    finalized_at: OptionalTimestamp = None
    completed_at: OptionalTimestamp = None
    counts: dict[str, int] = Field(default_factory=dict, description="Tasks per status.")


# --- tasks -------------------------------------------------------------------------------------


class TaskCreate(Input):
    data: JsonObject = Field(description="Values of the project's fields.")
    unique_id: str | None = Field(None, min_length=1, max_length=400, description="Your id; makes creation idempotent.")
    priority: int = Field(0, ge=-1_000_000, le=1_000_000, description="Higher is served first.")
    metadata: Metadata
    batch_id: str | None = None
    overlap: int | None = Field(None, ge=1, le=100, description="Override the project's overlap.")


class TaskOut(Output):
    id: str
    project_id: str
    batch_id: str | None
    unique_id: str | None
    data: dict[str, Any]
    metadata: dict[str, Any]
    priority: int
    status: TaskStatus
    overlap: int
    response_count: int
    result: dict[str, Any] | None = None
    confidence: float | None = None
    review_status: ReviewStatus | None = Field(None, description="Null: never sent to review (docs/quality.md).")
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: OptionalTimestamp = None


class TaskCreated(TaskOut):
    created: bool = Field(description="False when a task with this unique_id already existed.")


class ImportLineError(Output):
    line: int = Field(
        description="1-based: the JSONL line, the JSON array item, the CSV file line (the header is 1), "
        "the Parquet row, or the zip entry (images in name order)."
    )
    message: str


class ImportReport(Output):
    received: int
    created: int
    existing: int = Field(
        description="Lines whose unique_id (or, without one, whose data and metadata) the project already "
        "had; nothing was created for them."
    )
    invalid: int
    errors: list[ImportLineError] = Field(description="The first 100 invalid lines.")
    stored: bool = Field(description="False when on_error=reject and some line was invalid: nothing was stored.")
    checked: int = Field(
        description="Lines validated. Less than received when on_error=reject stopped checking after "
        "listing 100 errors: the rest of the body was read and counted, not checked."
    )


# --- queue and responses -----------------------------------------------------------------------


class PrefillOut(Output):
    response_id: str = Field(description="The prediction (a model worker's response).")
    worker_id: str
    model: str = Field(description="The model worker's name: name@version.")
    answer: Any
    score: float | None


class AssignmentOut(Output):
    id: str
    task: TaskOut
    worker_id: str
    status: AssignmentStatus
    created_at: Timestamp
    expires_at: Timestamp
    display: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Per compared `responses` field, the task indexes of its candidates in the order this "
        "assignment shows them (a ranking's blind, per-worker shuffle; docs/questions.md).",
    )
    predictions: dict[str, PrefillOut] = Field(
        default_factory=dict,
        description="Per question, the prediction to start from (only with the policy's prefill_predictions; "
        "docs/models.md). Send its response_id back in the response's `prefill`.",
    )


class ResponseCreate(Input):
    answer: JsonObject
    assignment_id: str | None = None
    duration_ms: int | None = Field(None, ge=0, le=7 * 24 * 3600 * 1000)
    prefill: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=24)]] | None = Field(
        None,
        max_length=500,
        description="Per question, the response_id of the prediction the form was pre-filled with (from the "
        "lease's `predictions`): the server records whether the answer kept it unchanged.",
    )


class ResponseOut(Output):
    id: str
    task_id: str
    worker_id: str
    assignment_id: str | None
    answer: dict[str, Any]
    duration_ms: int | None
    created_at: Timestamp
    prefill: dict[str, Any] | None = Field(
        None, description="Per pre-filled question: the prediction shown and whether it was kept (`accepted`)."
    )
    scores: dict[str, float] | None = Field(
        None, description="A model's prediction: its score per question (null for a person's response)."
    )


class SubmitResult(Output):
    response: ResponseOut
    task: TaskOut


# --- review and history ------------------------------------------------------------------------


class ReviewCreate(Input):
    verdict: Verdict = Field(description="accept, reject (with a reason) or fix (with the corrected answer).")
    reason: str | None = Field(None, max_length=2000, description="Required to reject; optional otherwise.")
    answer: JsonObject | None = Field(None, description="The corrected answer of a fix, as a response's answer.")


class ReviewOut(Output):
    id: str
    task_id: str
    project_id: str
    reviewer_id: str = Field(description="The reviewer's worker.")
    reviewer_name: str | None = None
    verdict: Verdict
    reason: str | None
    response_id: str | None = Field(description="A fix's response (the reviewer's answer).")
    created_at: Timestamp


class ReviewResult(Output):
    review: ReviewOut
    task: TaskOut


class ReviewResponse(ResponseOut):
    worker_name: str | None
    worker_kind: WorkerKind | None


class ReviewItem(Output):
    task: TaskOut
    responses: list[ReviewResponse] = Field(description="Every response to the task, oldest first.")
    expires_at: Timestamp = Field(description="The review claim ends then: the task goes back to the review queue.")


class HistoryStep(Output):
    at: Timestamp
    kind: str = Field(description="created, leased, lease_skipped|released|expired, response, or a task event's kind.")
    worker_id: str | None
    worker_name: str | None
    data: dict[str, Any]


class WorkerOut(Output):
    id: str
    kind: WorkerKind
    name: str
    member_id: str | None
    created_at: Timestamp


class MediaOut(Output):
    id: str
    sha256: str
    content_type: str
    size: int
    filename: str
    width: int | None = Field(None, description="Pixels, read when the image was decoded (null: stored before that).")
    height: int | None = None
    reference: str = Field(description="Use as an image field's value: media:<id>.")
    created_at: Timestamp
    created_by: str | None = Field(
        None, description="The member who first uploaded the file (null for images stored before 2026-12-03)."
    )


# --- quality figures -----------------------------------------------------------------------------


class QuestionAgreement(Output):
    question: str
    type: str
    answers: int = Field(description="Answers to this question.")
    tasks: int = Field(description="Tasks with two or more answers to this question (the ones agreement uses).")
    workers: int = Field(description="Workers who answered this question.")
    percent_agreement: float | None = Field(description="Mean share of agreeing answer pairs per task.")
    fleiss_kappa: float | None
    cohens_kappa: float | None = Field(description="Only when exactly two workers answered every task.")
    krippendorff_alpha: float | None
    alpha_level: Literal["nominal", "ordinal"] | None = Field(description="Krippendorff's alpha level used.")
    reasons: dict[str, str] = Field(description="Why a figure is null, keyed by the figure's name.")
    measures: dict[str, float | None] = Field(
        default_factory=dict,
        description="A type's own agreement measures (e.g. span F1, mean IoU); empty for categorical types.",
    )


class AgreementOut(Output):
    project_id: str
    batch_id: str | None
    responses: int
    questions: list[QuestionAgreement]


class QualityModelOut(Output):
    key: str = Field(
        description="What the model is fitted on: a question, `question[option]` (a multi-select's yes/no "
        "question per option) or `question[criterion]` (a rubric's)."
    )
    question: str = Field(description="The spec's question the key belongs to.")
    version: int = Field(description="Counts the project's fits of this key: results name it as `model_version`.")
    method: str = Field(description="The estimator: `dawid_skene`, `worker_variance`, `dawid_skene_pairs`...")
    fitted_at: datetime
    responses: int = Field(description="Answers the fit read (models' newest predictions included).")
    tasks: int = Field(description="Items they answered (a ranking's: pairs of candidates).")
    workers: int = Field(description="Workers (people and model versions) the model knows.")
    fit_seconds: float
    gold_tasks: int = Field(description="Gold tasks the confidence is calibrated on (0: from the answers alone).")
    temperature: float | None = Field(description="A categorical model's tempering of its posteriors (1: none).")
    shared_sd: float | None = Field(
        description="A numeric model's error the crowd shares, in the question's units (measured on gold, else "
        "assumed as large as the median worker's noise)."
    )


class QualityModelsOut(Output):
    project_id: str
    items: list[QualityModelOut] = Field(description="The current model of each fitted key, in key order.")


class WorkerFigures(Output):
    worker_id: str
    name: str
    kind: WorkerKind
    responses: int = Field(description="Responses (tasks answered).")
    answers: int = Field(description="Question answers given (a response answers one or more questions).")
    median_duration_ms: float | None = Field(description="Median time per task, from responses' duration_ms.")
    mean_duration_ms: float | None
    agreement_with_results: float | None = Field(
        description="Share of answers equal to the current result of completed tasks (a number: within the "
        "question's tolerance of it), over all questions."
    )
    agreement_with_results_by_question: dict[str, float]
    compared_with_results: int = Field(description="Answers compared with a completed task's result.")
    estimated_accuracy: float | None = Field(
        description="Leave-one-out agreement with the other workers (their strict majority; a number: within the "
        "question's tolerance of their median): an estimate, not gold."
    )
    accuracy_interval: list[float] | None = Field(description="95% Wilson score interval of estimated_accuracy.")
    scored_answers: int = Field(
        description="Answers with a strict majority of 2+ other answers to compare with (a number: 2+ other answers)."
    )
    measured: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="What the project's fitted worker models measured of this worker, per fitted model (a question, "
        "`question[option]`, `question[criterion]`): `accuracy` (how often a categorical model has them right) or "
        "`noise_sd` (how far a numeric model has their numbers stray). Empty before a refit knows the worker.",
    )
    reviewed: int = Field(0, description="Responses a reviewer judged (accepted, rejected or fixed the task).")
    review_accepted: int = Field(0, description="Reviewed responses upheld: the task accepted, or a fix equal to them.")
    review_rejected: int = Field(0, description="Reviewed responses overruled: the task rejected, or fixed otherwise.")
    # gold (docs/quality.md, "Gold"): null status for a worker gold has not met on this project
    status: Literal["active", "qualifying", "paused"] | None = Field(
        None, description="The worker's standing on the project: active, qualifying or paused (by gold)."
    )
    status_reason: str | None = Field(None, description="Why the worker is paused (or was reinstated), with figures.")
    tasks_served: int = Field(0, description="Tasks leased to the worker on this project since gold was on.")
    gold_served: int = Field(0, description="Gold tasks among them.")
    gold_answers: int = Field(0, description="Gold tasks answered (since the last reinstatement).")
    gold_correct: float = Field(0.0, description="Their score: a share of questions right per answer, summed.")
    gold_accuracy: float | None = Field(None, description="gold_correct / gold_answers.")
    gold_interval: list[float] | None = Field(
        None, description="95% Jeffreys interval of gold_accuracy: wide while the worker has few gold answers."
    )
    # a model worker's predictions shown pre-filled to people (docs/models.md, "Pre-fill")
    prefill_shown: int = Field(0, description="Answers of people whose form started from this model's prediction.")
    prefill_accepted: int = Field(0, description="Of those, answers that kept the prediction unchanged.")
    acceptance_rate: float | None = Field(None, description="prefill_accepted / prefill_shown (null when never shown).")
    # auto-labeling (docs/models.md, "Auto-labeling and audits"): zeros and nulls for people
    auto_labeled: int = Field(0, description="Tasks this model worker completed without people (auto-labeled).")
    auto_labels_reopened: int = Field(0, description="Of those, tasks sent back to people when the model was paused.")
    audits: int = Field(0, description="Audits people completed (auto-labels left to people), since reinstated.")
    audits_agreed: int = Field(0, description="Audits whose people's answer equals the model's.")
    audit_agreement: float | None = Field(None, description="audits_agreed / audits (null before any audit).")
    suspended: str | None = Field(None, description="Why the model may not auto-label (paused, with figures), or null.")
    verified_tasks: int = Field(0, description="Human-verified tasks (people's results, reviews, gold) it predicted.")
    verified_accuracy: float | None = Field(None, description="Its accuracy on those tasks.")
    verified_interval: list[float] | None = Field(None, description="95% Jeffreys interval of verified_accuracy.")
    auto_label_eligible: bool = Field(False, description="Whether the auto_label policy lets it auto-label now.")
    auto_label_blocked_by: str | None = Field(
        None, description="Why it may not auto-label (policy off, paused, too few verified tasks, accuracy) or null."
    )


class WorkerStats(WorkerFigures):
    project_id: str
    batch_id: str | None


# --- gold ----------------------------------------------------------------------------------------


class GoldCreate(Input):
    answer: JsonObject = Field(description="The known answer, as a response would give it (checked against the spec).")


class GoldOut(TaskOut):
    gold: dict[str, Any] | None = Field(None, description="The gold answer (null once unmarked).")


class GoldImportReport(Output):
    received: int = Field(description="Lines of the CSV after its header.")
    marked: int = Field(description="Tasks that became gold.")
    updated: int = Field(description="Gold tasks whose answer was replaced.")


class WorkerStanding(Output):
    project_id: str
    worker_id: str
    status: Literal["active", "qualifying", "paused"]
    reason: str | None
    tasks_served: int
    gold_served: int
    gold_answers: int
    gold_correct: float
    updated_at: Timestamp


# --- jobs ----------------------------------------------------------------------------------------


class JobProgress(Output):
    done: int = Field(description="Units of work done so far (the handler says what a unit is).")
    total: int | None = Field(description="Units in all, once known.")


class JobOut(Output):
    id: str
    kind: str = Field(description="What the job does: `quality.refit`, `export`, `webhook.deliver`...")
    status: JobStatus
    payload: dict[str, Any] = Field(description="What the job works on (given by whoever enqueued it).")
    dedupe_key: str | None = Field(description="While queued, at most one job of the organization has this key.")
    attempts: int = Field(description="Runs started so far (a retry or a resume after a lost runner adds one).")
    max_attempts: int
    run_after: Timestamp = Field(description="Not run before this time (a retry waits out its backoff).")
    locked_by: str | None = Field(description="The runner running it: host:pid:token:slot.")
    locked_until: OptionalTimestamp = Field(description="Its runner's lease; past it another runner resumes the job.")
    progress: JobProgress
    result: Any = Field(
        None, description="What the handler returned, once succeeded (or a failed import's report of its bad lines)."
    )
    error: str | None = Field(description="The last failure (kept while a retry waits).")
    created_by: str | None = Field(description="The member whose action enqueued it (null: the system).")
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: OptionalTimestamp = None


# --- exports (issue 10) -----------------------------------------------------------------------------


class ExportCreate(Input):
    """An export job: which format, and which tasks (completed ones by default)."""

    format: str = Field("jsonl", min_length=1, max_length=40, description="File format: `jsonl`, `csv`, `parquet`...")
    status: TaskStatus | None = Field(TaskStatus.COMPLETED, description="Only tasks in this status.")
    all_statuses: bool = Field(False, description="Every task, whatever its status (overrides `status`).")
    batch_id: str | None = Field(None, max_length=24, description="Only this batch's tasks.")
    min_confidence: float | None = Field(
        None, ge=0, le=1, description="Only tasks whose result has at least this confidence."
    )
    review_status: ReviewStatus | None = Field(
        None, description="Only tasks at this review stage: `accepted`, `rejected`, `fixed`, `pending`, `reviewing`."
    )
    updated_since: datetime | None = Field(
        None,
        description="Only tasks changed since then: the `cursor` of a previous export job's result (a delta "
        "export), or any ISO 8601 time (UTC when it names no zone).",
    )
    questions: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Only these questions (names; default every question): the answer columns of `csv` and "
        "`parquet`, the shape questions of `coco`, `yolo` and `voc` (a YOLO dataset holds boxes or polygons, "
        "not both), the span questions of `conll` and `spacy`, the ranking questions of `preferences`, the "
        "results of `label_studio`. `jsonl` writes each task whole and refuses it.",
    )


# --- task browser: bulk actions ----------------------------------------------------------------


class TaskBulkFilter(Input):
    """The task browser's filters (as ``GET /tasks`` takes them): "every task matching"."""

    status: TaskStatus | None = None
    batch_id: str | None = Field(None, max_length=24)
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    worker_id: str | None = Field(None, max_length=24)
    gold: bool | None = None
    review_status: ReviewStatus | None = None
    unreviewed: bool = False
    metadata: dict[str, str] = Field(default_factory=dict, max_length=20)
    search: str | None = Field(None, min_length=1, max_length=200)


class TaskBulkAction(Input):
    """One action on tasks named by ``ids`` or by ``filter`` (exactly one of the two)."""

    action: Literal["cancel", "requeue", "set_priority", "promote_gold"]
    ids: list[Annotated[str, Field(max_length=24)]] | None = Field(None, max_length=10_000)
    filter: TaskBulkFilter | None = None
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1, description="For set_priority.")
    dry_run: bool = Field(False, description="Only count the tasks matched; change nothing.")


class TaskBulkResult(Output):
    matched: int = Field(description="Tasks of the project the selection named.")
    changed: int = Field(description="Tasks the action changed.")
    skipped: int = Field(description="Tasks the action does not apply to (e.g. cancelling a completed task).")


# --- webhooks ------------------------------------------------------------------------------------

WebhookUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        description="Where deliveries are POSTed (http or https). It must pass the network guard: a loopback, "
        "private or link-local address is refused unless the server's settings allow it.",
    ),
]


class WebhookCreate(Input):
    url: WebhookUrl
    events: list[WebhookEvent] = Field(min_length=1, description="The events to deliver.")
    project_id: str | None = Field(None, description="Only this project's events; default: every project.")
    description: str = Field("", max_length=200)
    active: bool = Field(True, description="An inactive subscription gets no new deliveries.")


class WebhookUpdate(Input):
    url: WebhookUrl | None = None
    events: list[WebhookEvent] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None


class WebhookOut(Output):
    id: str
    url: str
    events: list[WebhookEvent]
    project_id: str | None = Field(description="The project whose events it gets; null: every project.")
    description: str
    active: bool
    created_by: str | None
    created_at: Timestamp
    updated_at: Timestamp
    secret_rotated_at: OptionalTimestamp = None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (HMAC-SHA256, see the webhooks docs). Shown once, here; "
        "rotate it to get a new one."
    )


class WebhookAttemptOut(Output):
    attempt: int = Field(description="1 for the first POST of the delivery, then 2, 3...")
    status_code: int | None = Field(description="The receiver's HTTP status; null when there was no answer.")
    error: str | None = Field(description="Why the attempt failed (null when delivered).")
    duration_ms: int
    created_at: Timestamp = Field(description="When the attempt started.")


class WebhookDeliveryOut(Output):
    id: str = Field(description="The delivery id: the `X-Truthset-Delivery` header, the same on every attempt.")
    webhook_id: str
    event: WebhookEvent
    project_id: str | None
    status: DeliveryStatus
    attempts: int = Field(description="POSTs made so far.")
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: OptionalTimestamp = Field(description="When a pending delivery is tried again.")
    payload: dict[str, Any] = Field(description="The body's `data`.")
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: OptionalTimestamp = None


class WebhookDeliveryDetail(WebhookDeliveryOut):
    history: list[WebhookAttemptOut] = Field(description="Every attempt, oldest first.")


# --- predictions (docs/models.md) ----------------------------------------------------------------


class PredictionIn(Input):
    task_id: str | None = Field(None, max_length=24, description="The task (or give its unique_id).")
    unique_id: str | None = Field(None, min_length=1, max_length=400, description="The task's unique_id.")
    question: str = Field(min_length=1, max_length=64, description="The question predicted.")
    answer: Annotated[Any, AfterValidator(_storable)] = Field(
        description="The predicted answer to that question, as a response would give it."
    )
    score: float = Field(ge=0.0, le=1.0, description="The model's own score for it, in [0, 1].")

    @model_validator(mode="after")
    def _one_task_key(self) -> PredictionIn:
        if (self.task_id is None) == (self.unique_id is None):
            raise ValueError("give exactly one of task_id and unique_id")
        return self


class PredictionUpload(Input):
    model: ModelName = Field(min_length=1, max_length=100, description="Model name (no '@').")
    version: str = Field(min_length=1, max_length=60, description="Model version: each version is its own worker.")
    predictions: list[PredictionIn] = Field(min_length=1, max_length=5000)
    on_error: Literal["reject", "skip"] = Field(
        "reject", description="reject: store nothing if any prediction is bad; skip: store the good ones."
    )


class PredictionError(Output):
    index: int = Field(description="0-based position of the prediction in the upload.")
    field: str
    message: str


class PredictionReport(Output):
    model: str = Field(description="The model worker's name: name@version.")
    worker_id: str | None = Field(description="The model worker (null when nothing was stored and it did not exist).")
    received: int
    stored: int = Field(description="Predictions stored (question answers).")
    responses_created: int = Field(description="Responses created (one per task the model version predicted).")
    unchanged: int = Field(description="Predictions already stored exactly so (a repeated upload): nothing written.")
    invalid: int
    errors: list[PredictionError] = Field(description="The first 100 refused predictions.")


class PredictionOut(Output):
    response_id: str
    worker_id: str
    model: str = Field(description="The model worker's name: name@version.")
    answer: dict[str, Any] = Field(description="Per question, the predicted answer.")
    scores: dict[str, float] = Field(description="Per question, the model's score.")
    created_at: Timestamp


# --- the project dashboard (issue 11) ------------------------------------------------------------


class DashboardProgress(Output):
    staged: int
    pending: int
    completed: int
    canceled: int
    gold: int
    total: int


class ThroughputPoint(Output):
    start: Timestamp = Field(description="The start of the hour (or day), UTC.")
    responses: int = Field(description="Responses received in it.")


class Throughput(Output):
    interval: Literal["hour", "day"]
    since: Timestamp = Field(description="The first bucket's start: the last 48 hours, or the last 30 days.")
    points: list[ThroughputPoint] = Field(description="One per bucket, oldest first, empty ones included.")


class JudgmentsBin(Output):
    judgments: int = Field(description="Judgments (responses) a task has; the last bin counts this many or more.")
    tasks: int


class ConfidenceBin(Output):
    low: float
    high: float = Field(description="The bin is [low, high); the last one includes 1.")
    tasks: int


class DashboardQuestion(Output):
    question: str
    type: str
    tasks: int = Field(description="Sampled tasks with two or more answers to this question.")
    percent_agreement: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    measures: dict[str, float | None] = Field(
        default_factory=dict,
        description="A type's own agreement figures where answers are not compared as categories "
        "(boxes and polygons: `mean_iou`, `f1_iou50`; spans: `span_f1_exact`, `span_f1_overlap`; ...).",
    )
    reason: str | None = Field(None, description="Why the figures are null, if they are.")


class DashboardWorker(Output):
    worker_id: str
    name: str
    kind: WorkerKind
    responses: int = Field(description="Responses in the project.")
    mean_duration_ms: float | None = Field(description="Mean time per task, from responses' duration_ms.")
    last_response_at: OptionalTimestamp
    agreement_with_results: float | None = Field(description="On the sampled tasks: share equal to the result.")
    estimated_accuracy: float | None = Field(
        None, description="On the sampled tasks: leave-one-out agreement with the other workers (see WorkerFigures)."
    )
    accuracy_interval: list[float] | None = Field(None, description="95% Wilson score interval of estimated_accuracy.")
    scored_answers: int = Field(0, description="Sampled answers the estimate compared with 2+ other answers.")
    measured: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="What the fitted worker models measured of the worker (see WorkerFigures)."
    )
    gold_answers: int
    gold_accuracy: float | None
    gold_interval: list[float] | None = Field(description="95% Jeffreys interval of gold_accuracy.")
    status: Literal["active", "qualifying", "paused"] | None = Field(description="Standing by gold (null: not met).")
    status_reason: str | None
    # a model worker's auto-labeling (docs/models.md, "Auto-labeling and audits"); zeros for people
    auto_labeled: int = Field(0, description="Tasks it completed without people.")
    audits: int = Field(0, description="Audits people completed, since reinstated.")
    audits_agreed: int = Field(0, description="Audits whose people's answer equals the model's.")
    audit_agreement: float | None = Field(None, description="audits_agreed / audits.")


class DashboardWorkers(Output):
    items: list[DashboardWorker]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next workers; null at the end.")


class DashboardCost(Output):
    judgments: int = Field(description="Responses in the project (every judgment counts, gold included).")
    price_per_judgment: float | None = Field(description="From the quality policy; null when not set.")
    total: float | None = Field(description="judgments x price_per_judgment; null without a price.")


class DashboardOut(Output):
    project_id: str
    generated_at: Timestamp
    progress: DashboardProgress
    throughput: Throughput
    judgments: list[JudgmentsBin]
    confidence: list[ConfidenceBin]
    without_confidence: int = Field(description="Tasks with no confidence yet (no result).")
    sample_tasks: int = Field(description="The most recent tasks with answers that agreement is computed on.")
    agreement: list[DashboardQuestion]
    workers: DashboardWorkers
    quality_models: list[QualityModelOut] = Field(description="The fitted worker models (as `/quality-models`).")
    cost: DashboardCost


# --- the built-in text model (issue 13) ----------------------------------------------------------------


class ModelTrainCreate(Input):
    question: str = Field(min_length=1, max_length=64, description="The text `label` or `labels` question to learn.")


class ProjectModelOut(Output):
    id: str
    project_id: str
    question: str
    version: str = Field(description="A digest of the training data and settings: the same data, the same version.")
    model: str = Field(description="The model worker its predictions are stored as: truthset-text@<version>.")
    sha256: str = Field(description="The model file's digest, recorded when it was written; checked on every load.")
    metrics: dict[str, Any] = Field(
        description="Cross-validated accuracy, the majority baseline's accuracy, ECE, Brier score, examples per "
        "class, and the training labels per source (gold, reviewed, confident, below_target)."
    )
    status: str
    created_at: Timestamp


# --- the queue's order (active learning, issue 13) ----------------------------------------------------


class QueueTaskOut(Output):
    id: str
    unique_id: str | None
    priority: int
    queue_rank: int = Field(
        description="Its place within its priority (lowest first): 0 unless the policy's ordering is "
        "`uncertainty` or `model_uncertainty`, where started tasks rank below 0, new ones at 0, ranked "
        "untouched ones above."
    )
    response_count: int
    lease_count: int
    overlap: int
    confidence: float | None = Field(description="Its posterior's confidence, once a result was computed.")
