"""Benchmark: a 100,000-row evaluation through the real server vs in-process predict.

The physical limit is in-process: read the same rows, call the estimator's
``predict``/``predict_proba`` directly, compute the same metrics with the same
code. The runner pays for the TF Serving API on top (encode, gRPC/HTTP, decode).
Prints rows/s of both and their ratio (goal: >= 0.5). Not a test: numbers vary.

    .venv/bin/python bench/evaluate/run.py [--rows 100000] [--protocol grpc]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skops.io import dump

from modelrollout.serving import client
from modelrollout.serving.evaluation import analysis, datasets, metrics, runner

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def prepare(workdir: Path, rows: int) -> tuple[Path, Path, LogisticRegression]:
    """A 3-class, 20-feature problem: 5,000 training rows, ``rows`` evaluation rows."""
    x, y = make_classification(
        n_samples=rows + 5000, n_features=20, n_informative=8, n_classes=3, random_state=0
    )
    model = LogisticRegression(max_iter=1000).fit(x[:5000], y[:5000])
    artifact = workdir / "model.skops"
    dump(model, artifact)
    frame = pd.DataFrame(x[5000:], columns=[f"f{i}" for i in range(20)]).assign(label=y[5000:])
    data = workdir / "eval.parquet"
    frame.to_parquet(data)
    return artifact, data, model


def start_server(artifact: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    grpc_port, rest_port = free_port(), free_port()
    log = (workdir / "server.log").open("wb")
    cmd = [sys.executable, "-m", "modelrollout", "serve", "--model-name", "bench"]
    cmd += ["--model-uri", str(artifact), "--host", HOST]
    cmd += ["--grpc-port", str(grpc_port), "--rest-port", str(rest_port)]
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{rest_port}/v1/models/bench", timeout=2):
                return proc, grpc_port, rest_port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready; see " + str(workdir / "server.log"))


def in_process(data: Path, model: LogisticRegression) -> float:
    """Seconds for read + predict + predict_proba + the same metric code."""
    t0 = time.perf_counter()
    ds = datasets.load(datasets.DatasetSettings(str(data), label="label"))
    pred = metrics.Predictions(model.predict(ds.features), model.predict_proba(ds.features))
    analysis.analyse("classification", ds.labels, pred, None, settings=analysis.StatsSettings(0))
    return time.perf_counter() - t0


def through_server(
    data: Path, address: str, protocol: str, batch: int, conc: int, *, baseline: bool = False
) -> float:
    """Seconds for the runner's own evaluation (read, score via the API, metrics, gates)."""
    target = client.Target(address, "bench", protocol=protocol)  # type: ignore[arg-type]
    settings = runner.EvaluationSettings(
        dataset=datasets.DatasetSettings(str(data), label="label"),
        candidate=target,
        baseline=target if baseline else None,
        client=client.ClientSettings(batch_size=batch, concurrency=conc),
        stats=analysis.StatsSettings(1000 if baseline else 0),
        task="classification",
    )
    t0 = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        outcome = runner.run(settings, stderr=devnull)
    elapsed = time.perf_counter() - t0
    assert outcome.full["dataset"]["rows"] > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        artifact, data, model = prepare(workdir, args.rows)
        proc, grpc_port, rest_port = start_server(artifact, workdir)
        try:
            base = min(in_process(data, model) for _ in range(args.repeat))
            print(f"in-process predict + metrics: {args.rows / base:12,.0f} rows/s ({base:.2f} s)")
            for protocol, port in (("grpc", grpc_port), ("rest", rest_port)):
                for batch, conc in ((256, 4), (1024, 4), (4096, 2)):
                    address = f"{HOST}:{port}"
                    best = min(
                        through_server(data, address, protocol, batch, conc)
                        for _ in range(args.repeat)
                    )
                    default = "  (default)" if (protocol, batch, conc) == ("grpc", 1024, 4) else ""
                    print(
                        f"runner via {protocol:4} batch {batch:5} x{conc}: "
                        f"{args.rows / best:12,.0f} rows/s ({best:.2f} s)  "
                        f"ratio {base / best:.2f}{default}"
                    )
            full = through_server(data, f"{HOST}:{grpc_port}", "grpc", 1024, 4, baseline=True)
            print(
                f"with a baseline + 1000 paired bootstrap resamples + McNemar: {full:.2f} s "
                f"({args.rows / full:,.0f} rows/s)"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
