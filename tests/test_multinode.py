"""Training on several machines, and surviving a lost worker, with real torchrun processes.

Two "nodes" on this machine: two torchrun launchers, one training process each, meeting at a c10d
rendezvous on 127.0.0.1 (gloo on the CPU) -- the command lines are the ones `make train NODES=2 ...`
prints, so the Makefile's lines are what runs. A worker SIGKILLed in the middle of a checkpoint
write under `--max-restarts 1` must leave a run that torchrun restarts on both nodes and that
finishes from the last complete checkpoint, with the same weights as the uninterrupted run.
The SLURM script cannot run here (no SLURM, no GPU); it is checked for what it would start.

Kept small: the shrunk nano model (ngf 4) on 64x64 images, 3 steps, one torch thread per process.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from mclrt.training.checkpoint import PAUSE_ENV, load_checkpoint, read_meta, resolve_checkpoint
from mclrt.training.train import state_sha256

from train_fixtures import tiny_config_dict, write_photo_folder

REPO = Path(__file__).resolve().parents[1]
STEPS = 3
TIMEOUT = 600  # seconds; generous for a loaded 2-core machine (a run takes ~15-40 s)

pytestmark = pytest.mark.xdist_group(name="multinode")  # the restart test compares with the two-node run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_train_command(**variables: str) -> list[str]:
    """The command `make train VAR=value ...` would run (make -n), with this interpreter as $(PY)."""
    assignments = [f"{name}={value}" for name, value in {"PY": sys.executable, **variables}.items()]
    # Under `make test` the outer make's flags and variables would leak in through the environment.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    printed = subprocess.run(
        ["make", "--no-print-directory", "-n", "train", *assignments], cwd=REPO, capture_output=True, text=True, check=True, env=env
    ).stdout
    return shlex.split(printed.replace("\\\n", " "))


def _write_config(tmp: Path, out: Path, **log) -> Path:
    photos = write_photo_folder(tmp / "photos", count=3, size=72)
    config = tiny_config_dict(
        photos, out, model={"ngf": 4, "ndf": 4}, train={"batch_size": 4, "threads": 1}, log={"checkpoint_every": 100, **log}
    )
    path = tmp / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _rank_digests_agree_with_the_saved_state(out: Path) -> str:
    """The one digest every rank reported at the final checkpoint, checked against the saved tensors."""
    ckpt = load_checkpoint(out)  # verifies every file's sha256
    digests = ckpt.info["rank_state_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1], "the two ranks hold different weights"
    saved = state_sha256(
        {"model": ckpt.model, "discriminator": ckpt.discriminator, "heads": ckpt.heads},
        {"generator": ckpt.optimizers["generator"], "discriminator": ckpt.optimizers["discriminator"]},
    )
    assert saved == digests[0]
    return saved


class TwoNodes:
    """Two torchrun launchers, as `make train GPUS=1 NODES=2 NODE_RANK=r RDZV=127.0.0.1:PORT` starts them
    on two machines, with their output read line by line (and drained to the end, so no process ever
    blocks on a full pipe)."""

    def __init__(self, cwd: Path, config: Path, env: dict[str, str], **make_vars: str):
        rdzv = f"127.0.0.1:{_free_port()}"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.logs: list[list[str]] = [[], []]
        self.commands, self.launchers, self.readers = [], [], []
        for node_rank in (0, 1):
            command = make_train_command(
                GPUS="1", NODES="2", NODE_RANK=str(node_rank), RDZV=rdzv, RDZV_ID=cwd.name, CONFIG=str(config), **make_vars
            )
            launcher = subprocess.Popen(
                command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
            )
            reader = threading.Thread(target=self._drain, args=(launcher, self.logs[node_rank]), daemon=True)
            reader.start()
            self.commands.append(command)
            self.launchers.append(launcher)
            self.readers.append(reader)

    def _drain(self, launcher: subprocess.Popen, log: list[str]) -> None:
        for line in launcher.stderr:
            log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, deadline: float) -> str:
        """The next line either launcher printed; fails if both ended or the deadline passed."""
        while True:
            line = self.lines.get(timeout=max(1.0, deadline - time.monotonic()))
            if line is not None:
                return line
            assert any(r.is_alive() for r in self.readers), "both launchers ended:\n" + self.text()[-3000:]

    def text(self) -> str:
        return "".join(self.logs[0]) + "".join(self.logs[1])

    def wait(self) -> list[int]:
        try:
            codes = [launcher.wait(timeout=TIMEOUT) for launcher in self.launchers]
        finally:
            self.kill()
        for reader in self.readers:
            reader.join(timeout=60)
        return codes

    def kill(self) -> None:
        """Stop the launchers still running with their workers: SIGTERM (torchrun stops its workers),
        then SIGKILL to each launcher's whole process group."""
        for launcher in self.launchers:
            if launcher.poll() is None:
                launcher.terminate()
                try:
                    launcher.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(launcher.pid, signal.SIGKILL)
                    launcher.wait()


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory):
    """Two "nodes", one training process each, 3 steps, one checkpoint (at the end)."""
    tmp = tmp_path_factory.mktemp("two_nodes")
    out = tmp / "run"
    nodes = TwoNodes(tmp, _write_config(tmp, out), _env(), TRAIN_ARGS=f"--max-steps {STEPS}")
    codes = nodes.wait()
    assert codes == [0, 0], nodes.text()[-3000:]
    return out, nodes


