"""report.json and report.md of a gpu_check run: the machine, then each check with its numbers."""

from __future__ import annotations

import json
from pathlib import Path

from mclrt.tools.gpu_checks import FAIL, PASS, SKIP, Result


def document(machine: dict, results: list[Result], budget_s: float, seconds: float) -> dict:
    counts = {status: sum(1 for r in results if r.status == status) for status in (PASS, FAIL, SKIP)}
    return {
        "tool": "mclrt.tools.gpu_check",
        "machine": machine,
        "budget_s": budget_s,
        "seconds": round(seconds, 1),
        "summary": counts,
        "checks": [r.to_json() for r in results],
    }


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value).replace("|", "\\|")


def markdown(doc: dict) -> str:
    machine = doc["machine"]
    lines = ["# mclrt GPU check", ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in machine.items()]
    counts = doc["summary"]
    lines += ["", f"{counts[PASS]} PASS, {counts[FAIL]} FAIL, {counts[SKIP]} SKIP in {doc['seconds']} s (budget {doc['budget_s']:g} s)", ""]
    lines += ["| check | status | seconds | reason |", "| --- | --- | --- | --- |"]
    for check in doc["checks"]:
        lines.append(f"| {check['title']} (`{check['name']}`) | {check['status']} | {check['seconds']} | {_cell(check['reason'])} |")
    for check in doc["checks"]:
        if not check["numbers"]:
            continue
        lines += ["", f"## {check['title']}: {check['status']}", ""]
        for key, value in check["numbers"].items():
            if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
                columns = list(dict.fromkeys(k for row in value for k in row))
                lines += [f"**{key}**", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
                lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in value]
                lines.append("")
            else:
                lines.append(f"- {key}: {_cell(value)}")
    return "\n".join(lines) + "\n"


def write(folder: Path, doc: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown(doc), encoding="utf-8")
