"""Writing a worker's batch: inferences, detections and feedback in one transaction, idempotently.

Rows are keyed by the event identity (request id, model with its component, and the inference's
occurrence; detection id; CloudEvent source and id), so that writing a redelivered batch again
changes nothing, while a client that reuses a request id for its next inference gets a row for
each. A half stored alone is completed when its other half comes (the response by the latest
request at or before it that waits for one, the request by the earliest response at or after
it); feedback is kept whether or not its inference is there yet, and sets the label as soon as
both are.

Inference rows go to the driver as it takes them (``rows.inference_values``: JSON as text, on
SQLite times as text), by one ``executemany`` of a statement compiled once: a plain ``INSERT``
for request ids the store holds nothing of, the upsert for the others. Each half's time is read
once per write.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.exc import IntegrityError, StatementError

from infersight.config import StoreConfig
from infersight.records import Detection, InferenceRecord, ModelRef, RawEvent
from infersight.sinks.store.engine import make_engine
from infersight.sinks.store.feedback import FeedbackError, parse_feedback
from infersight.sinks.store.labels import is_correct, kind_of, label_values
from infersight.sinks.store.migrate import require_current, upgrade
from infersight.sinks.store.models import DetectionRow, FeedbackRow, Inference, ModelAccuracy
from infersight.sinks.store.rows import (
    INSERT_COLUMNS,
    REQUEST_COLUMNS,
    RESPONSE_COLUMNS,
    HalfTime,
    ModelKey,
    RowKey,
    detection_row,
    driver_form,
    feedback_row,
    inference_values,
    occurrence_of,
    read_half_time,
    record_model_key,
    scores_json,
)
from infersight.sinks.store.tensors import STRING
from infersight.sinks.store.types import json_type
from infersight.sinks.store.upsert import insert

log = logging.getLogger(__name__)

INFERENCES = cast(Table, Inference.__table__)
DETECTIONS = cast(Table, DetectionRow.__table__)
FEEDBACK = cast(Table, FeedbackRow.__table__)
ACCURACY = cast(Table, ModelAccuracy.__table__)

#: Request ids per ``IN (...)``: well under SQLite's limit on bound parameters.
CHUNK = 1000

T = TypeVar("T")
#: The identity of an inference row: its unique constraint, the upsert's conflict target.
IDENTITY = ("request_id", "namespace", "inferenceservice", "component", "occurrence")


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Running counts of one model's labelled inferences whose prediction is a class."""

    labelled: int
    correct: int

    @property
    def ratio(self) -> float:
        return self.correct / self.labelled if self.labelled else float("nan")


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What one write did: rows written per table, feedback taken in, labels set, accuracy now."""

    inferences: int = 0
    detections: int = 0
    feedback: int = 0
    feedback_invalid: int = 0
    labelled: int = 0
    feedback_by_model: dict[ModelRef, int] = field(default_factory=dict)
    accuracy: dict[ModelRef, Accuracy] = field(default_factory=dict)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class StoredRow:
    """One inference row of a model key, stored or about to be: its occurrence and its halves' times.

    A time is None while that half is missing; ``scores`` is what the stored row holds.
    """

    occurrence: str
    request_time: datetime | None
    response_time: datetime | None
    scores: dict[str, Any] | None = None


#: A row of the batch: the record it is written from, its request's and its response's HalfTime.
Merged = list[Any]


def _time(at: HalfTime | None) -> datetime | None:
    return None if at is None else at[0]


def _row_for(
    occurrence: str, request_time: datetime | None, response_time: datetime | None, rows: Sequence[StoredRow]
) -> StoredRow | None:
    """The row of a record's model key that it belongs to; None when it is an inference of its own.

    A row holding one of its halves (a redelivery, paired this time or not), else the row of its
    occurrence, else, for a half alone, a row that waits for that half: a response completes the
    latest request at or before it, a request the earliest response at or after it.
    """
    for row in rows:
        if (request_time is not None and row.request_time == request_time) or (
            response_time is not None and row.response_time == response_time
        ):
            return row
    for row in rows:
        if row.occurrence == occurrence:
            return row
    if request_time is None and response_time is not None:
        requests = [
            (row.request_time, index)
            for index, row in enumerate(rows)
            if row.response_time is None and row.request_time is not None
        ]
        before = [found for found in requests if found[0] <= response_time]
        return rows[max(before)[1]] if before else None
    if response_time is None and request_time is not None:
        responses = [
            (row.response_time, index)
            for index, row in enumerate(rows)
            if row.request_time is None and row.response_time is not None
        ]
        after = [found for found in responses if found[0] >= request_time]
        return rows[min(after)[1]] if after else None
    return None


def _merge(
    records: Sequence[InferenceRecord], stored: dict[ModelKey, list[StoredRow]]
) -> tuple[dict[RowKey, Merged], dict[ModelKey, RowKey]]:
    """:func:`merge_records`, each row with its halves' times (each half's read once).

    Also the model keys that one record of the batch alone has and nothing stored: their rows
    are left out of ``stored`` (most of a batch; no other record needs to be compared with them).
    """
    merged: dict[RowKey, Merged] = {}
    alone: dict[ModelKey, RowKey] = {}
    for record in records:
        request, response = record.request, record.response
        request_at = response_at = request_time = response_time = None
        if request is not None:
            request_at = read_half_time(request)
            request_time = request_at[0]
        if response is not None:
            response_at = read_half_time(response)
            response_time = response_at[0]
        model = record_model_key(record)
        occurrence = occurrence_of(record)
        known = stored.get(model)
        if known is None:
            first = alone.pop(model, None)
            if first is None:
                key = (*model, occurrence)
                alone[model] = key
                merged[key] = [record, request_at, response_at]
                continue
            # A second record of the model key: the first one's row is one to compare with now.
            entry = merged[first]
            known = stored[model] = [StoredRow(first[-1], _time(entry[1]), _time(entry[2]))]
        row = _row_for(occurrence, request_time, response_time, known)
        if row is None:
            row = StoredRow(occurrence, request_time, response_time)
            known.append(row)
        else:
            if row.request_time is None:
                row.request_time = request_time
            if row.response_time is None:
                row.response_time = response_time
        key = (*model, row.occurrence)
        old = merged.get(key)
        if old is None:
            merged[key] = [record, request_at, response_at]
            continue
        first_record = old[0]
        request_from_old, response_from_old = (
            first_record.request is not None,
            first_record.response is not None,
        )
        merged[key] = [
            InferenceRecord(
                request_id=record.request_id,
                model=first_record.model,
                request=first_record.request if request_from_old else request,
                response=first_record.response if response_from_old else response,
                scores=first_record.scores + record.scores,
            ),
            old[1] if request_from_old else request_at,
            old[2] if response_from_old else response_at,
        ]
    return merged, alone


def merge_records(
    records: Sequence[InferenceRecord], stored: dict[ModelKey, list[StoredRow]] | None = None
) -> dict[RowKey, InferenceRecord]:
    """One record per row: halves of the same inference in one batch become one row, not two writes.

    ``stored`` holds the rows already in the store for these request ids (by model key); it is
    updated with the rows this batch adds or completes. Each record comes back under the key of
    the row it goes to: its own occurrence, or that of the stored row it completes.
    """
    rows = stored if stored is not None else {}
    merged, alone = _merge(records, rows)
    for model, key in alone.items():
        entry = merged[key]
        rows[model] = [StoredRow(key[-1], _time(entry[1]), _time(entry[2]))]
    return {key: entry[0] for key, entry in merged.items()}


def _names_model(feedback: Any, inference: Any) -> bool:
    """Feedback applies to an inference of the model it names, or of any model when it names none.

    Feedback that names no component applies to every component's inference of the request id.
    """
    return (
        feedback.namespace in ("", inference.namespace)
        and feedback.inferenceservice in ("", inference.inferenceservice)
        and feedback.component in ("", inference.component)
    )


def _driver_sql(statement: Any, dialect: Dialect, columns: Sequence[str] | None) -> str:
    """``statement`` as the driver's SQL with parameters by position, in ``columns`` order if given.

    What ``exec_driver_sql`` runs: the values go to the driver as they are (``rows.driver_form``),
    without SQLAlchemy's processing of each. With ``columns`` (an ``INSERT`` of those columns)
    no parameter is cast: each takes its column's type, so that PostgreSQL reads the JSON text
    straight into jsonb (a cast of every parameter halves its insert rate); without, SQLAlchemy
    casts as it would.
    """
    positional = cast(Any, type(dialect))(paramstyle="qmark" if dialect.name == "sqlite" else "format")
    if columns is not None:
        positional.bind_typing = BindTyping.NONE
    compiled = statement.compile(dialect=positional, column_keys=None if columns is None else list(columns))
    if columns is not None and tuple(compiled.positiontup or ()) != tuple(columns):
        raise RuntimeError(f"the statement takes its parameters in another order: {compiled.positiontup}")
    return str(compiled)


def _present_query(table: Table, dialect: str) -> Any:
    """The request ids of a JSON array (one parameter, whatever its length) that ``table`` has rows of.

    On PostgreSQL each id is looked up on its own (a lateral join), so that no plan scans the
    table; SQLite's ``json_each`` probes the index likewise (the migrations need its JSON
    functions too).
    """
    if dialect == "postgresql":
        listed = bindparam("ids", type_=JSON())
        wanted = func.json_array_elements_text(listed).table_valued("id").render_derived(name="wanted")
        found = (
            select(literal_column("1"))
            .where(table.c.request_id == wanted.c.id)
            .limit(literal_column("1"))
            .lateral("found")
        )
        return select(wanted.c.id).select_from(wanted.join(found, true()))
    listed_ids = func.json_each(bindparam("ids", type_=Text())).table_valued("value")
    return select(table.c.request_id).distinct().where(table.c.request_id.in_(select(listed_ids.c.value)))


def _inference_upsert(dialect: str) -> Any:
    """Insert, or complete the stored row: the first copy of a half wins, scores arrive merged."""
    statement = insert(INFERENCES, dialect).inline()  # no RETURNING of each row's id
    new, old = statement.excluded, INFERENCES.c
    values: dict[str, Any] = {
        name: func.coalesce(old[name], new[name]) for name in (*REQUEST_COLUMNS, *RESPONSE_COLUMNS)
    }
    gains_request = and_(old.request_received_at.is_(None), new.request_received_at.is_not(None))
    has_scores = new.scores.is_not(None)
    values.update(
        time=func.coalesce(old.request_time, new.request_time, old.response_time, new.response_time),
        instances=case((gains_request, new.instances), else_=old.instances),
        protocol=case((gains_request, new.protocol), else_=old.protocol),
        prediction=func.coalesce(old.prediction, new.prediction),
        prediction_kind=func.coalesce(old.prediction_kind, new.prediction_kind),
        metadata=func.coalesce(old["metadata"], new["metadata"]),
        annotations=func.coalesce(old.annotations, new.annotations),
        revision=case((old.revision == literal_column("''"), new.revision), else_=old.revision),
        scores=func.coalesce(new.scores, old.scores),
        **{
            name: case((has_scores, new[name]), else_=old[name])
            for name in ("outlier", "outlier_score", "adversarial", "adversarial_score")
        },
    )
    return statement.on_conflict_do_update(index_elements=list(IDENTITY), set_=values)


class SqlStore:
    """The SQL store as the worker uses it: ``write`` one batch at a time, from any thread."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.engine: Engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        else:
            require_current(self.engine)
        self._dialect = self.engine.dialect.name
        self._form = driver_form(self._dialect)
        self._upsert_inferences = _driver_sql(
            _inference_upsert(self._dialect), self.engine.dialect, INSERT_COLUMNS
        )
        self._insert_inferences = _driver_sql(
            insert(INFERENCES, self._dialect).inline(), self.engine.dialect, INSERT_COLUMNS
        )
        self._present_sqls: dict[str, str] = {}
        self._insert_detections = (
            insert(DETECTIONS, self._dialect)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(DETECTIONS.c.id)
        )
        self._insert_feedback = (
            insert(FEEDBACK, self._dialect)
            .on_conflict_do_nothing(index_elements=["event_source", "event_id"])
            .returning(
                FEEDBACK.c.namespace, FEEDBACK.c.inferenceservice, FEEDBACK.c.endpoint, FEEDBACK.c.component
            )
        )
        accuracy = insert(ACCURACY, self._dialect)
        self._add_accuracy = accuracy.on_conflict_do_update(
            index_elements=["namespace", "inferenceservice", "component", "endpoint"],
            set_={
                "labelled": ACCURACY.c.labelled + accuracy.excluded.labelled,
                "correct": ACCURACY.c.correct + accuracy.excluded.correct,
            },
        )
        self._set_label = (
            update(INFERENCES)
            .where(INFERENCES.c.id == bindparam("row_id"))
            .values(
                label=bindparam("new_label", type_=json_type()),
                label_kind=bindparam("new_label_kind"),
                label_time=bindparam("new_label_time", type_=INFERENCES.c.label_time.type),
                correct=bindparam("new_correct", type_=INFERENCES.c.correct.type),
            )
        )

    @classmethod
    def from_config(cls, config: StoreConfig) -> SqlStore:
        """Open ``store.url``, migrating it first when ``store.migrate_on_start`` is set."""
        return cls(config.url, migrate=config.migrate_on_start)

    def close(self) -> None:
        self.engine.dispose()

    def write(
        self,
        records: Sequence[InferenceRecord] = (),
        detections: Sequence[Detection] = (),
        feedback: Sequence[RawEvent] = (),
    ) -> WriteCounts:
        """Write one batch in one transaction; a batch written twice leaves the rows as they were.

        Feedback that names no request or no label is skipped, logged and counted in
        ``feedback_invalid`` (check it beforehand with ``parse_feedback`` to dead-letter it).
        """
        now = datetime.now(UTC)
        feedback_rows, invalid = [], 0
        for event in feedback:
            try:
                feedback_rows.append(feedback_row(parse_feedback(event, now), now))
            except FeedbackError as exc:
                invalid += 1
                log.warning("feedback event %s skipped: %s", event.attributes.get("id"), exc)
        try:
            return self._write(records, detections, feedback_rows, invalid, now, plain_inserts=True)
        except IntegrityError:
            # A row of a request id that was not stored when looked up came in meanwhile (another
            # writer's): everything again, each row merged into whatever is stored by then.
            return self._write(records, detections, feedback_rows, invalid, now, plain_inserts=False)

    def _write(
        self,
        records: Sequence[InferenceRecord],
        detections: Sequence[Detection],
        feedback_rows: Sequence[dict[str, Any]],
        invalid: int,
        now: datetime,
        *,
        plain_inserts: bool,
    ) -> WriteCounts:
        """One transaction of :meth:`write`.

        With ``plain_inserts``, the rows of request ids the store holds nothing of go in by a plain
        ``INSERT``: PostgreSQL's ``ON CONFLICT DO UPDATE`` costs as much as the insert itself.
        """
        with self.engine.begin() as connection:
            present = self._present(connection, INFERENCES, list({record.request_id for record in records}))
            stored = self._stored(connection, records, present)
            scores_of = {
                (*model, row.occurrence): row.scores or {} for model, found in stored.items() for row in found
            }
            merged, _ = _merge(records, stored)
            form = self._form
            stored_at = form.time(now, None)
            new_rows: list[tuple[Any, ...]] = []
            other_rows: list[tuple[Any, ...]] = []
            try:
                for key, (record, request_time, response_time) in merged.items():
                    scores = scores_of.get(key, {}) | scores_json(record.scores) if record.scores else None
                    values = inference_values(
                        record, scores, stored_at, key[-1], request_time, response_time, form
                    )
                    if plain_inserts and record.request_id not in present:
                        new_rows.append(values)
                    else:
                        other_rows.append(values)
            except orjson.JSONEncodeError as exc:  # refused as SQLAlchemy's JSON type refuses it
                raise StatementError(f"a JSON value cannot be written: {exc}", None, None, exc) from exc
            if new_rows:
                connection.exec_driver_sql(self._insert_inferences, new_rows)
            if other_rows:
                connection.exec_driver_sql(self._upsert_inferences, other_rows)
            new_detections = 0
            if detections:
                unique = {d.id: detection_row(d, now) for d in detections}
                new_detections = len(connection.execute(self._insert_detections, list(unique.values())).all())
            by_model: Counter[ModelRef] = Counter()
            if feedback_rows:
                for row in connection.execute(self._insert_feedback, feedback_rows).all():
                    by_model[ModelRef(*row)] += 1
            touched = {entry[0].request_id for entry in merged.values()} | {
                row["request_id"] for row in feedback_rows
            }
            labelled, changed = self._apply_labels(connection, list(touched))
            accuracy = self._accuracy(connection, changed)
        return WriteCounts(
            inferences=len(merged),
            detections=new_detections,
            feedback=sum(by_model.values()),
            feedback_invalid=invalid,
            labelled=labelled,
            feedback_by_model=dict(by_model),
            accuracy=accuracy,
        )

    def accuracy(self) -> dict[ModelRef, Accuracy]:
        """Every model's running counts, to set the accuracy gauges when a process starts."""
        with self.engine.connect() as connection:
            return self._accuracy(connection, None)

    def _stored(
        self, connection: Connection, records: Sequence[InferenceRecord], present: set[str]
    ) -> dict[ModelKey, list[StoredRow]]:
        """The rows already stored for these records' request ids, by model key, with their scores.

        ``present`` holds the request ids that have rows (:meth:`_present`); the others have none.

        What tells a redelivered or completing half from a new inference under a reused request
        id, and keeps a detector's verdict on one half when the other comes.
        """
        if not present:
            return {}
        wanted = {record_model_key(record) for record in records}
        found: dict[ModelKey, list[StoredRow]] = defaultdict(list)
        c = INFERENCES.c
        columns = (c.request_id, c.namespace, c.inferenceservice, c.component, c.occurrence)
        for chunk in _chunks(sorted(present)):
            query = select(*columns, c.request_time, c.response_time, c.scores).where(c.request_id.in_(chunk))
            for row in connection.execute(query):
                model = (row.request_id, row.namespace, row.inferenceservice, row.component)
                if model in wanted:
                    times = (row.request_time, row.response_time)
                    found[model].append(StoredRow(row.occurrence, *times, scores=row.scores))
        return dict(found)

    def _present(self, connection: Connection, table: Table, request_ids: Sequence[str]) -> set[str]:
        """Which of ``request_ids`` ``table`` holds rows of: most often none, so the rows are read after.

        One statement whatever the number of ids, and one index probe per id whether or not the
        planner has statistics yet: PostgreSQL would otherwise scan a young table whole for every
        batch (its first statistics come minutes later).
        """
        if not request_ids:
            return set()
        sql = self._present_sqls.get(table.name)
        if sql is None:
            sql = self._present_sqls[table.name] = _driver_sql(
                _present_query(table, self._dialect), self.engine.dialect, None
            )
        listed = orjson.dumps(list(request_ids)).decode()
        return {row[0] for row in connection.exec_driver_sql(sql, (listed,))}

    def _apply_labels(self, connection: Connection, request_ids: Sequence[str]) -> tuple[int, set[ModelRef]]:
        """Set each stored inference's label from its latest feedback; keep the accuracy counts in step."""
        f = FEEDBACK.c
        pending: dict[str, list[Any]] = defaultdict(list)
        for chunk in _chunks(sorted(self._present(connection, FEEDBACK, request_ids))):
            query = (
                select(f.request_id, f.namespace, f.inferenceservice, f.component, f.label, f.time)
                .where(f.request_id.in_(chunk))
                .order_by(f.time, f.id)
            )
            for found in connection.execute(query):
                pending[found.request_id].append(found)
        if not pending:
            return 0, set()
        c = INFERENCES.c
        updates: list[dict[str, Any]] = []
        deltas: dict[ModelRef, list[int]] = defaultdict(lambda: [0, 0])
        for chunk in _chunks(sorted(pending)):
            stored = select(
                c.id, c.request_id, c.namespace, c.inferenceservice, c.endpoint, c.component,
                c.prediction, c.label, c.label_time, c.correct,
            ).where(c.request_id.in_(chunk))  # fmt: skip
            for row in connection.execute(stored):
                applies = [fb for fb in pending[row.request_id] if _names_model(fb, row)]
                if not applies:
                    continue
                latest = applies[-1]
                values = label_values(latest.label)
                correct = is_correct(row.prediction, values)
                if (row.label, row.label_time, row.correct) == (latest.label, latest.time, correct):
                    continue
                updates.append(
                    {
                        "row_id": row.id,
                        "new_label": latest.label,
                        "new_label_kind": kind_of(values) if values else STRING,
                        "new_label_time": latest.time,
                        "new_correct": correct,
                    }
                )
                delta = deltas[ModelRef(row.namespace, row.inferenceservice, row.endpoint, row.component)]
                delta[0] += (correct is not None) - (row.correct is not None)
                delta[1] += (correct is True) - (row.correct is True)
        if updates:
            connection.execute(self._set_label, updates)
        changed = [
            {"namespace": m.namespace, "inferenceservice": m.inferenceservice, "component": m.component,
             "endpoint": m.endpoint, "labelled": d[0], "correct": d[1]}
            for m, d in deltas.items() if d != [0, 0]
        ]  # fmt: skip
        if changed:
            connection.execute(self._add_accuracy, changed)
        return len(updates), set(deltas)

    def _accuracy(self, connection: Connection, models: set[ModelRef] | None) -> dict[ModelRef, Accuracy]:
        a = ACCURACY.c
        query = select(a.namespace, a.inferenceservice, a.component, a.endpoint, a.labelled, a.correct)
        if models is not None:
            if not models:
                return {}
            keys = [(m.namespace, m.inferenceservice, m.component, m.endpoint) for m in models]
            query = query.where(tuple_(a.namespace, a.inferenceservice, a.component, a.endpoint).in_(keys))
        return {
            ModelRef(row.namespace, row.inferenceservice, row.endpoint, row.component): Accuracy(
                row.labelled, row.correct
            )
            for row in connection.execute(query)
        }
