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
# Training on several machines (docs/training.md, "Training on several machines"): run `make train` on every
# machine with the same NODES, RDZV (host:port of the rendezvous, on one of them) and RDZV_ID;
# NODE_RANK=0 on the RDZV host, 1.. on the others (it only says which one hosts the rendezvous:
# torchrun numbers the ranks itself). MAX_RESTARTS: how often torchrun restarts the processes after
# one died; they continue from the run's latest checkpoint.
NODES ?= 1
NODE_RANK ?=
RDZV ?=
RDZV_ID ?= mclrt-train
MAX_RESTARTS ?= 0
# More `mclrt train` options, e.g. TRAIN_ARGS="--out runs/ade20k --max-steps 1000"
TRAIN_ARGS ?=
CONFIG ?= training/configs/demo.yaml
MODEL ?= runtime/models/demo
ENGINE_OUT ?= engines/demo
ENGINE_PLUGIN ?= auto
PHOTOS ?= photos
# tritonclient only for Triton's model-config schema (runtime/serve/schema.py): --no-deps, because its
# ml-dtypes<=0.5.4 pin would downgrade the ml-dtypes onnx uses here.
TRITONCLIENT_SPEC ?= tritonclient==2.73.0
SERVE_PYTHON ?= $(PYTHON)
SERVE_ENV ?= .serve-env
SERVE_SPECS ?= "nvidia-pytriton==0.7.0" "onnxruntime==1.31.1" "numpy>=1.26,<2"

.PHONY: serve-env install install-extract install-jetson jetson-image check-jetson-wheels test demo demo-train photos train export engine clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	@# setuptools warns on every editable build that folders named like the package may shadow it (10 lines):
	@# true of any `pip install -e`, and not actionable here.
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --quiet -e ".[$(EXTRAS)]"
	$(PIP) install --quiet --no-deps "$(TRITONCLIENT_SPEC)"
	$(PY) -m mclrt.tools.trt_rtx_setup