def test_make_train_on_several_nodes_is_torchrun_with_c10d_rendezvous():
    command = make_train_command(GPUS="4", NODES="2", NODE_RANK="1", RDZV="node7:29400", RDZV_ID="job", MAX_RESTARTS="3")
    # (the environment variable works around pytorch/pytorch#135712: see the Makefile)
    assert command[:5] == ["env", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1", sys.executable, "-m", "torch.distributed.run"]
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(command[5:])
    assert (args.nnodes, args.nproc_per_node, args.rdzv_backend, args.rdzv_endpoint) == ("2", "4", "c10d", "node7:29400")
    assert (args.rdzv_id, args.rdzv_conf, args.max_restarts, args.module) == ("job", "is_host=0", 3, True)
    assert [args.training_script, *args.training_script_args] == [
        "mclrt.runtime.cli", "train", "--config", "training/configs/demo.yaml",
    ]
    missing = subprocess.run(["make", "-n", "train", "NODES=2", f"PY={sys.executable}"], cwd=REPO, capture_output=True, text=True)
    assert missing.returncode != 0 and "needs RDZV=host:port" in missing.stderr


def test_two_nodes_train_to_identical_weights_and_one_checkpoint(two_node_run):
    out, nodes = two_node_run
    assert all("--rdzv-backend=c10d" in command and "--nnodes=2" in command for command in nodes.commands)
    meta = read_meta(resolve_checkpoint(out))
    assert meta["step"] == STEPS and meta["samples_seen"] == 4 * STEPS and meta["info"]["world_size"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"{STEPS:08d}", "latest"]
    _rank_digests_agree_with_the_saved_state(out)
    # Only global rank 0 logs, and it is on exactly one of the two nodes.
    assert sum(f"step {STEPS}/{STEPS}" in "".join(log) for log in nodes.logs) == 1, nodes.text()


def test_a_worker_killed_mid_run_is_restarted_and_the_run_continues_from_its_last_checkpoint(tmp_path, two_node_run):
    """Two nodes under --max-restarts 1; rank 0 (the checkpoint writer) is SIGKILLed in the middle of
    its second checkpoint write, when step 1's checkpoint is complete. Every checkpoint write pauses
    2 s before meta.json and the rename and says so with its pid (the MCLRT_TEST_CHECKPOINT_PAUSE
    knob), so the kill lands inside that write unless this test is starved for 2 s; then it lands in
    step 3 and the run continues from step 2, which the checks below accept."""
    out = tmp_path / "run"
    config = _write_config(tmp_path, out, checkpoint_every=1)
    nodes = TwoNodes(tmp_path, config, _env(**{PAUSE_ENV: "2"}), MAX_RESTARTS="1", TRAIN_ARGS=f"--max-steps {STEPS}")
    assert all("--max-restarts=1" in command for command in nodes.commands)
    pauses, deadline = 0, time.monotonic() + TIMEOUT
    try:
        while pauses < 2:
            paused = re.search(r"checkpoint write paused \(pid (\d+)\)", nodes.next_line(deadline))
            pauses += paused is not None
    except BaseException:
        nodes.kill()
        raise
    os.kill(int(paused.group(1)), signal.SIGKILL)
    codes = nodes.wait()
    text = nodes.text()
    assert codes == [0, 0], text[-3000:]

    # Rank 0 of the restarted group says so, and continued from the last complete checkpoint (step 1,
    # or step 2 if the kill came after that write had finished).
    restarted = re.search(r"torchrun restart 1 of at most 1: .* continuing from (\S+)", text)
    assert restarted, text[-3000:]
    resumed_step = int(Path(restarted.group(1)).name)
    assert 1 <= resumed_step < STEPS
    assert f"continuing the run from {restarted.group(1)} at step {resumed_step}" in text

    # All steps done, each logged once with finite losses; the final checkpoint loads and says restart 1.
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for m in metrics for k, v in m.items() if k.startswith("loss/"))
    final = read_meta(resolve_checkpoint(out))
    assert final["step"] == STEPS and final["info"]["torchrun_restarts"] == 1
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    # Bit-exact: the same weights and optimizer state as the uninterrupted two-node run of the same steps.
    assert _rank_digests_agree_with_the_saved_state(out) == _rank_digests_agree_with_the_saved_state(two_node_run[0])


