"""`mclrt serve export` and `mclrt serve run`: a model directory on NVIDIA's Triton Inference Server.

See mclrt.runtime.serve (repository layout, backends, the server environment) and docs/serving.md.
"""

from __future__ import annotations

import signal
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import typer

serve_app = typer.Typer(help="Triton Inference Server: model repositories and a local server.", no_args_is_help=True)

_BACKENDS = ("onnxruntime", "tensorrt", "python")


def _model(option: Optional[Path], positional: Optional[Path]) -> Path:
    """MODEL as every command takes it (--model), or as the issue spells it (`mclrt serve export MODEL`)."""
    from mclrt.runtime.errors import UserError

    if option is not None and positional is not None and option != positional:
        raise UserError(f"two model directories given: --model {option} and {positional}")
    if option is None and positional is None:
        raise UserError("which model? give --model DIR (a directory written by `mclrt export`)")
    return option if option is not None else positional


_MODEL_HELP = "Model directory (mclrt.json + exemplar_encoder.onnx + translator.onnx)."


@serve_app.command("export")
def export(
    model_option: Optional[Path] = typer.Option(None, "--model", help=_MODEL_HELP, show_default=False),
    positional_model: Optional[Path] = typer.Argument(None, hidden=True, show_default=False, metavar="MODEL"),
    out: Path = typer.Option(..., "--out", help="The model repository to write: a new or empty folder."),
    backend: str = typer.Option("python", "--backend", help="onnxruntime | tensorrt (never run here) | python (ONNX Runtime in Triton's python backend)."),
    max_batch: int = typer.Option(8, "--max-batch", help="Triton's max_batch_size of every model (the dynamic batcher merges requests up to it)."),
    instances: int = typer.Option(1, "--instances", help="Instances of the encoder and of the translator (instance_group count)."),
    preferred_batch: Optional[List[int]] = typer.Option(None, "--preferred-batch", help="Batch sizes the dynamic batcher prefers (repeat the option)."),
    queue_delay_us: int = typer.Option(2000, "--queue-delay-us", help="How long the batcher waits for more requests, in microseconds."),
    warped: bool = typer.Option(True, "--warped/--no-warped", help="The ensemble also returns warped_exemplar."),
    exemplar_cache: int = typer.Option(16, "--exemplar-cache", help="python backend: encoded exemplars each encoder instance keeps (0: none)."),
    threads: int = typer.Option(0, "--threads", help="python backend: ONNX Runtime threads per instance (0: its default)."),
    engines: Optional[Path] = typer.Option(None, "--engines", help="tensorrt: a folder with exemplar_encoder.plan and translator.plan built for the serving GPU."),
    plugin_library: Optional[Path] = typer.Option(None, "--plugin-library", help="tensorrt: a TensorRT plugin library the plans need (Triton loads it with --backend-config)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (repository, models, files) instead of lines."),
) -> None:
    """Write a Triton model repository: encoder, translator (dynamic batching) and the ensemble `translate`."""
    import json

    from mclrt.runtime.serve.repository import ENSEMBLE, RepositoryOptions, export_repository

    model = _model(model_option, positional_model)

    options = RepositoryOptions(
        backend=_backend(backend), max_batch=max_batch, instances=instances, preferred_batch=tuple(preferred_batch or ()),
        max_queue_delay_us=queue_delay_us, warped=warped, exemplar_cache=exemplar_cache, threads=threads,
        engines=engines, plugin_library=plugin_library,
    )
    if queue_delay_us < 0 or exemplar_cache < 0 or threads < 0:
        from mclrt.runtime.errors import UserError

        raise UserError("--queue-delay-us, --exemplar-cache and --threads must not be negative")
    repository = export_repository(model, out, options)
    if json_output:
        print(json.dumps({"repository": str(repository.path), "backend": options.backend.value, "ensemble": ENSEMBLE,
                          "models": list(repository.configs), "files": [str(f) for f in repository.files],
                          "plans": "copied" if engines else ("build_plans.sh" if options.backend.value == "tensorrt" else None)}))
        return
    print(f"wrote {repository.path}: models {', '.join(repository.configs)} ({options.backend.value} backend); clients call '{ENSEMBLE}'")
    if options.backend.value == "tensorrt":
        print(f"TensorRT plans: {'copied from ' + str(engines) if engines else 'build them on the serving GPU with ' + str(repository.path / 'build_plans.sh')} (never run by mclrt)")


