"""A load generator for a served model, in the spirit of Triton's perf_analyzer, against `mclrt bench`.

    python -m mclrt.tools.serve_bench --url http://127.0.0.1:8000 --model runtime/models/demo \
        --concurrency 1 4 8 --requests 64 [--binary/--json-tensors] [--distinct-exemplars K] [--json]

For each concurrency C, C client threads send `--requests` inference requests in all to the ensemble
(`translate`: one condition + one exemplar each, KServe v2 HTTP, binary tensors by default) and it
prints the throughput (requests answered per second, wall clock), the latency percentiles p50/p95/p99
of one request (send to last byte), and the batch sizes the server's dynamic batcher actually ran the
translator and the encoder with, from Triton's statistics endpoint (`/v2/models/<m>/stats`, read before
and after the level). Requests carry one of `--distinct-exemplars` exemplars (default 1, what a video
client sends: the python backend's exemplar cache then encodes it once).

Then `mclrt bench`'s measurement of the same model directory on this machine (`run_benchmark`, ONNX
Runtime, batch 1, while the server is idle) and the ratio of the served throughput to bench's images
per second on the path doing the same work: `end_to_end_cached_exemplar` (translate with an exemplar
already encoded) for one exemplar, `end_to_end` (encode + translate) otherwise. Both run on the same
cores, so the ratio says what serving costs (HTTP, serialization, batching, two processes); it is not
a statement about a GPU deployment. Nothing is asserted; exit code 0 unless a request failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mclrt.runtime.serve.client import InferError, batch_counts, batch_counts_after, encode_request, model_statistics, post_infer


@dataclass
class Level:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput: float  # requests / s
    p50_ms: float
    p95_ms: float
    p99_ms: float
    translator_batches: dict[int, int] = field(default_factory=dict)  # batch size -> executions
    encoder_batches: dict[int, int] = field(default_factory=dict)
    ratio_to_bench: float | None = None


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) if samples else float("nan")


def request_bodies(model_path: Path, distinct: int, binary: bool) -> list[tuple[bytes, dict]]:
    """Valid requests for the model: conditions and exemplars from package photos (as `mclrt bench` makes them)."""
    from mclrt.runtime.bench.latency import _bench_photos, drawn_pattern, synthetic_condition
    from mclrt.runtime.inputs.preprocess import photo_to_tensor, resize_photo
    from mclrt.runtime.model_dir import load_model_dir

    model = load_model_dir(model_path)
    size, spec = model.image_size, model.condition
    exemplar_photo, condition_photo = _bench_photos()
    condition = synthetic_condition(spec, size, condition_photo)[None].astype(np.float32)
    bodies = []
    for index in range(distinct):
        photo = exemplar_photo if index == 0 else drawn_pattern(100 + index)
        inputs = {"condition": condition, "exemplar": photo_to_tensor(resize_photo(photo, size))[None].astype(np.float32)}
        if spec.maskmix:
            inputs["exemplar_condition"] = synthetic_condition(spec, size, photo)[None].astype(np.float32)
        bodies.append(encode_request(inputs, ["image"], binary))
    return bodies


def run_level(url: str, model: str, bodies, concurrency: int, requests: int) -> Level:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            body, headers = bodies[index % len(bodies)]
            start = time.perf_counter()
            try:
                post_infer(url, model, body, headers)
                ok = True
            except (InferError, OSError):
                ok = False
            elapsed = (time.perf_counter() - start) * 1000.0
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    before = {name: batch_counts(model_statistics(url, name)) for name in ("translator", "exemplar_encoder")}
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    delta = {name: batch_counts_after(url, name, before[name], len(latencies)) for name in before}
    return Level(
        concurrency, requests, errors[0], seconds, len(latencies) / seconds if seconds > 0 else float("nan"),
        percentile(latencies, 50), percentile(latencies, 95), percentile(latencies, 99),
        delta["translator"], delta["exemplar_encoder"],
    )


def bench_rate(model_path: Path, runs: int, distinct: int) -> tuple[str, float]:
    """(stage, images per second) of `mclrt bench` on the path doing the served requests' work."""
    from mclrt.runtime.backends import Backend
    from mclrt.runtime.bench.latency import BenchOptions, run_benchmark

    result = run_benchmark(model_path, BenchOptions(backend=Backend.ort, batch=1, runs=runs, warmup=3))
    stage = "end_to_end_cached_exemplar" if distinct == 1 else "end_to_end"
    return stage, 1000.0 / result.latency_ms_per_image[stage].median_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mclrt.tools.serve_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server's KServe v2 HTTP address.")
    parser.add_argument("--model", type=Path, required=True, help="The model directory the server serves (inputs, and `mclrt bench` for the ratio).")
    parser.add_argument("--ensemble", default="translate", help="The model to call (the ensemble `mclrt serve export` writes).")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="Client threads, one level each.")
    parser.add_argument("--requests", type=int, default=64, help="Requests per level.")
    parser.add_argument("--distinct-exemplars", type=int, default=1, help="How many different exemplars the requests cycle through.")
    parser.add_argument("--json-tensors", action="store_true", help="Send tensors as JSON numbers instead of binary data.")
    parser.add_argument("--bench-runs", type=int, default=20, help="Timed runs of `mclrt bench` for the ratio (0: skip it).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.distinct_exemplars < 1 or min(args.concurrency) < 1 or args.bench_runs < 0:
        parser.error("--requests, --distinct-exemplars and --concurrency must be at least 1, --bench-runs at least 0")
    from mclrt.runtime.errors import UserError

    try:
        bodies = request_bodies(args.model, args.distinct_exemplars, not args.json_tensors)
        run_level(args.url, args.ensemble, bodies, 1, 2)  # warm-up: first requests load lazily
        levels = [run_level(args.url, args.ensemble, bodies, c, args.requests) for c in args.concurrency]
        stage, rate = bench_rate(args.model, args.bench_runs, args.distinct_exemplars) if args.bench_runs else (None, None)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (InferError, OSError) as err:
        print(f"error: {args.url}: {err}", file=sys.stderr)
        return 2
    for level in levels:
        level.ratio_to_bench = level.throughput / rate if rate else None
    if args.json:
        print(json.dumps({"url": args.url, "model": str(args.model), "bench_stage": stage, "bench_images_per_s": rate,
                          "levels": [asdict(level) for level in levels]}))
    else:
        print(f"{args.ensemble} at {args.url}: {args.requests} requests per level, {args.distinct_exemplars} exemplar(s), "
              f"{'JSON' if args.json_tensors else 'binary'} tensors")
        print(f"{'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'x bench':>7}  translator batches (size:count)")
        for level in levels:
            batches = " ".join(f"{size}:{count}" for size, count in level.translator_batches.items())
            ratio = f"{level.ratio_to_bench:.2f}" if level.ratio_to_bench is not None else "-"
            print(f"{level.concurrency:>4} {level.throughput:>7.1f} {level.p50_ms:>8.1f} {level.p95_ms:>8.1f} {level.p99_ms:>8.1f} "
                  f"{level.errors:>6} {ratio:>7}  {batches}")
        if rate:
            print(f"mclrt bench ({stage}, ONNX Runtime, batch 1, same machine): {rate:.1f} img/s; 'x bench' = served req/s / that")
    return 0 if all(level.errors == 0 for level in levels) else 3


if __name__ == "__main__":
    sys.exit(main())
