"""Jetson facts, tegrastats lines and INA3221 rails parsed from fixture trees of real devices' outputs.

The trees (tests/fixtures/jetson/<board>/) hold the files and tool outputs JetPack provides, copied
from documented outputs of real boards (README.md there says where each came from).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from mclrt.runtime.jetson import facts, power, tegrastats, telemetry

FIXTURES = Path(__file__).parent / "fixtures" / "jetson"


def read(board: str) -> facts.JetsonFacts:
    return facts.read_facts(FIXTURES / board)


def test_orin_nano_jetpack_6_has_no_dla():
    f = read("orin-nano-jp62")
    assert f.is_jetson
    assert f.model == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert (f.module, f.soc) == ("p3767-0005", "tegra234")
    assert (f.l4t, f.l4t_core_package) == ("R36.4.3", "36.4.3-20250107174145")
    assert (f.jetpack, f.jetpack_line) == ("6.2", "6")  # from the nvidia-jetpack package "6.2+b77"
    assert (f.tensorrt, f.cuda) == ("10.3.0.30", "12.6.68")
    assert f.dla_cores == 0  # jetson_clocks lists no DLAn_CORE on Orin Nano
    assert (f.power_mode, f.power_mode_id) == ("MAXN_SUPER", 2)
    assert f.clocks.cpus_online == 6 and f.clocks.cpu_max_khz == 1728000
    assert f.clocks.units["GPU"].max_hz == 1020000000 and not f.clocks.pinned
    assert f.memory.total_bytes == 7802552 * 1024 and f.memory.swap_total_bytes == 3901264 * 1024


def test_orin_nx_without_root_takes_dla_cores_from_the_module():
    f = read("orin-nx-jp62")
    assert f.clocks is None  # no jetson_clocks output recorded (it needs root)
    assert f.module == "p3767-0000" and f.dla_cores == 2
    assert f.jetpack == "6.2"  # no nvidia-jetpack package: from the L4T release table
    assert (f.power_mode, f.power_mode_id) == ("15W", 2)
    rows = dict(facts.doctor_rows(f))
    assert "needs root" in rows["Clocks"]


def test_agx_orin_pinned_clocks_and_two_dla_cores():
    f = read("agx-orin-jp621")
    assert f.model == "Jetson AGX Orin Developer Kit" and f.module == "p3701-0005"
    assert (f.l4t, f.jetpack, f.jetpack_line) == ("R36.4.4", "6.2.1", "6")
    assert f.dla_cores == 2 and f.clocks.dla_cores == 2
    assert f.clocks.pinned and f.clocks.cpus_online == 12
    assert f.clocks.units["DLA0_CORE"].max_hz == 1600000000
    rows = dict(facts.doctor_rows(f))
    assert rows["DLA cores"] == "2"
    assert "pinned at maximum" in rows["Clocks"] and "GPU 1300/1300 MHz" in rows["Clocks"]
    assert rows["Power mode"] == "MAXN (mode 0)"


def test_thor_jetpack_7():
    f = read("agx-thor-jp71")
    assert f.model == "NVIDIA Jetson AGX Thor Developer Kit"
    assert (f.module, f.soc) == ("p3834-0008", "tegra264")
    assert (f.l4t, f.jetpack, f.jetpack_line) == ("R38.4.0", "7.1", "7")
    assert (f.tensorrt, f.cuda) == ("10.13.3.9", "13.0.48")
    assert f.dla_cores == 0
    assert f.power_mode == "120W"
    rows = dict(facts.doctor_rows(f))
    assert rows["Jetson software"].startswith("L4T R38.4.0 (nvidia-l4t-core 38.4.0-20251230160601), JetPack 7.1 (line 7)")
    assert "GiB available of 122.8 GiB" in rows["Memory (shared with the GPU)"]


def test_non_jetson_aarch64_server_reports_nothing_and_runs_no_jetson_tool():
    ran = []
    f = facts.read_facts(FIXTURES / "aarch64-server", run=lambda name: ran.append(name))
    assert not f.is_jetson
    assert ran == []
    assert (f.l4t, f.model, f.tensorrt, f.dla_cores, f.power_mode) == (None, None, None, None, None)
    assert f.memory.total_bytes == 263724504 * 1024
    assert facts.doctor_rows(f) == []


def test_the_live_root_reads_this_machine():
    here = facts.read_facts(Path("/"))
    assert here.is_jetson == Path("/etc/nv_tegra_release").is_file() == facts.is_jetson()
    assert here.memory is not None and here.memory.total_bytes > 0  # /proc/meminfo of this Linux


def test_nvpmodel_warnings_before_the_mode():
    assert facts.parse_nvpmodel("NVPM WARN: fan mode is not set!\nNV Power Mode: 25W\n1\n") == ("25W", 1)
    assert facts.parse_nvpmodel("nvpmodel: command failed") == (None, None)


def samples(board: str, name: str = "tegrastats.txt") -> list[tegrastats.TegraSample]:
    lines = (FIXTURES / board / name).read_text().splitlines()
    return [s for s in map(tegrastats.parse_line, lines) if s is not None]


def test_tegrastats_orin_nano_jetpack_6():
    (s,) = samples("orin-nano-jp62")
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_total_mb) == (3162, 7620, 3810)
    assert s.gpu_load_percent == 1 and s.gpu_mhz == ()
    assert s.temperatures_c["gpu"] == 61.687 and s.temperatures_c["tj"] == 62.843
    assert set(s.temperatures_c) == {"cpu", "soc2", "soc0", "gpu", "tj", "soc1"}  # CPU clocks are not temperatures
    assert s.rails["VDD_IN"] == tegrastats.Rail("VDD_IN", 3913, 3922)
    assert s.input_power_mw() == (3913, "VDD_IN")


def test_tegrastats_agx_orin_sums_its_rails():
    first, second = samples("agx-orin-jp621")
    assert first.gpu_load_percent == 0 and first.gpu_mhz == (0, 0)
    assert set(first.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"}
    assert first.input_power_mw() == (2412 + 1607 + 4707, "sum of VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0")
    summary = tegrastats.summarize([first, second])
    assert summary.samples == 2 and summary.rails_w["VIN_SYS_5V0"] == pytest.approx(4.657)
    assert summary.input_power_w == pytest.approx((8726 + 8626) / 2 / 1000)
    assert summary.max_temperatures_c["cpu"] == 52.562


def test_tegrastats_thor_jetpack_7_has_no_gpu_load():
    r38, with_vin = samples("agx-thor-jp71")
    assert r38.gpu_load_percent is None and r38.gpu_mhz == (0, 0, 0)
    assert r38.rails["VDD_CPU_SOC_MSS"].instant_mw == 4165
    assert r38.temperatures_c == {"cpu": 34.468, "tj": 34.5, "soc012": 33.781, "soc345": 34.5}
    assert with_vin.input_power_mw() == (16802, "VIN")
    (r39,) = samples("agx-thor-jp71", "tegrastats-r39.2.txt")
    assert r39.rails["VDD_GPU"] == tegrastats.Rail("VDD_GPU", 4925, 4925)  # instant/average/max
    assert r39.temperatures_c["gpu"] == 35.906 and r39.gpu_mhz == (314, 314, 314)


def test_tegrastats_ignores_lines_that_are_not_samples():
    assert tegrastats.parse_line("") is None
    assert tegrastats.parse_line("tegrastats: permission denied") is None


def test_ina3221_rails_from_sysfs():
    rails = power.read_rails_mw(FIXTURES / "orin-nano-jp62")
    assert rails == {"VDD_IN": 5080 * 772 // 1000, "VDD_CPU_GPU_CV": 5072 * 118 // 1000, "VDD_SOC": 5072 * 244 // 1000}
    assert power.read_rails_mw(FIXTURES / "aarch64-server") == {}


def test_telemetry_replays_a_tegrastats_stream_and_reports_fps_per_watt():
    # A real process writing the recorded lines in place of tegrastats (which exists only on a Jetson).
    replay = [sys.executable, "-c", "import sys; sys.stdout.write(open(sys.argv[1]).read())", str(FIXTURES / "agx-orin-jp621" / "tegrastats.txt")]
    with telemetry.Telemetry(command=replay) as recorder:
        deadline = time.monotonic() + 20  # the "benchmark" runs until tegrastats has reported twice
        while len(recorder.samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    document = telemetry.report(recorder.summary(), frames_per_second=30.0)
    assert document["samples"] == 2
    assert document["fps_per_watt"] == pytest.approx(30.0 / document["input_power_w"], rel=1e-3)


def test_telemetry_waits_for_the_first_sample_of_a_short_run():
    slow = [sys.executable, "-c", "import sys, time; time.sleep(0.3); print(open(sys.argv[1]).readline(), flush=True); time.sleep(30)",
            str(FIXTURES / "orin-nano-jp62" / "tegrastats.txt")]
    with telemetry.Telemetry(interval_ms=500, command=slow) as recorder:
        pass  # shorter than tegrastats' first line
    assert len(recorder.samples) == 1 and recorder.summary().input_power_source == "VDD_IN"


def test_telemetry_off_jetson_records_nothing():
    recorder = telemetry.Telemetry()
    if recorder.available:
        pytest.skip("tegrastats is on PATH: this is a Jetson")
    with recorder:
        pass
    assert recorder.summary() is None and telemetry.report(None, 30.0) is None


def test_doctor_shows_the_jetson_rows_on_a_jetson_and_none_elsewhere():
    from mclrt.runtime.commands import doctor

    on_thor = dict(doctor.facts(jetson_root=FIXTURES / "agx-thor-jp71"))
    assert on_thor["Jetson module"] == "NVIDIA Jetson AGX Thor Developer Kit (p3834-0008, tegra264)"
    assert on_thor["DLA cores"] == "0" and on_thor["Power mode"] == "120W (mode 1)"
    assert "ONNX Runtime" in on_thor  # the rest of the report is still there
    here = dict(doctor.facts(jetson_root=FIXTURES / "aarch64-server"))
    assert not {"Jetson module", "DLA cores", "Power mode"} & set(here)


def test_jetson_modules_import_without_torch_tensorrt_triton_or_cuda():
    import json
    import subprocess

    modules = ["mclrt.runtime.jetson." + name for name in ("facts", "tegrastats", "power", "telemetry")] + ["mclrt.runtime.trt.dla_report", "mclrt.runtime.trt.build_memory"]
    script = (
        "import json, sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(json.dumps([m for m in ('torch', 'tensorrt', 'tensorrt_rtx', 'tensorrt_rtx_bindings', 'triton', 'cuda') if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
