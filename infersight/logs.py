"""Logging set-up shared by the long-running commands.

Kafka clients log every failed reconnect, many times a second while a broker is away; the
repeat filter keeps one line per message per interval and says how many it held back.
"""

from __future__ import annotations

import logging
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The logger to give librdkafka clients (their ``"logger"`` setting) whose lines should be rate-limited.
KAFKA_LOGGER = "librdkafka"


class RepeatFilter(logging.Filter):
    """Pass a given message at most once per ``interval`` seconds."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        if record.name == KAFKA_LOGGER and isinstance(record.args, tuple) and record.args:
            # confluent-kafka logs every librdkafka line as "%s [%s] %s" % (facility, client, text):
            # one line per facility (FAIL, REQTMOUT, ...) and interval.
            key = (record.name, str(record.args[0]))
        now = time.monotonic()
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.interval:.0f}s)"
        self._last[key] = (now, 0)
        return True


def configure(level: str = "info") -> None:
    """Timestamped lines on stderr; Kafka client chatter rate-limited."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    # librdkafka logs through Python only where a client is given this logger; the admin clients
    # that create topics and probe brokers run with log level 0, and our own messages say when
    # that fails.
    logging.getLogger(KAFKA_LOGGER).addFilter(RepeatFilter())
