"""Configuration: one YAML file, every key overridable by an ``INFERSIGHT_...`` variable.

Nested keys use a double underscore in the environment, so ``kafka.bootstrap_servers`` is
``INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS``. Unknown keys are errors: a typo must not silently
fall back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "INFERSIGHT_CONFIG"
#: CloudEvent attributes that pairing, routing and the store rely on.
REQUIRED_ATTRIBUTES = frozenset(
    {
        "specversion", "id", "source", "type", "namespace", "inferenceservicename", "component", "endpoint",
        "requestid",
    }
)  # fmt: skip


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the key and the reason."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopicsConfig(Section):
    payloads: str = "infersight.payloads"
    detections: str = "infersight.detections"
    deadletter: str = "infersight.deadletter"


class KafkaConfig(Section):
    bootstrap_servers: str = "localhost:9092"
    client_id: str = "infersight"
    topics: TopicsConfig = TopicsConfig()
    partitions: int = Field(6, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=32)
    create_topics: bool = True
    #: ``max.message.bytes`` of the topics we create and the producers' largest request.
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    startup_timeout_seconds: float = Field(60.0, gt=0)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value


class TlsConfig(Section):
    """A PEM certificate (chain) and its private key: the server then speaks HTTPS only."""

    certfile: Path
    keyfile: Path

    @model_validator(mode="after")
    def _readable(self) -> TlsConfig:
        for path in (self.certfile, self.keyfile):
            if not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self


class SpoolConfig(Section):
    """Where the ingest keeps events while Kafka cannot take them (see ``ingest/spool.py``).

    The folder must outlive the process for the spool to keep its promise: the pod's
    PersistentVolumeClaim in Kubernetes, a local disk elsewhere.
    """

    enabled: bool = True
    path: Path = Field(default_factory=lambda: default_state_dir() / "spool")
    max_bytes: int = Field(1024**3, ge=1)


class IngestConfig(Section):
    #: Loopback by default; 0.0.0.0 (the image sets it) or an address to serve other machines.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls: TlsConfig | None = None
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1)
    auth_tokens: list[SecretStr] = Field(default_factory=list)
    kafka_timeout_seconds: float = Field(2.0, gt=0)
    retry_after_seconds: int = Field(5, ge=1)
    max_in_flight: int = Field(20_000, ge=1)
    linger_ms: int = Field(0, ge=0)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    #: After SIGTERM: answer (with ``Connection: close``) this long before closing the port.
    drain_seconds: float = Field(5.0, ge=0)
    max_models_in_metrics: int = Field(500, ge=1)
    #: Revisions of each model the metrics name (the most recently seen); older ones' series go.
    max_revisions_in_metrics: int = Field(3, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "infersight"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "infersight"


class LocalKafkaConfig(Section):
    """The single-node broker that ``infersight kafka start`` runs."""

    state_dir: Path = Field(default_factory=lambda: default_state_dir() / "kafka")
    maven_repo: Path = Field(default_factory=lambda: default_cache_dir() / "maven")
    host: str = "localhost"
    port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)
    heap: str = Field("512m", pattern=r"^\d+[kmg]$")
    start_timeout_seconds: float = Field(90.0, gt=0)


class WorkerConfig(Section):
    """The stream workers (quixstreams): one consumer group, any number of processes."""

    group_id: str = "infersight-worker"
    extra_topics: list[str] = Field(default_factory=list)
    pairing_timeout_seconds: float = Field(30.0, gt=0)
    #: How long a worker remembers the halves it handed on, to drop copies that come again.
    dedupe_seconds: float = Field(600.0, ge=0)
    #: At most this many remembered inferences (about 270 bytes each); the oldest go first.
    dedupe_max_keys: int = Field(500_000, ge=0)
    #: A checkpoint (detectors, sinks, then the offsets' commit) every this many records ...
    batch_size: int = Field(2000, ge=1)
    #: ... or this many seconds, whichever comes first.
    batch_seconds: float = Field(0.5, gt=0)
    #: ``exactly-once`` wraps each checkpoint's records, detections, dead letters, state
    #: changelog and offsets in one Kafka transaction; the store's writes are idempotent either way.
    processing_guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    #: Paired records as JSON on this topic, for inspection; detectors and sinks run in the worker.
    records_topic: str | None = None
    state_dir: Path = Field(default_factory=lambda: default_state_dir() / "worker")
    #: RocksDB memtable size per state partition (at most two each): open windows are rewritten
    #: every checkpoint, and RocksDB's 64 MB (three each) held hundreds of MB for a few keys.
    state_write_buffer_mb: int = Field(8, ge=1)
    #: RocksDB block cache, one for every state partition of the process.
    state_cache_mb: int = Field(64, ge=1)
    #: Loopback by default; 0.0.0.0 (the image sets it) or an address for Prometheus elsewhere.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(8081, ge=0, le=65535)
    rebalance_timeout_seconds: float = Field(20.0, gt=0)
    #: Revisions of each model the metrics name (the most recently seen); older ones' series go.
    max_revisions_in_metrics: int = Field(3, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


class StoreConfig(Section):
    """The SQL store: ``sqlite:///path`` (the default) or ``postgresql://user:password@host/db``."""

    url: str = "sqlite:///infersight.db"
    #: Workers write every record, detection and feedback event here; off, they only publish.
    enabled: bool = True
    #: Apply the store's migrations when a process opens it; off, it must be at the current revision.
    migrate_on_start: bool = True


