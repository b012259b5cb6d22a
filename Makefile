# mclrt -- the commands a user types. Everything runs inside a virtual environment ($(VENV)).
#
# On these CPU-only machines torch comes from the local CPU wheel (torch==2.13.*): an unpinned
# torch would pull a multi-GB CUDA build. GPU users install their own torch first, then `make install`
# leaves it alone (pyproject accepts torch>=2.5,<2.15).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MCLRT := $(VENV)/bin/mclrt
TORCH_SPEC ?= torch==2.13.*
EXTRAS ?= train,trt-check,kernels,fp16,photos,dev
GPUS ?= 1
CONFIG ?= training/configs/demo.yaml
MODEL ?= runtime/models/demo
ENGINE_OUT ?= engines/demo
ENGINE_PLUGIN ?= auto
PHOTOS ?= photos

.PHONY: install install-extract test demo demo-train photos train export engine clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m mclrt.tools.trt_rtx_setup

test: $(PY)
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

# The README's main job: the committed demo model on package-shipped photos -> out/demo/results.png
# (plus rows of held-out photos when `make photos` has built the corpus in $(PHOTOS)).
demo: $(PY)
	$(PY) -m mclrt.tools.demo --model $(MODEL) --out out/demo --overwrite $(if $(wildcard $(PHOTOS)/manifest.json),--photos $(PHOTOS))

# The demo's photo corpus, rebuilt from scratch: Debian's wallpaper packages (apt-get download; run
# `apt-get update` once first), reviewed photographs with redistributable licences, a held-out split,
# $(PHOTOS)/manifest.json + manifest.csv. About 230 MB of downloads, 2 minutes.
photos: $(PY)
	$(PY) -m mclrt.tools.fetch_photos --out $(PHOTOS) --overwrite

# Reproduce the committed demo model from scratch: the corpus (unless built), train, export.
# Copy runs/demo/model over runtime/models/demo to use it in `make demo`.
demo-train: $(PY)
	test -f $(PHOTOS)/manifest.json || $(MAKE) photos
	$(MCLRT) train --config training/configs/demo.yaml --out runs/demo data.root=$(PHOTOS)/train
	$(MCLRT) export runs/demo --out runs/demo/model --overwrite

train: $(PY)
ifeq ($(GPUS),1)
	$(MCLRT) train --config $(CONFIG)
else
	$(VENV)/bin/torchrun --standalone --nproc_per_node=$(GPUS) -m mclrt.runtime.cli train --config $(CONFIG)
endif

# mediapipe 0.10.21 (face contours, pose from photos) without its unneeded, numpy-downgrading deps.
install-extract: $(PY)
	$(PIP) install --quiet absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib
	$(PIP) install --quiet --no-deps mediapipe==0.10.21

# ENGINE_PLUGIN: auto (the plugin where it can run here), on (map CorrespondenceSoftmax to the plugin), off (inline its ONNX function)
engine: $(PY)
	$(MCLRT) engine build --model $(MODEL) --precision fp32 --plugin $(ENGINE_PLUGIN) --out $(ENGINE_OUT)
	$(MCLRT) engine build --model $(MODEL) --precision fp16 --plugin $(ENGINE_PLUGIN) --out $(ENGINE_OUT)

clean:
	rm -rf out engines .pytest_cache
