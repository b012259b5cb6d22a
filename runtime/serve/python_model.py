"""Triton python-backend model: one mclrt graph (exemplar encoder or translator) run by ONNX Runtime.

`mclrt serve export --backend python` copies this file, unchanged, to `<model>/1/model.py` beside the
graph (`<model>/1/model.onnx`). It runs inside Triton's python-backend stub, so it imports nothing from
mclrt: only numpy, onnxruntime and the backend's own `triton_python_backend_utils`. The session is set
up as mclrt's own runner sets it up (denormals flushed to zero -- 2x slower without on x86 --, spinning
stopped after each run), so its outputs equal `mclrt infer`'s.

Parameters (config.pbtxt `parameters`, all strings):
- `intra_op_threads`: ONNX Runtime threads per instance (0: ONNX Runtime's default);
- `exemplar_cache_size` (the encoder only): how many encoded exemplars each instance keeps, keyed by
  the SHA-256 of the exemplar's bytes (and its condition map's, for maskmix models). A video client
  sends the same exemplar with every frame; only the first is encoded. 0 turns the cache off. Hits and
  misses are counted on Triton's metrics endpoint as `mclrt_exemplar_cache_total{result="hit"|"miss"}`.

The dynamic batcher hands `execute` several requests at once: their inputs are concatenated along the
batch axis, run once, and split back. A request that fails (its own inputs) gets its own error response;
the others in the batch are answered.
"""

import collections
import hashlib
import json
import os

import numpy as np

# Triton's stub provides `triton_python_backend_utils`; it is imported in `initialize` (which Triton calls
# first), so that this file also imports where it is only copied from: mclrt itself, and its tests.
pb_utils = None


class TritonPythonModel:
    def initialize(self, args):
        global pb_utils
        import triton_python_backend_utils as pb_utils

        import onnxruntime

        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.output_names = [tensor["name"] for tensor in config["output"]]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "0"))
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.log_severity_level = 3
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = onnxruntime.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.cache_size = int(parameters.get("exemplar_cache_size", "0"))
        self.cache = collections.OrderedDict()  # sha256 -> tuple of per-sample outputs, least recently used first
        self.counter = None
        if self.cache_size > 0:
            # The family must outlive its metrics (the backend refuses to count on an orphaned metric).
            self.metric_family = family = pb_utils.MetricFamily(
                name="mclrt_exemplar_cache_total",
                description="Exemplars looked up in the encoder's cache of encoded exemplars",
                kind=pb_utils.MetricFamily.COUNTER,
            )
            self.counter = {result: family.Metric(labels={"model": args["model_name"], "result": result}) for result in ("hit", "miss")}

    def execute(self, requests):
        feeds, errors = [], []
        for request in requests:
            try:
                feeds.append({name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.input_names})
                errors.append(None)
            except Exception as err:  # noqa: BLE001 -- reported to that request's client, not swallowed
                feeds.append(None)
                errors.append(f"bad request: {err}")
        good = [feed for feed in feeds if feed is not None]
        results = []
        if good:
            try:
                outputs = self._run({name: np.concatenate([feed[name] for feed in good]) for name in self.input_names})
                start = 0
                for feed in good:
                    count = len(feed[self.input_names[0]])
                    results.append([out[start : start + count] for out in outputs])
                    start += count
            except Exception as err:  # noqa: BLE001 -- every request of the batch gets the error
                errors = [error or f"inference failed: {err}" for error in errors]
                results = []
        responses, next_result = [], iter(results)
        for error in errors:
            if error is not None:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(error)))
                continue
            outputs = next(next_result)
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in zip(self.output_names, outputs)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def _run(self, feed):
        if self.cache_size <= 0:
            return self.session.run(self.output_names, feed)
        batch = len(feed[self.input_names[0]])
        keys = []
        for index in range(batch):
            digest = hashlib.sha256()
            for name in self.input_names:
                sample = np.ascontiguousarray(feed[name][index])
                digest.update(name.encode() + str(sample.dtype).encode() + str(sample.shape).encode() + sample.tobytes())
            keys.append(digest.hexdigest())
        # Encode each distinct missing exemplar once, even when a batch holds it several times.
        unique = list(dict.fromkeys(key for key in keys if key not in self.cache))
        if unique:
            first = [keys.index(key) for key in unique]
            encoded = self.session.run(self.output_names, {name: value[first] for name, value in feed.items()})
            for row, key in enumerate(unique):
                self.cache[key] = tuple(out[row] for out in encoded)
        outputs = [np.stack([self.cache[key][column] for key in keys]) for column in range(len(self.output_names))]
        for key in keys:
            self.cache.move_to_end(key)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        if self.counter is not None:
            self.counter["hit"].increment(batch - len(unique))
            self.counter["miss"].increment(len(unique))
        return outputs

    def finalize(self):
        self.counter = None  # metrics before their family
        self.metric_family = None
        self.session = None
        self.cache.clear()
