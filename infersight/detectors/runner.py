"""Run every configured detector over a batch of inference records.

Records are grouped per detector and model (and endpoint, unless ``split_endpoints`` is off; and
revision, for a model entry that names one):
each group of a scorer is scored in one ``predict`` call for the whole batch; drift tests run
on windows that never mix two groups; online drift detectors are fed their group's instances
one at a time, as they require, and report once per window. Everything here is synchronous
and CPU-bound: the worker runs it in one thread beside its event loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infersight.detectors import outcomes
from infersight.detectors.catalog import FLAG_KEYS, Family
from infersight.detectors.features import FeatureError, Instances, event_time, instances
from infersight.detectors.loading import DetectorLoadError, LoadedDetector, newer_version
from infersight.detectors.metrics import DetectorMetrics
from infersight.detectors.outcomes import DriftOutcome
from infersight.detectors.state import StateStore
from infersight.detectors.windows import Window, WindowBuffer, WindowKeeper
from infersight.records import DRIFT, Detection, InferenceRecord, ModelRef, Score

log = logging.getLogger("infersight.detectors")

#: Detection ids are derived from what was detected, so a redelivered batch gives the same ids
#: and the store and topic consumers can tell a repeat from a new detection.
ID_NAMESPACE = uuid.UUID("5b0f4c62-8d0e-4f57-9f3e-6a1b1f0c2d11")


def detection_id(detector: str, model: ModelRef, request_ids: Sequence[str], content: str = "") -> str:
    """The same detection on the same instances always gets the same id; ``content`` tells apart
    windows cut from one large record."""
    # A component is added only when there is one, so that the ids of detections without one stay.
    component = (f"component={model.component}",) if model.component else ()
    key = "\x1f".join(
        (detector, model.namespace, model.inferenceservice, model.endpoint, *component, content, *request_ids)
    )
    return str(uuid.uuid5(ID_NAMESPACE, key))


def _specificity(loaded: LoadedDetector) -> tuple[bool, bool, bool]:
    """How closely a detector's model entry names a model: by component, revision, then endpoint."""
    entry = loaded.model
    return (entry.component is not None, entry.revision is not None, entry.endpoint is not None)


#: Online detectors keep every test statistic they ever computed; this many are kept.
ONLINE_HISTORY = 1000


@dataclass(slots=True)
class OnlineTally:
    """What an online detector said over one reporting window."""

    outcome: DriftOutcome | None = None
    drift_seen: bool = False


@dataclass(slots=True)
class Slot:
    """One detector on one model (and endpoint, and revision when its entry names one): its
    instance and its open window."""

    loaded: LoadedDetector
    model: ModelRef
    #: The one revision whose traffic this slot sees; "" when it sees every revision's.
    revision: str
    detector: Any
    buffer: WindowBuffer | None
    tally: OnlineTally = field(default_factory=OnlineTally)
    dirty: bool = False

    @property
    def key(self) -> SlotKey:
        return (self.loaded.config.name, self.model, self.revision)

    @property
    def window_name(self) -> str:
        """What the slot's open window is kept under beside the model: the detector, at a revision."""
        name = self.loaded.config.name
        return f"{name}@{self.revision}" if self.revision else name

    @property
    def state_parts(self) -> tuple[str, ...]:
        """Where the slot's online state is saved; a component or a revision adds a level (none keeps
        the old place)."""
        model = self.model
        component = (f"component={model.component}",) if model.component else ()
        revision = (f"revision={self.revision}",) if self.revision else ()
        name = self.loaded.config.name
        return (model.namespace, model.inferenceservice, *component, model.endpoint, *revision, name)


#: A slot's detector name, model (endpoint blank unless split) and revision ("" unless named).
SlotKey = tuple[str, ModelRef, str]


@dataclass(slots=True)
class Pending:
    """A group's instances in this batch, and which record each row came from."""

    records: list[int] = field(default_factory=list)
    parts: list[Instances] = field(default_factory=list)


