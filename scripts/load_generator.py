"""A lean HTTP/1.1 load generator for ``bench_serving.py``, run in a process of its own.

    .venv/bin/python scripts/load_generator.py URL BODY_FILE --rate 100 --seconds 30
    .venv/bin/python scripts/load_generator.py URL BODY_FILE --clients 8 --seconds 10

Prints one JSON object: latencies (seconds), failures, the versions answered, and this
process's own CPU seconds, so a benchmark can say what the load cost besides the server.

Why not httpx: on a 2-core machine the generator shares the cores with the server, so
its CPU is latency the server is blamed for; httpx builds request and response objects
and runs its pool and h11 parser in Python for every request.  Here a request is one
prebuilt byte string written to a kept-alive socket and the answer is read by its
``content-length``, on uvloop (as the server).

``--rate``: open loop.  Request ``i`` is due at ``start + i / rate`` whatever happened to
the earlier ones; it takes an idle connection (or opens one) and its latency counts from
its due time, so a stalled server shows its queue instead of slowing the load down.
``--clients``: closed loop, for saturation throughput: each client sends its next
request when the previous answer arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

import uvloop

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# uvicorn closes a connection idle for 5 s (--timeout-keep-alive); one idle for longer
# than this is not reused, lest the request cross the server's close (a false failure).
MAX_IDLE_S = 4.0


class Target:
    """One URL's prebuilt request and a pool of idle kept-alive connections to it."""

    def __init__(self, url: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        head = (
            f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body
        self.idle: list[tuple[Connection, float]] = []  # with when it was last used

    async def post(self) -> tuple[int, bytes]:
        """Status and body of one request, on an idle connection or a new one."""
        reader, writer = self._reusable() or await self._connect()
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        self.idle.append(((reader, writer), time.perf_counter()))
        return status, body

    def _reusable(self) -> Connection | None:
        """The most recently used idle connection the server has not closed."""
        while self.idle:
            (reader, writer), used = self.idle.pop()
            if time.perf_counter() - used < MAX_IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _connect(self) -> Connection:
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for (_, writer), _ in self.idle:
            writer.close()


class Results:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.versions: set[str] = set()

    async def one(self, target: Target, since: float) -> None:
        try:
            status, body = await target.post()
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.failures.append(repr(error))
            return
        self.latencies.append(time.perf_counter() - since)
        if status != 200:
            self.failures.append(f"{status} {body[:100]!r}")
        else:
            self.versions.add(json.loads(body)["version"])


async def fixed_rate(target: Target, rate: float, seconds: float) -> Results:
    results = Results()
    start = time.perf_counter() + 0.1
    pending = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        pending.append(asyncio.create_task(results.one(target, due)))
    await asyncio.gather(*pending)
    return results


async def closed_loop(target: Target, clients: int, seconds: float) -> Results:
    results = Results()
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            await results.one(target, time.perf_counter())

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


async def run(args: argparse.Namespace) -> Results:
    with open(args.body_file, "rb") as file:
        target = Target(args.url, file.read())
    try:
        if args.clients:
            return await closed_loop(target, args.clients, args.seconds)
        return await fixed_rate(target, args.rate, args.seconds)
    finally:
        target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body_file", help="the JSON body every request sends")
    parser.add_argument("--rate", type=float, default=100, help="requests/s (open loop)")
    parser.add_argument("--clients", type=int, default=0, help="closed-loop clients instead")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    results = uvloop.run(run(args))
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    json.dump(
        {
            "latencies": results.latencies,
            "failures": results.failures,
            "versions": sorted(results.versions),
            "cpu_seconds": used,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