class ApiConfig(Section):
    """The query API: served by ``infersight api``, and by the ingest when ``enabled``."""

    #: Loopback by default; 0.0.0.0 (the image sets it) or an address to serve other machines.
    host: str = "127.0.0.1"
    port: int = Field(8082, ge=0, le=65535)
    tls: TlsConfig | None = None
    #: Mount ``/v1/...`` in the ingest process too (it then needs the store).
    enabled: bool = False
    #: Bearer tokens for ``/v1/...``; none means open.
    auth_tokens: list[SecretStr] = Field(default_factory=list)
    max_page_size: int = Field(1000, ge=1)
    #: ``/metrics`` judges every model two revisions served within this long (see the README).
    canary_lookback_seconds: float = Field(3600.0, gt=0)
    canary_window_seconds: float = Field(300.0, gt=0)
    #: A scrape reuses the last verdicts for this long.
    canary_refresh_seconds: float = Field(60.0, ge=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


DetectorKind = Literal["drift", "outlier", "adversarial"]
PayloadSide = Literal["request", "response"]


class WindowConfig(Section):
    """When a drift window closes: at ``size`` instances or ``seconds`` after its first, whichever first."""

    size: int | None = Field(None, ge=2)
    seconds: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> WindowConfig:
        if self.size is None and self.seconds is None:
            raise ValueError("set size, seconds or both")
        return self


class DetectorConfig(Section):
    """One detector on one model: a saved alibi-detect detector, or an algorithm fitted on reference data."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: DetectorKind
    #: A folder written by ``alibi_detect.saving.save_detector``: ``file://``, ``s3://``, ``gs://`` or a path.
    uri: str | None = None
    #: An alibi-detect class name (``KSDrift``, ``IForest``, ...), fitted on ``reference`` at start.
    algorithm: str | None = None
    #: Reference data for ``algorithm``: ``.npy``, ``.parquet`` or ``.csv``, any fsspec URI.
    reference: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: Which payloads feed the detector; both sides are joined feature-wise per instance.
    on: list[PayloadSide] = Field(default_factory=lambda: list[PayloadSide](["request"]), min_length=1)
    #: The tensor to read from each side (by v2 name); the first tensor when unset.
    tensor: str | None = None
    #: Reshape each instance before scoring (``[8, 8, 1]`` for an image model); flat by default.
    instance_shape: list[int] | None = None
    window: WindowConfig | None = None
    #: Canary and default endpoints get their own drift windows and online state.
    split_endpoints: bool = True
    #: Saved detectors in alibi-detect's legacy format (``meta.dill``) or holding ``.dill`` files run
    #: code when loaded: refused unless this is set for a source you trust.
    allow_unsafe_loading: bool = False
    #: Options for the storage behind ``uri`` and ``reference`` (fsspec ``storage_options``).
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> DetectorConfig:
        if (self.uri is None) == (self.algorithm is None):
            raise ValueError("set either uri (a saved detector) or algorithm (with reference)")
        if self.algorithm is not None and self.reference is None:
            raise ValueError("algorithm needs reference (the data to fit on)")
        if self.kind == "drift" and self.window is None:
            self.window = WindowConfig(size=1000)
        if self.kind != "drift" and self.window is not None:
            raise ValueError("window applies to drift detectors only")
        if len(set(self.on)) != len(self.on):
            raise ValueError("on lists a side twice")
        return self


class ModelConfig(Section):
    """The detectors of one deployed model; ``component``, ``revision`` or ``endpoint`` unset
    matches every one.

    Where several entries match a model's traffic, the most specific wins: naming the component
    counts most, then naming the revision, then the endpoint. An entry naming a revision gives
    that revision's traffic its own drift windows and online state.
    """

    namespace: str
    inferenceservice: str = Field(min_length=1)
    #: The KServe component (``predictor``, ``transformer``, ``explainer``); unset matches every one.
    component: str | None = None
    #: The revision that served the traffic (:mod:`infersight.revisions`): ``iris-predictor-00002``.
    revision: str | None = None
    endpoint: str | None = None
    detectors: list[DetectorConfig] = Field(default_factory=list)
    #: The share of inferences kept (by a hash of the request id, so both halves go together).
    sample_rate: float = Field(1.0, ge=0.0, le=1.0)
    #: JSON fields of request and response bodies replaced by "[REDACTED]" before anything is
    #: stored, as dotted paths where ``*`` is any key or index: ``instances.*.email``.
    redact: list[str] = Field(default_factory=list)
    #: CloudEvent attributes dropped before anything is stored, e.g. ``metadata`` (request headers).
    redact_attributes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ModelConfig:
        names = [detector.name for detector in self.detectors]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"detector names repeat: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _revision_names_detectors_only(self) -> ModelConfig:
        # The ingest samples and redacts before any revision is read; the rules are the model's.
        if self.revision is not None and (self.sample_rate != 1.0 or self.redact or self.redact_attributes):
            raise ValueError(
                "an entry naming a revision takes detectors only: set sample_rate, redact and "
                "redact_attributes on the model's entry without a revision"
            )
        return self

    @field_validator("redact")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"a redact path is dotted keys, '*' or indexes, got {path!r}")
        return paths

    @field_validator("redact_attributes")
    @classmethod
    def _optional_attributes(cls, names: list[str]) -> list[str]:
        required = sorted(set(names) & REQUIRED_ATTRIBUTES)
        if required:
            raise ValueError(f"{', '.join(required)} cannot be redacted: every CloudEvent needs them")
        return names


class DetectionsConfig(Section):
    """Where detection results go besides the detections topic, and how detector state is kept."""

    #: Every detection is also POSTed here as a CloudEvent (binary mode), retried with backoff.
    reply_url: str | None = None
    reply_timeout_seconds: float = Field(5.0, gt=0)
    reply_retries: int = Field(5, ge=0)
    #: Detections waiting for the reply URL; the oldest are dropped (and counted) beyond this.
    reply_queue_size: int = Field(10_000, ge=1)
    #: Saved detectors fetched from ``s3://`` or ``gs://`` are kept here.
    cache_dir: Path = Field(default_factory=lambda: default_cache_dir() / "detectors")
    #: Online drift detectors save their state here (any fsspec URI; shared storage lets another
    #: worker take over a model after a rebalance).
    state_uri: str = Field(default_factory=lambda: str(default_state_dir() / "detector-state"))
    state_storage_options: dict[str, Any] = Field(default_factory=dict)
    state_save_seconds: float = Field(30.0, gt=0)
    #: How often workers look for a new version of each versioned detector (``<uri>/LATEST``);
    #: 0 never: a new version then waits for a restart.
    reload_seconds: float = Field(30.0, ge=0)
    #: At most this many per-feature series per drift detector in the metrics.
    max_features_in_metrics: int = Field(100, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INFERSIGHT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    kafka: KafkaConfig = KafkaConfig()
    ingest: IngestConfig = IngestConfig()
    local_kafka: LocalKafkaConfig = LocalKafkaConfig()
    worker: WorkerConfig = WorkerConfig()
    store: StoreConfig = StoreConfig()
    api: ApiConfig = ApiConfig()
    detections: DetectionsConfig = DetectionsConfig()
    models: list[ModelConfig] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init values; the environment wins over it.
        return env_settings, init_settings


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "unknown key"
        lines.append(f"{key}: {reason}")
    return "; ".join(lines)


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the YAML file (``path`` or ``$INFERSIGHT_CONFIG``), then apply the environment."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    values = _read_yaml(Path(chosen)) if chosen else {}
    try:
        return Settings(**values)
    except ValidationError as exc:
        source = f" in {chosen}" if chosen else ""
        raise ConfigError(f"invalid configuration{source}: {_describe(exc)}") from exc