class DetectorRunner:
    def __init__(
        self,
        detectors: Sequence[LoadedDetector],
        metrics: DetectorMetrics,
        states: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        windows: WindowKeeper | None = None,
    ) -> None:
        self.metrics = metrics
        self.states = states
        self.clock = clock
        self.windows = windows
        # Slots whose open window changed since it was last kept.
        self._unkept: set[SlotKey] = set()
        self._by_model: dict[tuple[str, str], list[LoadedDetector]] = defaultdict(list)
        for loaded in detectors:
            self._by_model[(loaded.model.namespace, loaded.model.inferenceservice)].append(loaded)
        self._slots: dict[SlotKey, Slot] = {}

    @property
    def empty(self) -> bool:
        return not self._by_model

    def detectors_for(self, model: ModelRef, revision: str = "") -> list[LoadedDetector]:
        """The detectors configured for ``model`` at ``revision``: those of its most specific
        matching entries.

        An entry matches when its component, revision and endpoint are the traffic's or unset;
        naming the component counts most, then the revision, then the endpoint.
        """
        candidates = self._by_model.get((model.namespace, model.inferenceservice), [])
        matching = [
            loaded
            for loaded in candidates
            if loaded.model.component in (None, model.component)
            and loaded.model.revision in (None, revision)
            and loaded.model.endpoint in (None, model.endpoint)
        ]
        if not matching:
            return []
        best = max(_specificity(loaded) for loaded in matching)
        return [loaded for loaded in matching if _specificity(loaded) == best]

    def _slot(self, loaded: LoadedDetector, model: ModelRef) -> Slot:
        config = loaded.config
        scope = model if config.split_endpoints else dataclasses.replace(model, endpoint="")
        revision = loaded.model.revision or ""
        key = (config.name, scope, revision)
        slot = self._slots.get(key)
        if slot is None:
            detector = loaded.make()
            buffer = WindowBuffer(config.window) if config.window is not None else None
            slot = Slot(loaded, scope, revision, detector, buffer)
            if buffer is not None and self.windows is not None:
                buffer.current = self.windows.load(scope, slot.window_name)
            self._slots[key] = slot
            self.metrics.start(scope, revision, config.name, config.kind)
            online = loaded.family is Family.ONLINE_DRIFT
            if online and self.states is not None and self.states.restore(detector, slot.state_parts):
                log.info("restored the state of %s for %s", config.name, scope)
        return slot

    def process(self, records: Sequence[InferenceRecord]) -> tuple[list[InferenceRecord], list[Detection]]:
        """Score ``records``: the records with their scores, and every detection they led to."""
        groups: dict[SlotKey, Pending] = defaultdict(Pending)
        slots: dict[SlotKey, Slot] = {}
        for index, record in enumerate(records):
            for loaded in self.detectors_for(record.model, record.revision):
                slot = self._slot(loaded, record.model)
                key = slot.key
                try:
                    part = instances(record, loaded.config)
                except FeatureError as exc:
                    self._error(slot, "unusable_payload", f"record {record.request_id}: {exc}")
                    continue
                slots[key] = slot
                groups[key].records.append(index)
                groups[key].parts.append(part)
        scores: dict[int, list[Score]] = defaultdict(list)
        detections: list[Detection] = []
        for key, pending in groups.items():
            slot = slots[key]
            family = slot.loaded.family
            if family is Family.SCORER:
                self._score(slot, records, pending, scores, detections)
            elif family is Family.BATCH_DRIFT:
                self._fill_windows(slot, records, pending, detections)
            else:
                self._feed_online(slot, records, pending, detections)
        scored = [
            dataclasses.replace(record, scores=(*record.scores, *scores[index]))
            if index in scores
            else record
            for index, record in enumerate(records)
        ]
        self._keep_windows()
        return scored, detections

    def tick(self) -> list[Detection]:
        """Detections of the windows whose time is up."""
        now = self.clock()
        detections = []
        for slot in self._slots.values():
            if slot.buffer is None:
                continue
            window = slot.buffer.expire(now)
            if window is None:
                continue
            self._unkept.add(slot.key)
            detection = self._close(slot, window)
            if detection is not None:
                detections.append(detection)
        self._keep_windows()
        return detections

    def keep_all_windows(self) -> None:
        """Keep every open window again at the next batch: the last keeping was undone."""
        self._unkept.update(self._slots)

    def _keep_windows(self) -> None:
        if self.windows is None:
            self._unkept.clear()
            return
        for key in self._unkept:
            slot = self._slots.get(key)
            if slot is not None and slot.buffer is not None:
                self.windows.save(slot.model, slot.window_name, slot.buffer.current)
        self._unkept.clear()

    def save_states(self) -> int:
        """Save the state of every online detector that saw instances since the last save."""
        saved = 0
        if self.states is None:
            return saved
        for slot in self._slots.values():
            if slot.dirty:
                self.states.save(slot.detector, slot.state_parts)
                slot.dirty = False
                saved += 1
        return saved

    def refresh(self, cache_dir: Path) -> list[LoadedDetector]:
        """Take the new version of every versioned detector whose ``LATEST`` moved; those taken.

        Their slots keep their open windows and score with the new version from the next batch;
        online detectors start afresh, since the state of one version means nothing to another.
        A version that does not load is logged and the one running is kept.
        """
        taken = []
        for group in self._by_model.values():
            for index, loaded in enumerate(group):
                try:
                    newer = newer_version(loaded, cache_dir)
                except DetectorLoadError as exc:
                    log.warning("keeping version %r: %s", loaded.version, exc)
                    continue
                if newer is None:
                    continue
                group[index] = newer
                taken.append(newer)
                for slot in self._slots.values():
                    if slot.loaded is loaded:
                        slot.loaded, slot.detector, slot.tally = newer, newer.make(), OnlineTally()
                log.info(
                    "detector %s of %s now at version %s", newer.config.name, _where(newer), newer.version
                )
        return taken

    def forget(self) -> None:
        """Save states and drop every slot: the models may now belong to another worker."""
        self.save_states()
        self._slots.clear()
        self._unkept.clear()

    def _error(self, slot: Slot, reason: str, detail: str) -> None:
        model = slot.model
        self.metrics.errors(*model.metric_labels, slot.revision, slot.loaded.config.name, reason).inc()
        log.warning("%s on %s: %s", slot.loaded.config.name, model.partition_key, detail)

    def _predict(self, slot: Slot, x: np.ndarray[Any, Any]) -> Any:
        """``predict(x)['data']``, timed into the duration histogram."""
        started = time.perf_counter()
        try:
            return slot.detector.predict(x)["data"]
        finally:
            model = slot.model
            self.metrics.duration(*model.metric_labels, slot.revision, slot.loaded.config.name).observe(
                time.perf_counter() - started
            )

    def _shaped(self, slot: Slot, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        shape = slot.loaded.config.instance_shape
        return rows if shape is None else rows.reshape(rows.shape[0], *shape)

    def _score(
        self,
        slot: Slot,
        records: Sequence[InferenceRecord],
        pending: Pending,
        scores: dict[int, list[Score]],
        detections: list[Detection],
    ) -> None:
        config = slot.loaded.config
        widths: dict[int, list[int]] = defaultdict(list)
        for position, part in enumerate(pending.parts):
            widths[part.rows.shape[1]].append(position)
        for positions in widths.values():
            rows = np.concatenate([pending.parts[position].rows for position in positions])
            # A detector that raises stops the batch: the worker commits nothing past it.
            data = self._predict(slot, self._shaped(slot, rows))
            result = outcomes.instance_scores(
                data, FLAG_KEYS[config.kind], _threshold(getattr(slot.detector, "threshold", None))
            )
            start = 0
            for position in positions:
                index = pending.records[position]
                count = pending.parts[position].rows.shape[0]
                flags = tuple(result.flags[start : start + count].tolist())
                score = Score(
                    detector=config.name,
                    kind=config.kind,
                    scores=tuple(result.scores[start : start + count].tolist()),
                    flags=flags,
                    threshold=result.threshold,
                    feature_scores=_kept_feature_scores(result, start, count, any(flags)),
                )
                start += count
                scores[index].append(score)
                self.metrics.scored(slot.model, records[index].revision, score)
                if score.flagged:
                    detections.append(self._flag_detection(slot, records[index], score))

    def _flag_detection(self, slot: Slot, record: InferenceRecord, score: Score) -> Detection:
        at = event_time(record)
        return Detection(
            id=detection_id(score.detector, record.model, (record.request_id,)),
            detector=score.detector,
            kind=score.kind,
            model=record.model,
            detected=True,
            statistic=score.score,
            p_value=None,
            threshold=score.threshold,
            window_start=at,
            window_end=at,
            request_ids=(record.request_id,),
            instances=len(score.scores),
            time=self.clock(),
            algorithm=slot.loaded.algorithm,
            version=slot.loaded.version,
        )

    def _fill_windows(
        self, slot: Slot, records: Sequence[InferenceRecord], pending: Pending, detections: list[Detection]
    ) -> None:
        now = self.clock()
        for index, part in zip(pending.records, pending.parts, strict=True):
            detections.extend(self._add(slot, part.rows, part.names, records[index], now))

    def _add(
        self,
        slot: Slot,
        rows: np.ndarray[Any, Any],
        names: tuple[str, ...],
        record: InferenceRecord,
        now: float,
    ) -> list[Detection]:
        """Add a record's rows to the slot's window; the detections of the windows they closed."""
        assert slot.buffer is not None
        self._unkept.add(slot.key)
        closed = slot.buffer.add(rows, names, record.request_id, event_time(record), now)
        return [detection for window in closed if (detection := self._close(slot, window)) is not None]

    def _feed_online(
        self, slot: Slot, records: Sequence[InferenceRecord], pending: Pending, detections: list[Detection]
    ) -> None:
        assert slot.buffer is not None
        now = self.clock()
        for index, part in zip(pending.records, pending.parts, strict=True):
            record = records[index]
            for row in self._shaped(slot, part.rows):
                outcome = outcomes.online_drift(self._predict(slot, row))
                slot.tally.drift_seen |= outcome.detected
                if slot.tally.outcome is None or _worse(outcome, slot.tally.outcome):
                    slot.tally.outcome = outcome
            slot.dirty = True
            _trim_history(slot.detector)
            # The buffer keeps request ids and times for the report; the rows were consumed above.
            marker = np.empty((part.rows.shape[0], 0), dtype=np.float32)
            detections.extend(self._add(slot, marker, part.names, record, now))

    def _close(self, slot: Slot, window: Window) -> Detection | None:
        if slot.loaded.family is Family.ONLINE_DRIFT:
            content = str(getattr(getattr(slot.detector, "_detector", slot.detector), "t", ""))
            outcome = slot.tally.outcome
            drift_seen = slot.tally.drift_seen
            slot.tally = OnlineTally()
            if outcome is None:
                return None
            outcome = dataclasses.replace(outcome, detected=drift_seen)
        elif window.count < 2:
            return None  # no test says anything about one instance
        else:
            rows = window.rows()
            content = hashlib.sha1(rows.tobytes(), usedforsecurity=False).hexdigest()
            outcome = outcomes.batch_drift(self._predict(slot, self._shaped(slot, rows)))
        detection = Detection(
            id=detection_id(slot.loaded.config.name, slot.model, window.request_ids, slot.revision + content),
            detector=slot.loaded.config.name,
            kind=DRIFT,
            model=slot.model,
            detected=outcome.detected,
            statistic=outcome.statistic,
            p_value=outcome.p_value,
            threshold=outcome.threshold,
            window_start=window.first_time,
            window_end=window.last_time,
            request_ids=tuple(window.request_ids),
            instances=window.count,
            features=window.names if outcome.feature_statistics or outcome.feature_p_values else (),
            feature_statistics=outcome.feature_statistics,
            feature_p_values=outcome.feature_p_values,
            time=self.clock(),
            algorithm=slot.loaded.algorithm,
            version=slot.loaded.version,
            revision=slot.revision,
        )
        self.metrics.drift(detection)
        return detection


#: Per-feature scores kept per instance at most: a 64x64 RGB image; wider inputs keep none.
FEATURE_SCORES_KEPT = 64 * 64 * 3


def _kept_feature_scores(
    result: outcomes.InstanceScores, start: int, count: int, flagged: bool
) -> tuple[tuple[float, ...], ...] | None:
    """A flagged record's per-feature scores, rounded to 4 significant digits; None for the rest."""
    features = result.feature_scores
    if not flagged or features is None or features.shape[1] > FEATURE_SCORES_KEPT:
        return None
    rows = features[start : start + count]
    rounded = np.where(np.isfinite(rows), rows, 0.0).astype(np.float32).astype(np.float64)
    return tuple(tuple(float(f"{value:.4g}") for value in row) for row in rounded.tolist())


def _where(loaded: LoadedDetector) -> str:
    return f"{loaded.model.namespace}/{loaded.model.inferenceservice}"


def _threshold(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _worse(new: DriftOutcome, old: DriftOutcome) -> bool:
    """Whether ``new`` is further over (or less under) its threshold than ``old``."""
    if new.statistic is None or old.statistic is None:
        return new.detected and not old.detected
    return new.statistic - (new.threshold or 0.0) > old.statistic - (old.threshold or 0.0)


def _trim_history(detector: Any) -> None:
    """Online detectors append every statistic to arrays that grow forever; keep the recent ones."""
    inner = getattr(detector, "_detector", detector)
    for name in ("test_stats", "drift_preds"):
        history = getattr(inner, name, None)
        if isinstance(history, np.ndarray) and history.shape[0] > 2 * ONLINE_HISTORY:
            setattr(inner, name, history[-ONLINE_HISTORY:])
