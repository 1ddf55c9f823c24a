"""Request and response schemas, named by role (``RunCreate``, ``RunPublic``, ``RunsPublic``...).

Non-finite numbers: JSON has no literal for them, so the API writes them as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (``monitor.encoding``). On ingest it accepts
those strings (and the bare ``NaN``/``Infinity`` tokens Python's json module writes) as well
as ordinary numbers.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from monitor.encoding import MAX_DEPTH, shown, stored_safe, text_fault
from monitor.rules import families, vocabulary

# -- text: what every string the API accepts must be ----------------------------------------
# Text the server stores and writes back as JSON: valid Unicode (no lone surrogates, which a
# JSON "\ud800" escape can carry but UTF-8 cannot encode) and no NUL (PostgreSQL's text cannot
# hold one). Refused with a 422 naming where, before anything is stored.
MAX_CONFIG_BYTES = 64 * 1024  # a run's config, as JSON


def _plain_text(value: str) -> str:
    fault = text_fault(value)
    if fault is not None:
        raise ValueError(f"the text {fault}")
    return value


# A str field of a request: plain text (see text_fault).
PlainText = AfterValidator(_plain_text)


def _place(at: tuple | None) -> str:
    """A place in a body as (parent, key or index) links: ``config.a[3].b``."""
    parts = []
    while at is not None:
        at, part = at
        parts.append(part)
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{shown(p, 40)}"
                   for p in reversed(parts)).lstrip(".")
    if not path:
        return "the body"
    return path if len(path) <= 120 else f"{path[:60]}...{path[-50:]}"


def check_tree(value: Any, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Every string of a decoded JSON value (object keys too) is plain text, and it nests at
    most ``max_depth`` deep; raises ValueError naming the first place at fault."""
    stack = [(value, (None, where) if where else None, 0)]
    while stack:  # iterative: a deep body must not exhaust the interpreter's stack
        item, at, depth = stack.pop()
        if isinstance(item, str):
            fault = text_fault(item)
            if fault is not None:
                raise ValueError(f"{_place(at)}: the text {fault}")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise ValueError(f"{_place(at)}: nested more than {max_depth} deep; "
                                 f"the limit is {max_depth} levels")
            if isinstance(item, dict):
                for k, v in item.items():
                    key = str(k)
                    fault = text_fault(key)
                    if fault is not None:
                        raise ValueError(f"{_place(at)}: the key '{shown(key)}' {fault}")
                    stack.append((v, (at, key), depth + 1))
            else:
                stack.extend((v, (at, i), depth + 1) for i, v in enumerate(item))


class PlainTextBody(BaseModel):
    """A request body whose every string (object keys too) must be plain text: checked on the
    whole body before any field is, so its fields need no check of their own."""

    @model_validator(mode="before")
    @classmethod
    def _plain_text_everywhere(cls, data: Any) -> Any:
        check_tree(data, "", max_depth=MAX_DEPTH + 2)
        return data


RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
BatchId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
SeriesKey = Annotated[str, StringConstraints(min_length=1, max_length=200), PlainText]
# A time in seconds since the epoch: finite (NaN and Infinity are data in values, not times).
WallTime = Annotated[float, Field(allow_inf_nan=False)]
# float (not a strict float) so that "NaN", "Infinity" and "-Infinity" strings parse too.
Value = float


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RunId | None = Field(None, description="Client-made run id; an existing id resumes it.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # text: _plain_text()
    project: Annotated[str, StringConstraints(
        min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] | None = Field(
        None, description="The run's project (default: the token's, or \"default\")")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Any JSON object, at most {MAX_DEPTH} levels deep and {MAX_CONFIG_BYTES} "
                    "bytes as JSON; non-finite numbers are stored as the strings \"NaN\", "
                    "\"Infinity\" and \"-Infinity\".")
    resume: bool = Field(
        False, description="Without an id: resume the newest run with this name, if there is one."
    )
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description='Rule settings for this run: {"rule": {"param": value}}, or {"rule": false} '
                    "to silence a rule. See GET /api/v1/rules.")
    checkin_interval: float | None = Field(
        None, gt=0, le=86400 * 7,
        description="Seconds within which the client promises new points; the stalled rule "
                    "fires after this plus its grace.")
    loss: str | None = Field(
        None, description="The GAN's loss family: " + ", ".join(families.FAMILIES) + " (also "
        "spelled ns, hinge, wgan_gp, ...). Without it, a \"loss\" key of the config names it, "
        "or the server infers it from what is logged.")
    keys: dict[str, str] = Field(
        default_factory=dict,
        description="Series keys for the rules' roles, where the run's names are not known "
                    "aliases: {\"d_loss\": \"my_d_loss\"}. Roles: " + ", ".join(vocabulary.ROLES))

    @field_validator("loss")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        return None if value is None else families.canonical(value)

    @field_validator("keys")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        return vocabulary.check_declared(value)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        if isinstance(data, dict):
            check_tree({k: v for k, v in data.items() if k != "config"}, "", MAX_DEPTH)
        return data

    @field_validator("config", mode="before")
    @classmethod
    def _config_text(cls, config: Any) -> Any:
        # a field's own check, so that its 422 says where: loc ["body", "config"] (the client
        # drops a refused config by it: trainer_client/sender.py)
        check_tree(config, "config", MAX_DEPTH)
        return config

    @field_validator("config")
    @classmethod
    def _config_fits(cls, config: dict[str, Any]) -> dict[str, Any]:
        config = stored_safe(config)  # NaN and Infinity as the API's strings
        size = len(json.dumps(config, ensure_ascii=False).encode("utf-8"))
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"config is {size} bytes as JSON; the limit is {MAX_CONFIG_BYTES}")
        return config

    @model_validator(mode="after")
    def _known_rules(self) -> RunCreate:
        from monitor.rules.config import validate_overrides

        validate_overrides(self.rules)
        return self