def test_the_slurm_script_parses_and_would_start_torchrun_on_every_node(tmp_path):
    """The script cannot run here (no SLURM): bash parses it, its #SBATCH lines come before any
    command, and with srun and scontrol replaced by stand-ins that print, it starts the expected line."""
    script = REPO / "tools" / "slurm" / "train.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    lines = script.read_text().splitlines()
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert all(lines.index(d) < first_command for d in directives), "sbatch ignores #SBATCH lines after the first command"
    options = dict(d.split(None, 1)[1].lstrip("-").split("=", 1) for d in directives)
    assert options["nodes"] == "2" and options["ntasks-per-node"] == "1" and "gpus-per-node" in options

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames gpu[07-08]" ] && printf "gpu07\\ngpu08\\n"\n')
    (bin_dir / "srun").write_text(
        f'#!/bin/sh\nprintf "%s\\0" "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=$TORCH_DISABLE_SHARE_RDZV_TCP_STORE" "$@" > {tmp_path / "srun.args"}\n'
    )
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    slurm = {"SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_ID": "4242",
             "SLURM_JOB_NAME": "mclrt-train", "SLURM_GPUS_ON_NODE": "4"}
    env = {**os.environ, **slurm, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CONFIG": "training/configs/ade20k.yaml"}
    env.pop("OUT", None)
    env.pop("VENV", None)  # CI exports its own; the script's default is the one under test
    subprocess.run(["bash", str(script), "--max-steps", "10"], env=env, check=True, capture_output=True)
    srun_args = (tmp_path / "srun.args").read_text().split("\0")[:-1]
    assert srun_args[0] == "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"  # exported for srun's tasks (pytorch/pytorch#135712)
    assert srun_args[1:6] == ["--ntasks-per-node=1", "--kill-on-bad-exit=1", ".venv/bin/python", "-m", "torch.distributed.run"]
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(srun_args[6:])
    assert (args.nnodes, args.nproc_per_node, args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id, args.max_restarts) == (
        "2", "4", "c10d", "gpu07:29500", "4242", 3,
    )
    assert args.module and [args.training_script, *args.training_script_args] == [
        "mclrt.runtime.cli", "train", "--config", "training/configs/ade20k.yaml", "--out", "runs/mclrt-train", "--max-steps", "10",
    ]
    unset = {k: v for k, v in env.items() if k != "CONFIG"}
    refused = subprocess.run(["bash", str(script)], env=unset, capture_output=True, text=True)
    assert refused.returncode != 0 and "set CONFIG=" in refused.stderr


def _rank_stops_with_the_others(rank: int, store: str, seen_by_rank0: str, results: str) -> None:
    """One of two gloo processes: both must raise the same UserError, whichever rank met the problem."""
    import torch.distributed as dist

    from mclrt.runtime.errors import UserError
    from mclrt.training import distributed as D

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    errors = []

    def decide():
        assert rank == 0, "only rank 0 decides"
        raise UserError("already holds checkpoints", "runs/x")

    try:
        D.decide_on_main(decide)
    except UserError as err:
        errors.append(str(err))
    # Rank 1 looks for a file only rank 0 sees: as on a machine whose run folder is not shared.
    try:
        D.check_visible_everywhere(Path(seen_by_rank0 if rank == 0 else seen_by_rank0 + ".elsewhere"), "the run folder")
    except UserError as err:
        errors.append(str(err))
    dist.destroy_process_group()
    Path(results, f"rank{rank}.json").write_text(json.dumps(errors))


def test_a_decision_or_a_blind_rank_stops_every_rank_with_the_same_error(tmp_path):
    import torch.multiprocessing as mp

    seen = tmp_path / "config.yaml"
    seen.write_text("x")
    mp.spawn(_rank_stops_with_the_others, args=(str(tmp_path / "store"), str(seen), str(tmp_path)), nprocs=2, join=True)
    errors = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert errors[0][0] == errors[1][0] == "runs/x: already holds checkpoints"
    # Both stop; each names the path it was given (one path on a real cluster) and the blind host.
    problem = f"the run folder is not visible from {socket.gethostname()}: with several machines the run folder must be on a file system"
    assert errors[0][1].startswith(f"{seen}: {problem}") and errors[1][1].startswith(f"{seen}.elsewhere: {problem}")