def _backend(name: str):
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.serve.repository import ServeBackend

    if name not in _BACKENDS:
        raise UserError(f"--backend {name!r} is not one of {', '.join(_BACKENDS)}")
    return ServeBackend(name)


class _Terminated(Exception):
    """SIGTERM arrived: stop the server and exit 0 (a service stopped on purpose)."""


@serve_app.command("run")
def run(
    model_option: Optional[Path] = typer.Option(None, "--model", help=_MODEL_HELP, show_default=False),
    positional_model: Optional[Path] = typer.Argument(None, hidden=True, show_default=False, metavar="MODEL"),
    http_port: int = typer.Option(8000, "--http-port", help="KServe v2 HTTP/REST port."),
    grpc_port: int = typer.Option(8001, "--grpc-port", help="KServe v2 gRPC port."),
    metrics_port: int = typer.Option(8002, "--metrics-port", help="Prometheus metrics port (/metrics)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address every endpoint binds."),
    max_batch: int = typer.Option(8, "--max-batch", help="Triton's max_batch_size of every model."),
    instances: int = typer.Option(1, "--instances", help="Instances of the encoder and of the translator."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime threads per instance (0: its default)."),
    exemplar_cache: int = typer.Option(16, "--exemplar-cache", help="Encoded exemplars each encoder instance keeps."),
    verbose: bool = typer.Option(False, "--verbose", help="Triton's verbose log (written to the log file)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object per event (ready, stopped) instead of lines."),
) -> None:
    """Serve the model with the real tritonserver (python backend, ONNX Runtime) until Ctrl-C or SIGTERM."""
    import json

    model = _model(model_option, positional_model)
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.serve.repository import ENSEMBLE, RepositoryOptions, ServeBackend, export_repository
    from mclrt.runtime.serve.server import TritonServer, find_serve_env

    for name, port in (("--http-port", http_port), ("--grpc-port", grpc_port), ("--metrics-port", metrics_port)):
        if not 1 <= port <= 65535:
            raise UserError(f"{name} {port} is not a port number")
    if len({http_port, grpc_port, metrics_port}) != 3:
        raise UserError("--http-port, --grpc-port and --metrics-port must differ")
    env = find_serve_env()  # before anything is written: says how to make it when missing
    workdir = Path(tempfile.mkdtemp(prefix="mclrt-serve-"))
    previous = signal.getsignal(signal.SIGTERM)

    def terminate(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, terminate)
    server = None
    try:
        options = RepositoryOptions(backend=ServeBackend.python, max_batch=max_batch, instances=instances, threads=threads, exemplar_cache=exemplar_cache)
        repository = export_repository(model, workdir / "repository", options)
        server = TritonServer(repository.path, host, http_port, grpc_port, metrics_port, env=env, log=workdir / "tritonserver.log", verbose=verbose)
        started = time.monotonic()
        server.start()
        if not json_output:
            print(f"starting tritonserver for {model} (log: {server.log_path})", flush=True)
        server.wait_ready()
        if json_output:
            print(json.dumps({"event": "ready", "seconds": round(time.monotonic() - started, 2), "http": server.url,
                              "grpc": f"{host}:{grpc_port}", "metrics": f"http://{host}:{metrics_port}/metrics",
                              "model": ENSEMBLE, "log": str(server.log_path)}), flush=True)
        else:
            print(
            f"ready in {time.monotonic() - started:.1f} s: KServe v2 HTTP {server.url}, gRPC {host}:{grpc_port}, "
            f"metrics http://{host}:{metrics_port}/metrics; model '{ENSEMBLE}' (Ctrl-C or SIGTERM stops it)",
            flush=True,
        )
        while server.process.poll() is None:
            time.sleep(0.2)
        tail = server.log_tail()
        raise _died(server, tail)
    except _Terminated:
        code = server.stop() if server is not None else None
        if json_output:
            print(json.dumps({"event": "stopped", "signal": "SIGTERM", "tritonserver_exit_code": code}), flush=True)
        else:
            print(f"stopped (SIGTERM){'' if code is None else f'; tritonserver exit code {code}'}", flush=True)
    except KeyboardInterrupt:
        if server is not None:
            server.stop()
        print("stopped (Ctrl-C)", file=sys.stderr, flush=True)
        raise
    finally:
        if server is not None:
            server.stop()
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _died(server, tail: str):
    from mclrt.runtime.errors import EXIT_INCOMPLETE, UserError

    error = UserError(f"tritonserver exited on its own with code {server.process.returncode}: {tail}")
    error.exit_code = EXIT_INCOMPLETE
    return error
