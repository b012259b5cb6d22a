"""What a video run did: frame counts, stage latencies, per-frame latencies, throughput.

Two per-frame latencies are reported, because they answer different questions:
- `frame_latency`: from the moment a frame was read to the moment it was written, queue waits
  included -- what a viewer of a live feed sees. Reading a file as fast as possible fills the queues,
  so for files this mostly measures how long frames wait behind each other (`--max-queue`).
- `frame_compute`: the sum of the frame's own stage times (decode + extract + its translator run +
  encode), queue waits excluded -- the latency of one frame through an idle pipeline, and the number
  to hold against `mclrt bench`'s per-image latency.
`fps` is frames written per second of wall time, from the first read to the last write (loading the
model and encoding the exemplar come before and are reported on their own).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mclrt.runtime.video.ledger import STAGES, FrameLedger, LatencySummary


@dataclass(frozen=True)
class VideoReport:
    source: str
    out: str
    backend: str
    batch: int
    max_queue: int
    drop_late: bool
    max_latency_ms: float | None
    interrupted: bool
    read: int
    written: int
    dropped: int
    failed: int
    seconds: float
    fps: float
    output_fps: float | None
    exemplar_encode_ms: float
    stages: dict[str, LatencySummary]
    frame_latency: LatencySummary
    frame_compute: LatencySummary
    per_frame: list[dict[str, float]] = field(repr=False)
    failures: list[dict[str, Any]] = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, ledger: FrameLedger, seconds: float, **details: Any) -> "VideoReport":
        per_frame = [
            {"index": int(i), "latency_ms": round(lat * 1e3, 3), "compute_ms": round(comp * 1e3, 3)}
            for i, lat, comp in zip(ledger.written_indices, ledger.frame_latency, ledger.frame_compute)
        ]
        return cls(
            read=ledger.read,
            written=ledger.written,
            dropped=ledger.dropped,
            failed=ledger.failed,
            seconds=seconds,
            fps=ledger.written / seconds if seconds > 0 else 0.0,
            stages={stage: LatencySummary.of(ledger.stage_seconds[stage]) for stage in STAGES},
            frame_latency=LatencySummary.of(ledger.frame_latency),
            frame_compute=LatencySummary.of(ledger.frame_compute),
            per_frame=per_frame,
            failures=[asdict(f) for f in ledger.failures],
            **details,
        )

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        frames = {key: data.pop(key) for key in ("read", "written", "dropped", "failed")}
        return {"frames": frames, **data}

    def summary_lines(self) -> list[str]:
        lines = [
            f"frames: {self.read} read, {self.written} written, {self.dropped} dropped, {self.failed} failed"
            + (" (interrupted)" if self.interrupted else ""),
            f"throughput: {self.fps:.1f} fps over {self.seconds:.2f} s on {self.backend}, batch {self.batch}; "
            f"exemplar encoded once in {self.exemplar_encode_ms:.1f} ms",
            f"per frame: {self.frame_compute.mean_ms:.1f} ms compute (p95 {self.frame_compute.p95_ms:.1f}), "
            f"{self.frame_latency.mean_ms:.1f} ms read-to-written (p95 {self.frame_latency.p95_ms:.1f})",
            "stages (mean / p95 ms): "
            + ", ".join(f"{name} {s.mean_ms:.1f} / {s.p95_ms:.1f}" for name, s in self.stages.items() if s.count),
        ]
        return lines + self.notes
