"""Turn a detector's configuration into a running alibi-detect detector, or fail with the reason.

Every configured detector is loaded when the worker starts, so that a wrong URI, a refused
format or a bad parameter stops it at once with the model, the source and why, instead of
surfacing at the first event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infersight.config import DetectorConfig, ModelConfig
from infersight.detectors.catalog import CatalogError, Family, build, family_of, is_stateful
from infersight.detectors.sources import SourceError, fetch_folder, latest_version, read_reference

#: Files that alibi-detect reads with dill or pickle, which can run arbitrary code.
UNSAFE_SUFFIXES = (".dill", ".pickle", ".pkl")


class DetectorLoadError(Exception):
    """A configured detector that cannot run; the message names the model, the source and the reason."""


@dataclass(frozen=True)
class LoadedDetector:
    """A configured detector, ready to score.

    ``make`` gives the instance for one model (and endpoint): the shared one for detectors that
    do not change when they score, a fresh copy for those that do (online drift, Mahalanobis).
    """

    model: ModelConfig
    config: DetectorConfig
    family: Family
    algorithm: str
    make: Callable[[], Any]
    #: The version loaded from a versioned ``uri`` (the folder ``LATEST`` named); "" otherwise.
    version: str = ""


def use_legacy_keras() -> None:
    """alibi-detect's TensorFlow detectors need Keras 2, which TensorFlow ≥ 2.16 gives only when asked."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter about absent GPUs


def unsafe_files(folder: Path) -> list[str]:
    return sorted(
        str(path.relative_to(folder)) for path in folder.rglob("*") if path.suffix in UNSAFE_SUFFIXES
    )


def _load_saved(config: DetectorConfig, cache_dir: Path, version: str) -> Any:
    assert config.uri is not None
    uri = f"{config.uri.rstrip('/')}/{version}" if version else config.uri
    folder = fetch_folder(uri, cache_dir, config.storage_options)
    risky = unsafe_files(folder)
    if risky and not config.allow_unsafe_loading:
        raise CatalogError(
            f"it holds {', '.join(risky[:3])}, read with dill/pickle, which runs code when loaded "
            "(alibi-detect saves outlier and adversarial detectors, and Python functions, this way); set "
            "allow_unsafe_loading: true on this detector if you trust where it comes from"
        )
    use_legacy_keras()
    from alibi_detect.saving import load_detector

    return load_detector(str(folder), enable_unsafe_loading=config.allow_unsafe_loading)


def _describe(model: ModelConfig, config: DetectorConfig) -> str:
    component = f" component {model.component}" if model.component else ""
    endpoint = f" endpoint {model.endpoint}" if model.endpoint else ""
    source = f"uri {config.uri}" if config.uri else f"algorithm {config.algorithm} on {config.reference}"
    where = f"{model.namespace}/{model.inferenceservice}{component}{endpoint}"
    return f"model {where}, detector {config.name!r} ({source})"


def _instantiate(config: DetectorConfig, cache_dir: Path, version: str) -> Any:
    if config.uri is not None:
        return _load_saved(config, cache_dir, version)
    assert config.algorithm is not None and config.reference is not None
    if config.algorithm in ("MMDDrift", "LSDDDrift", "MMDDriftOnline", "LSDDDriftOnline"):
        use_legacy_keras()
    reference = read_reference(config.reference, config.storage_options)
    return build(config.algorithm, config.kind, reference, config.parameters)


def load(model: ModelConfig, config: DetectorConfig, cache_dir: Path) -> LoadedDetector:
    """Load or fit one configured detector: of a versioned ``uri``, the version ``LATEST`` names."""
    try:
        version = (latest_version(config.uri, config.storage_options) if config.uri else None) or ""
        detector = _instantiate(config, cache_dir, version)
        family = family_of(detector, config.kind)
    except (SourceError, CatalogError) as exc:
        raise DetectorLoadError(f"{_describe(model, config)}: {exc}") from exc
    except Exception as exc:  # alibi-detect and its backends raise anything (TypeError, ValueError, ...)
        raise DetectorLoadError(f"{_describe(model, config)}: {type(exc).__name__}: {exc}") from exc
    algorithm = type(detector).__name__
    if not is_stateful(detector):
        return LoadedDetector(model, config, family, algorithm, make=lambda: detector, version=version)
    # The first model (or endpoint) gets the detector loaded at start; each further one loads its
    # own, since detectors holding Keras models cannot be deep-copied.
    unused = [detector]
    return LoadedDetector(
        model,
        config,
        family,
        algorithm,
        make=lambda: unused.pop() if unused else _instantiate(config, cache_dir, version),
        version=version,
    )


def newer_version(loaded: LoadedDetector, cache_dir: Path) -> LoadedDetector | None:
    """The detector again when its versioned ``uri`` now names another version; None when not."""
    config = loaded.config
    if config.uri is None:
        return None
    try:
        latest = latest_version(config.uri, config.storage_options)
    except SourceError as exc:
        raise DetectorLoadError(f"{_describe(loaded.model, config)}: {exc}") from exc
    if latest is None or latest == loaded.version:
        return None
    return load(loaded.model, config, cache_dir)


def load_all(models: Sequence[ModelConfig], cache_dir: Path) -> list[LoadedDetector]:
    """Every configured detector, in configuration order; the first failure stops the lot."""
    return [load(model, config, cache_dir) for model in models for config in model.detectors]
