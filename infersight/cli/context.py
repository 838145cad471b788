"""What every command shares: the loaded settings, and the one error type the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from infersight.config import ConfigError, Settings, TlsConfig, load_settings
from infersight.kafkaclient import KafkaAuthenticationFailed, KafkaUnreachable


class CliError(Exception):
    """Printed as one line, with exit status 1."""


@dataclass
class State:
    config_path: Path | None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise CliError(str(exc)) from exc
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    assert isinstance(state, State)
    return state.settings()


def tls_files(tls: TlsConfig | None) -> tuple[str | None, str | None]:
    """uvicorn's ``ssl_certfile`` and ``ssl_keyfile``: both None for plain HTTP."""
    return (str(tls.certfile), str(tls.keyfile)) if tls is not None else (None, None)


def kafka_error(exc: KafkaUnreachable) -> CliError:
    """The line to print: a broker refusing our login needs other advice than one that is not there."""
    if isinstance(exc, KafkaAuthenticationFailed):
        return CliError(str(exc))
    return CliError(f"{exc} (start one with `infersight kafka start`)")
