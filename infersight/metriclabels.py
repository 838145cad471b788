"""The ``revision`` label of model metrics, bounded: each model's few most recently seen revisions.

A raw deployment gets a new revision with every rollout, a serverless one with every change of
its spec, so a label per revision would grow without end. Each model keeps ``limit`` revisions
(least recently seen first out); when one is forgotten, every series naming it is removed from
the metrics, so ``/metrics`` holds at most ``limit`` revisions of any model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

#: Revisions per model that metrics name, unless configured otherwise.
DEFAULT_LIMIT = 3

Forget = Callable[[tuple[str, ...]], None]


class RecentRevisions:
    """Which revisions of each model the metrics may name; told of every revision seen."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._seen: dict[tuple[str, ...], OrderedDict[str, None]] = {}
        self._forgetters: list[Forget] = []

    def series(self, metric: MetricWrapperBase) -> Series:
        """``metric``'s children, each of a revision this forgets removed with it."""
        return Series(metric, self)

    def on_forget(self, forget: Forget) -> None:
        """Call ``forget(model labels + (revision,))`` when a revision leaves the recent ones."""
        self._forgetters.append(forget)

    def labels(self, model_labels: tuple[str, ...], revision: str) -> tuple[str, ...]:
        """The model's labels and its revision's, marking the revision as just seen."""
        seen = self._seen.get(model_labels)
        if seen is None:
            seen = self._seen[model_labels] = OrderedDict()
        if revision in seen:
            seen.move_to_end(revision)
        else:
            seen[revision] = None
            while len(seen) > self.limit:
                old, _ = seen.popitem(last=False)
                for forget in self._forgetters:
                    forget((*model_labels, old))
        return (*model_labels, revision)


class Series:
    """A labelled metric's children, kept by label values: a lookup costs more than the count.

    Every child of a revision-labelled metric is made here, so that :meth:`forget` can remove
    all of a revision's series.
    """

    def __init__(self, metric: MetricWrapperBase, revisions: RecentRevisions | None = None) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        if revisions is not None:
            revisions.on_forget(self.forget)

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        return child

    def forget(self, prefix: tuple[str, ...]) -> None:
        """Remove every series whose first label values are ``prefix``."""
        for labels in starting_with(self._children, prefix):
            del self._children[labels]
            self.metric.remove(*labels)


def starting_with(keys: Iterable[tuple[str, ...]], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The label values among ``keys`` whose first values are ``prefix``: a forgotten revision's."""
    width = len(prefix)
    return [labels for labels in keys if labels[:width] == prefix]
