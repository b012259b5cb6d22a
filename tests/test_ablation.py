"""tools/ablation.py end to end at a tiny budget: three variants trained from one config with one seed,
each exported and measured with `mclrt eval warp` on held-out package photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mclrt.runtime.model_dir import load_model_dir
from mclrt.tools.ablation import REPORT_NAME, VARIANTS, main
from model_dir_fixtures import write_photo
from train_fixtures import write_photo_folder

CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "demo.yaml"
TINY = ["model.image_size=64", "model.ngf=8", "model.ndf=8", "train.batch_size=2", "train.threads=1", "data.repeat=1",
        "log.image_every=0", "log.tensorboard=false"]


@pytest.mark.slow
def test_ablation_trains_exports_and_evaluates_three_variants(tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "train", count=3, size=72)
    holdout = tmp_path / "holdout"
    write_photo(holdout / "flower.png", index=5, size=96)
    out = tmp_path / "ablation"
    code = main(["--config", str(CONFIG), "--steps", "3", "--photos", str(photos), "--holdout", str(holdout),
                 "--out", str(out), "--json", "--no-verify", *TINY])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads((out / REPORT_NAME).read_text()) == report
    assert list(report["variants"]) == list(VARIANTS) and report["holdout_photos"] == ["flower.png"]
    uses_scm = {}
    for name, variant in report["variants"].items():
        model = load_model_dir(variant["model"])
        config = model.manifest.provenance["train_config"]
        assert config["schedule"]["steps"] + config["schedule"]["decay_steps"] == 3 and config["train"]["seed"] == 0
        assert (config["loss"]["mcl"] > 0) == VARIANTS[name]["mcl"]
        uses_scm[name] = model.manifest.provenance["model_config"]["use_scm"]
        for kind in ("flip-shift", "crop", "all"):
            assert set(variant["summary"][kind]) == {"model", "unwarped", "mean_colour"}
            assert variant["summary"][kind]["model"]["l1"] > 0
            # the baselines are the same pairs for every variant
            assert variant["summary"][kind]["unwarped"] == report["baselines"][kind]["unwarped"]
    assert uses_scm == {"baseline": False, "+MCL": False, "+MCL+SCM": True}


def test_a_bad_holdout_photo_stops_the_ablation_before_any_training(tmp_path, capsys):
    holdout = tmp_path / "holdout"
    holdout.mkdir()
    (holdout / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "ablation"
    code = main(["--config", str(CONFIG), "--steps", "3", "--holdout", str(holdout), "--out", str(out), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "broken.jpg" in err[0]
    assert not out.exists()