# The tests serve a model on a real Triton server, which lives in its own environment (serve-env).
test: $(PY) $(SERVE_ENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

# The main job (README, docs/demo.md): the committed demo model on package-shipped photos -> out/demo/results.png
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

# TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: since torch 2.5 torchrun's c10d rendezvous shares its store with
# the workers, and after a restart the new workers can read the dead ones' addresses from it and fail to
# connect (pytorch/pytorch#135712; seen here with gloo in tests/test_multinode.py). Rank 0 hosts the
# workers' store instead, as torch did before.
TORCHRUN := env TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 $(PY) -m torch.distributed.run
TRAIN_ENTRY := -m mclrt.runtime.cli train --config $(CONFIG) $(TRAIN_ARGS)

train: $(PY)
ifeq ($(GPUS)$(NODES)$(MAX_RESTARTS),110)
	$(MCLRT) train --config $(CONFIG) $(TRAIN_ARGS)
else ifeq ($(NODES),1)
	$(TORCHRUN) --standalone --nproc-per-node=$(GPUS) --max-restarts=$(MAX_RESTARTS) $(TRAIN_ENTRY)
else
	$(if $(RDZV),,$(error make train NODES=$(NODES) needs RDZV=host:port, the rendezvous every machine can reach))
	$(TORCHRUN) --nnodes=$(NODES) --nproc-per-node=$(GPUS) --rdzv-backend=c10d --rdzv-endpoint=$(RDZV) \
		--rdzv-id=$(RDZV_ID) $(if $(NODE_RANK),--rdzv-conf=is_host=$(if $(filter 0,$(NODE_RANK)),1,0)) \
		--max-restarts=$(MAX_RESTARTS) $(TRAIN_ENTRY)
endif

# The Triton server for `mclrt serve run` and the serving tests (docs/serving.md): nvidia-pytriton bundles
# tritonserver 2.51 with the python backend; it needs numpy<2, so it gets an environment of its own
# ($(SERVE_ENV), ~370 MB, about a minute), never mclrt's. onnxruntime is the one mclrt's outputs are
# compared against. SERVE_PYTHON must have a shared libpython (the python-backend stub loads it).
# The stamp file is written last, so an interrupted install is redone.
$(SERVE_ENV)/.installed:
	rm -rf $(SERVE_ENV)
	$(SERVE_PYTHON) -m venv $(SERVE_ENV)
	$(SERVE_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_ENV)/bin/python -m pip install --quiet $(SERVE_SPECS)
	touch $@

serve-env: $(SERVE_ENV)/.installed

# mediapipe 0.10.21 (face contours, pose from photos) without its unneeded, numpy-downgrading deps.
install-extract: $(PY)
	$(PIP) install --quiet absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib
	$(PIP) install --quiet --no-deps mediapipe==0.10.21

# On the Jetson itself (docs/jetson.md): the runtime only -- no torch, no Triton. --system-site-packages
# lets the venv import JetPack's TensorRT (apt python3-libnvinfer) and cuda-python; onnxruntime-gpu comes
# from NVIDIA's Jetson AI Lab index for the JetPack line (PyPI has only the CPU build for aarch64, which
# `pip install .` brings and this replaces: both install the same `onnxruntime` module).
# JETPACK=6: CPython 3.10, CUDA 12.6; JETPACK=7: CPython 3.12, CUDA 13.0. ORT_INDEX= (empty) keeps the CPU build.
# SYSTEM_OPENCV=1 removes PyPI's OpenCV (no GStreamer) so JetPack's (apt, with GStreamer) serves `--source csi:N`.
# Written against the documented layout; never run on a device by this project.
JETPACK ?= 6
ORT_INDEX_6 := https://pypi.jetson-ai-lab.io/jp6/cu126
ORT_INDEX_7 := https://pypi.jetson-ai-lab.io/sbsa/cu130
ORT_INDEX ?= $(ORT_INDEX_$(JETPACK))
install-jetson:
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet .
ifneq ($(ORT_INDEX),)
	$(PIP) uninstall --quiet --yes onnxruntime
	$(PIP) install --quiet --index-url $(ORT_INDEX) "onnxruntime-gpu>=1.20,<1.32"
endif
ifeq ($(SYSTEM_OPENCV),1)
	$(PIP) uninstall --quiet --yes opencv-python-headless
	$(PY) -c "import cv2; print('OpenCV', cv2.__version__, 'from', cv2.__file__)"
endif
	$(PY) -c "import tensorrt; print('TensorRT', tensorrt.__version__, 'from JetPack')" || echo "TensorRT is not importable: sudo apt install python3-libnvinfer (JetPack), then run this again"
	$(MCLRT) doctor || true

# The same runtime as a container: docker/jetson/Dockerfile with this JetPack line's base image, Python and
# ORT_INDEX as build args (JETSON_BASE=, JETSON_PYTHON= override them), tagged mclrt:jp$(JETPACK).
# Run on the Jetson or an arm64 builder; never built by this project (no arm64 builder here).
JETSON_BASE_6 := nvcr.io/nvidia/l4t-jetpack:r36.4.0
JETSON_BASE_7 := nvcr.io/nvidia/tensorrt:25.08-py3
JETSON_PYTHON_6 := 3.10
JETSON_PYTHON_7 := 3.12
JETSON_BASE ?= $(JETSON_BASE_$(JETPACK))
JETSON_PYTHON ?= $(JETSON_PYTHON_$(JETPACK))
jetson-image:
	docker build -f docker/jetson/Dockerfile --build-arg BASE=$(JETSON_BASE) --build-arg PYTHON_VERSION=$(JETSON_PYTHON) \
		--build-arg ORT_INDEX=$(ORT_INDEX) --build-arg MODEL=$(MODEL) -t mclrt:jp$(JETPACK) .

# Every runtime dependency has an aarch64 wheel for JetPack 6 (CPython 3.10) and 7 (3.12); runs anywhere with PyPI.
check-jetson-wheels: $(PY)
	$(PY) -m mclrt.tools.jetson_wheels

# ENGINE_PLUGIN: auto (the plugin where it can run here), on (map CorrespondenceSoftmax to the plugin), off (inline its ONNX function)
engine: $(PY)
	$(MCLRT) engine build --model $(MODEL) --precision fp32 --plugin $(ENGINE_PLUGIN) --out $(ENGINE_OUT)
	$(MCLRT) engine build --model $(MODEL) --precision fp16 --plugin $(ENGINE_PLUGIN) --out $(ENGINE_OUT)

clean:
	rm -rf out engines .pytest_cache
