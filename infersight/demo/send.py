"""POST events to an ingest, several at a time, optionally paced to a rate; used by demo and replay.

Each unit (a request and its response, say) is sent in order by one task; units run concurrently
up to ``concurrency``. Anything but ``202`` stops the run with the ingest's own reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from infersight.demo.traffic import Event


class SendError(Exception):
    """The ingest refused an event or could not be reached; the message says which and why."""


@dataclass
class Sent:
    events: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def _post(client: httpx.AsyncClient, url: str, event: Event) -> None:
    try:
        answer = await client.post(url, headers=event.headers, content=event.body)
    except httpx.HTTPError as exc:
        raise SendError(f"cannot reach the ingest at {url}: {type(exc).__name__}: {exc}") from exc
    if answer.status_code != 202:
        raise SendError(f"the ingest answered {answer.status_code} to {url}: {answer.text.strip()[:300]}")


async def send_units(
    url: str,
    units: Sequence[Sequence[Event]],
    *,
    concurrency: int = 16,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> Sent:
    """Send every unit; ``rate`` caps events per second; ``on_sent`` hears of each event sent."""
    sent = Sent()
    started = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(units)):
        queue.put_nowait(index)
    offsets = []
    total = 0
    for unit in units:
        offsets.append(total)
        total += len(unit)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            if rate is not None:
                delay = started + offsets[index] / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            for event in units[index]:
                await _post(client, url, event)
                sent.events += 1
                if on_sent is not None:
                    on_sent(1)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(max(1, min(concurrency, len(units))))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    sent.seconds = time.monotonic() - started
    return sent


def send(
    url: str,
    units: Sequence[Sequence[Event]],
    *,
    concurrency: int = 16,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> Sent:
    """:func:`send_units` from synchronous code."""
    return asyncio.run(send_units(url, units, concurrency=concurrency, rate=rate, on_sent=on_sent))
