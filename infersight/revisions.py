"""Which revision of a model served an inference, read from its event.

Current KServe controllers set no ``endpoint`` pod label, so ``Ce-Endpoint`` arrives empty and
default and canary cannot be told apart by it. The revision is still in ``ce-source``, the pod's
name: a serverless pod is named after its Knative revision
(``iris-predictor-00002-deployment-7c9f8b6d5-x2x4p`` → ``iris-predictor-00002``), a raw-deployment
pod after its ReplicaSet, one per rollout (``iris-predictor-7c9f8b6d5-x2x4p`` →
``iris-predictor-7c9f8b6d5``). An explicit ``revision`` extension wins over both; without either,
the endpoint (``default``, ``canary``) names it when the logger set one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

#: A Knative revision's pod: ``<revision>-deployment-<replicaset hash>-<pod suffix>``.
_SERVERLESS: Final = re.compile(r"(?P<revision>[a-z0-9-]+-\d{5})-deployment-[a-z0-9]{5,10}-[a-z0-9]{5}")
#: A raw deployment's pod: ``<service>-<component>[-<endpoint>]-<replicaset hash>-<pod suffix>``.
_RAW: Final = re.compile(
    r"(?P<revision>[a-z0-9-]+-(?:predictor|transformer|explainer)(?:-default|-canary)?-[a-z0-9]{5,10})-[a-z0-9]{5}"
)


def revision_of(attributes: Mapping[str, str]) -> str:
    """The revision that served this event; empty when nothing in it says."""
    explicit = attributes.get("revision", "").strip()
    if explicit:
        return explicit
    return _from_source(attributes.get("source", "").strip()) or attributes.get("endpoint", "").strip()


@functools.lru_cache(maxsize=4096)
def _from_source(source: str) -> str:
    """The revision in a pod's name; a model's few pods make this a lookup."""
    for pattern in (_SERVERLESS, _RAW):
        if match := pattern.fullmatch(source):
            return match["revision"]
    return ""
