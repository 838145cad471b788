"""The revision of an inference, read from what real KServe and Seldon loggers send."""

from __future__ import annotations

import pytest

from infersight.revisions import revision_of


@pytest.mark.parametrize(
    ("attributes", "revision"),
    [
        # KServe serverless: the pod of a Knative revision (ce-source is the pod's name).
        (
            {"source": "iris-predictor-00002-deployment-7c9f8b6d5-x2x4p", "endpoint": ""},
            "iris-predictor-00002",
        ),
        (
            {"source": "sklearn-iris-transformer-00011-deployment-5d4f6c7b8b-qwert"},
            "sklearn-iris-transformer-00011",
        ),
        # KServe raw deployment: the ReplicaSet, one per rollout.
        ({"source": "iris-predictor-7c9f8b6d5-x2x4p"}, "iris-predictor-7c9f8b6d5"),
        ({"source": "iris-predictor-canary-6f7d9c8b4-abcde"}, "iris-predictor-canary-6f7d9c8b4"),
        # An explicit extension wins; the endpoint when nothing else says.
        ({"source": "iris-predictor-00002-deployment-7c9f8b6d5-x2x4p", "revision": "v7"}, "v7"),
        ({"source": "http://localhost:9081/", "endpoint": "canary"}, "canary"),
        ({"source": "http://localhost:9081/"}, ""),
        ({}, ""),
    ],
)
def test_revision_from_the_event(attributes: dict[str, str], revision: str) -> None:
    assert revision_of(attributes) == revision
