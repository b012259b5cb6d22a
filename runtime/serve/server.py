"""The real Triton server (`tritonserver` 2.51 from nvidia-pytriton 0.7.0), run from its own environment.

nvidia-pytriton bundles tritonserver with the python backend only, and requires numpy<2 -- it cannot
live in mclrt's environment (numpy 2). `make serve-env` makes one (`.serve-env/`: pytriton, onnxruntime,
numpy 1.26); mclrt finds it at $MCLRT_SERVE_ENV, else `.serve-env` in the current folder or in the
source tree, and runs the server binary and the python-backend models from it. mclrt itself is not
installed there: the models (`python_model.py`) need only numpy and onnxruntime.

Two traps, handled here:
- The python-backend stub links `libpython3.X.so.1.0` by name, and the dynamic loader takes the
  system's copy before the environment interpreter's own (a pyenv build of the same version crashed in
  `initialize` with "'_thread.RLock' object has no attribute '_recursion_count'"). LD_LIBRARY_PATH is
  set to the interpreter's own library folder; an interpreter built without a shared libpython has
  none, which is refused in one line.
- The stub's embedded interpreter does not see the environment's site-packages (it is not started
  from the venv's python): PYTHONPATH points at them.

The server binds the given host (127.0.0.1 by default) for HTTP, gRPC and metrics; it is ready when
`/v2/health/ready` answers 200. `stop()` sends SIGTERM and Triton unloads the models and exits within
`--exit-timeout-secs` (3 s here, not Triton's default 30); whatever is left of its process group (the
python-backend stubs) is killed after that, so nothing survives the server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mclrt.runtime.errors import UserError

SERVE_ENV_VARIABLE = "MCLRT_SERVE_ENV"
SERVE_ENV_FOLDER = ".serve-env"
MAKE_HINT = "make serve-env (nvidia-pytriton 0.7.0 in an environment of its own)"
EXIT_TIMEOUT_S = 3

_PROBE = r"""
import json, sys, sysconfig, site
from pathlib import Path
import pytriton
root = Path(pytriton.__file__).parent
print(json.dumps({
    "python": sys.executable, "version": f"{sys.version_info[0]}.{sys.version_info[1]}",
    "libdir": sysconfig.get_config_var("LIBDIR"), "ldlibrary": sysconfig.get_config_var("INSTSONAME"),
    "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
    "site_packages": site.getsitepackages(),
    "tritonserver": str(root / "tritonserver"), "libs": str(root.parent / "nvidia_pytriton.libs"),
}))
"""


@dataclass(frozen=True)
class ServeEnv:
    path: Path
    python: str
    version: str
    libdir: Path
    ldlibrary: str
    site_packages: tuple[str, ...]
    tritonserver: Path  # pytriton's tritonserver folder: bin/, backends/, python_backend_stubs/
    libs: Path  # the wheel's bundled shared libraries

    @property
    def binary(self) -> Path:
        return self.tritonserver / "bin" / "tritonserver"


def serve_env_candidates() -> list[Path]:
    if os.environ.get(SERVE_ENV_VARIABLE):
        return [Path(os.environ[SERVE_ENV_VARIABLE])]
    source_tree = Path(__file__).resolve().parents[2]  # runtime/serve/server.py -> the checkout
    return list(dict.fromkeys([Path.cwd() / SERVE_ENV_FOLDER, source_tree / SERVE_ENV_FOLDER]))


def find_serve_env() -> ServeEnv:
    """The serving environment, probed; a UserError in one line saying how to make it when missing."""
    candidates = serve_env_candidates()
    env = next((c for c in candidates if (c / "bin" / "python").exists()), None)
    if env is None:
        raise UserError(f"no serving environment at {' or '.join(map(str, candidates))}: create it with `{MAKE_HINT}`")
    probe = subprocess.run([str(env / "bin" / "python"), "-c", _PROBE], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"the serving environment has no working nvidia-pytriton ({last}): recreate it with `{MAKE_HINT}`", env)
    info = json.loads(probe.stdout)
    serve_env = ServeEnv(
        path=env, python=info["python"], version=info["version"], libdir=Path(info["libdir"] or "/nonexistent"),
        ldlibrary=info["ldlibrary"] or "", site_packages=tuple(info["site_packages"]),
        tritonserver=Path(info["tritonserver"]), libs=Path(info["libs"]),
    )
    if not info["shared"] or not (serve_env.libdir / serve_env.ldlibrary).is_file():
        raise UserError(
            f"its interpreter {serve_env.python} has no shared libpython{serve_env.version} of its own, so Triton's python-backend "
            f"stub would load the system's, which crashes with another build: recreate it from a Python built with --enable-shared "
            f"(make serve-env SERVE_PYTHON=...)",
            env,
        )
    stub = serve_env.tritonserver / "python_backend_stubs" / serve_env.version / "triton_python_backend_stub"
    if not stub.is_file():
        raise UserError(f"nvidia-pytriton has no python-backend stub for Python {serve_env.version}", stub)
    return serve_env


def prepare_backends(env: ServeEnv, workdir: Path) -> Path:
    """A backend folder for the server: pytriton's python backend plus the stub for the env's Python."""
    backends = workdir / "backends"
    shutil.copytree(env.tritonserver / "backends", backends)
    stub = env.tritonserver / "python_backend_stubs" / env.version / "triton_python_backend_stub"
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")
    return backends


def server_environment(env: ServeEnv) -> dict[str, str]:
    environment = dict(os.environ)
    # The interpreter's own libpython first (the trap above), then the wheel's bundled libraries.
    paths = [str(env.libdir), str(env.libs)] + [p for p in environment.get("LD_LIBRARY_PATH", "").split(":") if p]
    environment["LD_LIBRARY_PATH"] = ":".join(paths)
    environment["PYTHONPATH"] = ":".join(env.site_packages)
    environment["PATH"] = f"{env.path / 'bin'}:{environment.get('PATH', '')}"
    environment.pop("PYTHONHOME", None)
    return environment


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class TritonServer:
    """One tritonserver process for a model repository: start(), wait_ready(), stop(); a context manager."""

    def __init__(self, repository: Path, host: str = "127.0.0.1", http_port: int = 8000, grpc_port: int = 8001,
                 metrics_port: int = 8002, env: ServeEnv | None = None, log: Path | None = None, verbose: bool = False):
        self.repository, self.host = Path(repository), host
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.env = env or find_serve_env()
        self.log_path, self.verbose = log, verbose
        self.process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def command(self, backends: Path) -> list[str]:
        return [
            str(self.env.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true", "--allow-cpu-metrics=true", "--allow-gpu-metrics=false",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            "--strict-readiness=true",
            f"--log-verbose={1 if self.verbose else 0}",
        ]

    def start(self) -> "TritonServer":
        self._workdir = Path(tempfile.mkdtemp(prefix="mclrt-triton-"))
        backends = prepare_backends(self.env, self._workdir)
        log_path = self.log_path or self._workdir / "tritonserver.log"
        self.log_path = log_path
        self._log_file = open(log_path, "wb")
        # A session of its own: stop() can end the server and its stubs as a group, and a Ctrl-C in the
        # terminal reaches only mclrt, which then stops the server in order.
        self.process = subprocess.Popen(
            self.command(backends), env=server_environment(self.env), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(f"tritonserver exited with code {self.process.returncode} before it was ready: {self.log_tail()}", self.log_path)
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise UserError(f"tritonserver was not ready after {timeout_s:.0f} s: {self.log_tail()}", self.log_path)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "(no log)"
        wanted = [line for line in text.splitlines() if line.startswith("E") or "error" in line.lower()] or text.splitlines()
        return " | ".join(line.strip() for line in wanted[-lines:])

    def stop(self, timeout_s: float = EXIT_TIMEOUT_S + 10) -> int | None:
        """SIGTERM, wait for Triton's own shutdown, then kill whatever of its group is left."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # stubs that outlived the server, if any
            except (ProcessLookupError, PermissionError):
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return code

    def __enter__(self) -> "TritonServer":
        if self.process is None:
            self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