class StoredPublic(BaseModel):
    """A response of stored rows: whatever was stored (before the checks on input existed)
    writes back as JSON."""

    @model_validator(mode="before")
    @classmethod
    def _stored_safe(cls, data: Any) -> Any:
        return stored_safe(data) if isinstance(data, dict) else data


class RunPublic(StoredPublic):
    id: str
    name: str
    project: str = "default"
    config: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_step: int | None
    series_keys: list[str]
    url: str
    health: str = Field("ok", description="ok | warning | critical, from the run's firing "
                                          "alerts; unwatched: none fires, but no GAN rule can "
                                          "read what the run logs (never an all-clear)")
    open_alerts: int = Field(0, description="Alerts firing now")
    checkin_interval: float | None = None
    last_point_at: datetime | None = None
    loss: str = Field("bce", description="The loss family the rules use for this run")
    loss_source: Literal["declared", "inferred", "default"] = Field(
        "default", description="declared by the client, inferred from what the run logged, or "
                               "the default (bce) until one of those says otherwise")
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="Which of the run's series plays each role the rules read (declared keys, "
                    "the role's own name, or a known alias such as Loss_D for d_loss)")


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


INT64_MAX = 2**63 - 1
# Steps and ids are 64-bit integers in the database: larger ones are refused with a 422.
Step = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]


class SeriesColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[Step]
    values: list[Value]
    wall_times: list[WallTime] | None = Field(
        None, description="Seconds since the epoch, one per point, finite (NaN or Infinity is "
                          "a 422 naming the key and index); the server's clock if omitted."
    )

    @model_validator(mode="after")
    def _same_lengths(self) -> SeriesColumns:
        if len(self.values) != len(self.steps):
            raise ValueError(
                f"steps has {len(self.steps)} entries but values has {len(self.values)}"
            )
        if self.wall_times is not None and len(self.wall_times) != len(self.steps):
            raise ValueError(
                f"steps has {len(self.steps)} entries but wall_times has {len(self.wall_times)}"
            )
        return self


class PointsBatch(BaseModel):
    """A columnar batch: for each series key, parallel lists of steps, values and wall times."""

    model_config = ConfigDict(extra="forbid")

    batch_id: BatchId = Field(description="Client-made id: a batch sent twice is stored once.")
    series: dict[SeriesKey, SeriesColumns]


class IngestResult(BaseModel):
    batch_id: str
    accepted: int = Field(description="Points stored by this request (0 for a duplicate).")
    duplicate: bool


class SeriesPublic(BaseModel):
    key: str
    steps: list[int]
    values: list[float | str]
    wall_times: list[float]
    count: int = Field(description="Points in the series (in the requested step range).")
    downsampled: bool
    bucket_steps: int | None = Field(
        None, description="When downsampled from the pre-aggregated buckets: the width of "
                          "each bucket in steps (buckets start at multiples of it).")


class SeriesRead(BaseModel):
    run_id: str
    series: list[SeriesPublic]


class SamplePublic(BaseModel):
    id: int
    run_id: str
    key: str
    step: int
    wall_time: float
    width: int
    height: int
    url: str


class SamplesPublic(BaseModel):
    data: list[SamplePublic]
    count: int


class Health(BaseModel):
    status: str
    version: str
    database: str


class AlertPublic(StoredPublic):
    id: int
    run_id: str
    rule: str
    subject: str
    fingerprint: str
    status: str = Field(description="pending | firing | resolved")
    severity: str = Field(description="warning | critical")
    title: str
    message: str
    action: str = Field(description="What to try: the ganhacks trick that addresses it.")
    value: float | None
    threshold: float | None
    evidence: dict[str, Any]
    started_step: int
    fired_step: int | None
    resolved_step: int | None
    last_step: int
    created_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    url: str


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class AlertAck(PlainTextBody):
    model_config = ConfigDict(extra="forbid")

    by: Annotated[str, StringConstraints(max_length=200)] | None = None


