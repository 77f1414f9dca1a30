"""Benchmark ``training-pipeline serve``: latency at a fixed rate, saturation throughput,
and swaps under load.

    .venv/bin/python scripts/bench_serving.py [--rate 100] [--seconds 30] [--swaps 5]

Builds a temporary data directory with two churn versions (logistic regression and
gradient boosting, the product's own pipelines fit on synthetic churn rows), starts the
real CLI server on a free port in its own process, and drives it from this one:

1. ``--rate`` single-record requests per second for ``--seconds`` (open loop: each
   request is sent at its scheduled time, and its latency counts from that time, so a
   stalled server cannot hide its queue); p50, p90, p99, max.
2. Saturation: ``--clients`` closed-loop clients for ``--saturation-seconds``; requests/s.
3. Swaps: the fixed-rate load again while production moves ``--swaps`` times (promote,
   rollback, rollback --to, ...); every failed request is counted.

Prints the figures with the machine (cores, load average) and the server's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training_pipeline_tests"))

from churn_problem import CHURN  # noqa: E402
from synthetic_churn import churn_snapshots  # noqa: E402

from training_pipeline.ml.registry import ModelRegistry  # noqa: E402
from training_pipeline.ml.reproduce import TRAINING_SET_FILE  # noqa: E402
from training_pipeline.ml.tuning import fit_final  # noqa: E402

FAMILIES = {"logistic_regression": {}, "hist_gradient_boosting": {"max_iter": 100}}


def registry_with_two_versions(data_dir: Path) -> tuple[ModelRegistry, list[str]]:
    frame = churn_snapshots(n_customers=300, n_snapshots=8, seed=0)
    training = data_dir / "training_set.parquet"
    frame.to_parquet(training)
    registry = ModelRegistry.for_model(data_dir / "models", "churn")
    versions = []
    for family, params in FAMILIES.items():
        model = fit_final(frame, CHURN, family, params)
        version = registry.register(
            model,
            family=family,
            params=params,
            metrics={"threshold": 0.5},
            problem=CHURN,
            data_fingerprint=f"bench-{family}",
            trained_on=["synthetic"],
            extra_files={TRAINING_SET_FILE: training},
        )
        versions.append(version.version)
        time.sleep(1.1)  # version ids carry the second
    registry.promote(versions[0])
    return registry, versions


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = os.environ | {"TRAINING_PIPELINE_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [
            str(REPO / ".venv/bin/training-pipeline"),
            "serve",
            "--model",
            "churn",
            "--port",
            "0",
            "--watch-interval",
            "0.5",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:
        if found := re.search(r"running on (http://\S+)", line):
            return server, found.group(1)
    raise RuntimeError(f"the server exited ({server.wait()}) before listening")


def one_record() -> dict:
    row = churn_snapshots(n_customers=1, n_snapshots=1, seed=3)[list(CHURN.features)].iloc[0]
    return {
        k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()
    }


async def fixed_rate(url: str, body: dict, rate: float, seconds: float, during=None) -> dict:
    latencies, failures, versions = [], [], set()
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as client:

        async def send(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as error:
                failures.append(repr(error))
                return
            latencies.append(time.perf_counter() - at)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:100]}")
            else:
                versions.add(response.json()["version"])

        start = time.perf_counter() + 0.2
        tasks = [asyncio.create_task(send(start + i / rate)) for i in range(int(rate * seconds))]
        if during is not None:
            await during()
        await asyncio.gather(*tasks)
    return {"latencies": latencies, "failures": failures, "versions": versions}


async def saturation(url: str, body: dict, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=10) as client:

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.post(url, json=body)).raise_for_status()
                done += 1

        await asyncio.gather(*(loop() for _ in range(clients)))
    return done / seconds


def quantiles(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100)
    return (
        f"p50 {cuts[49]:.2f} ms, p90 {cuts[89]:.2f} ms, p99 {cuts[98]:.2f} ms, max {ms[-1]:.2f} ms"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--saturation-seconds", type=float, default=10)
    parser.add_argument("--swaps", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    registry, versions = registry_with_two_versions(data_dir)
    server, base = start_server(data_dir)
    url, body = f"{base}/v1/models/churn/predict", one_record()
    try:
        asyncio.run(fixed_rate(url, body, 50, 2))  # warm-up
        cpu_before = cpu_seconds(server.pid)
        steady = asyncio.run(fixed_rate(url, body, args.rate, args.seconds))
        cpu = cpu_seconds(server.pid) - cpu_before
        per_request_ms = cpu / len(steady["latencies"]) * 1000
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
        print(
            f"fixed rate {args.rate:g}/s for {args.seconds:g} s, single record "
            f"({len(steady['latencies'])} requests, {len(steady['failures'])} failed): "
            f"{quantiles(steady['latencies'])}; server CPU {per_request_ms:.2f} ms/request"
        )
        throughput = asyncio.run(saturation(url, body, args.clients, args.saturation_seconds))
        print(
            f"saturation ({args.clients} closed-loop clients, {args.saturation_seconds:g} s): "
            f"{throughput:.0f} requests/s"
        )

        async def move_production() -> None:
            pause = args.seconds / (args.swaps + 1)
            for swap in range(args.swaps):
                await asyncio.sleep(pause)
                target = versions[(swap + 1) % 2]
                await asyncio.to_thread(registry.rollback, to=target, reason="bench", reject=False)

        swaps = asyncio.run(fixed_rate(url, body, args.rate, args.seconds, move_production))
        print(
            f"swaps: {args.swaps} production moves during {len(swaps['latencies'])} requests "
            f"at {args.rate:g}/s: {len(swaps['failures'])} failed, versions served "
            f"{sorted(swaps['versions'])}; {quantiles(swaps['latencies'])}"
        )
        for failure in swaps["failures"][:5]:
            print("  failure:", failure)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data_dir)


if __name__ == "__main__":
    main()