class AlertEventPublic(BaseModel):
    id: int
    alert_id: int
    run_id: str
    kind: str = Field(description="firing | escalated | resolved")
    severity: str
    step: int
    created_at: datetime


class AlertEventsPublic(BaseModel):
    data: list[AlertEventPublic]
    count: int


class RuleParam(BaseModel):
    default: Any
    description: str
    minimum: float | None = Field(None, description="numbers: the smallest value accepted")
    maximum: float | None = Field(None, description="numbers: the largest value accepted")


class RulePublic(BaseModel):
    name: str
    title: str
    sign: str
    action: str
    params: dict[str, RuleParam]


class RuleCoverage(BaseModel):
    applies: bool = Field(description="The rule means something for the run's loss family")
    silenced: bool
    watching: bool = Field(description="Applies, is not silenced, and the run logs what it "
                                       "needs: false is never an all-clear")
    missing: list[str] = Field(description="What it needs and the run does not log (a role, "
                                           "under its own name or an alias)")


class RunRules(BaseModel):
    run_id: str
    params: dict[str, dict[str, Any]] = Field(description="Effective parameters per rule.")
    overrides: dict[str, dict[str, Any]]
    silenced: list[str]
    loss: str = "bce"
    loss_source: str = "default"
    roles: dict[str, str] = Field(default_factory=dict)
    rules: dict[str, RuleCoverage] = Field(
        default_factory=dict, description="Per point rule: applies, watching, missing")


class RunRulesUpdate(PlainTextBody):
    model_config = ConfigDict(extra="forbid")

    rules: dict[str, Any] = Field(
        default_factory=dict,
        description='Parameters to change, {"rule": {"param": value}} (merged into the run\'s '
                    'overrides; null resets a parameter to its default), or {"rule": false} '
                    "to silence a rule and {\"rule\": true} to unsilence it.")


# -- webhooks -------------------------------------------------------------------------------

WebhookFormat = Literal["generic", "slack", "discord"]
Severity = Literal["warning", "critical"]


def _usable_url(url: str) -> str:
    from monitor.webhooks.targets import url_problem

    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    return url


# A URL httpx can send to (scheme, host, port checked here: a 422, not a delivery that can
# never be sent); which hosts and addresses this server may send to is the route's check.
WebhookUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+.*$", max_length=2000),
                       AfterValidator(_usable_url)]
Secret = Annotated[str, StringConstraints(min_length=8, max_length=200)]


def _known_rule_names(rules: list[str] | None) -> list[str] | None:
    from monitor.rules import RULES

    for name in rules or []:
        if name not in RULES:
            raise ValueError(f"unknown rule {name!r}; the rules are: {', '.join(RULES)}")
    return rules or None


class WebhookUpdate(PlainTextBody):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    url: WebhookUrl | None = Field(None, description="http(s) URL the deliveries are POSTed to")
    secret: Secret | None = Field(None, description="signs deliveries (HMAC-SHA256); never "
                                                    "returned after creation")
    format: WebhookFormat | None = None
    min_severity: Severity | None = Field(None, description="deliver alerts at least this severe")
    rules: list[str] | None = Field(None, description="only these rules (empty: every rule)")
    run_ids: list[RunId] | None = Field(None, description="only these runs (empty: every run)")
    enabled: bool | None = None

    @model_validator(mode="after")
    def _rules_exist(self):
        _known_rule_names(self.rules)
        return self


class WebhookCreate(WebhookUpdate):
    url: WebhookUrl = Field(description="http(s) URL the deliveries are POSTed to")
    format: WebhookFormat = "generic"
    min_severity: Severity = "warning"
    enabled: bool = True


class WebhookPublic(StoredPublic):
    id: int
    name: str
    url: str
    format: str
    min_severity: str
    rules: list[str] | None
    run_ids: list[str] | None
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown once, now: keep it to verify the signatures.")


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryAttemptPublic(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryPublic(BaseModel):
    id: int
    uuid: str = Field(description="X-Ganwatch-Delivery: the same on every retry")
    webhook_id: int
    event_id: int | None
    kind: str = Field(description="firing | escalated | resolved | test")
    status: str = Field(description="pending | delivered | failed (refused, not retried) | "
                                    "expired (retried past webhook_max_age)")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="when pending: the next try")
    created_at: datetime
    delivered_at: datetime | None
    log: list[DeliveryAttemptPublic]


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int


class ErrorPublic(BaseModel):
    """Every 4xx and 503: what went wrong, in words (or, for a malformed request, a list of
    the fields at fault, as FastAPI's validation reports them)."""

    detail: str | list[Any]
