"""Serving a model directory on NVIDIA's Triton Inference Server (torch-free, like all of runtime/).

- `repository`: a Triton model repository from a model directory -- the exemplar encoder and the
  translator as models with dynamic batching, and an ensemble taking a condition and an exemplar.
  Every config.pbtxt is a `tritonclient` ModelConfig protobuf message (`schema`), never a template.
- `python_model`: the python-backend model (`model.py`) that the python variant copies into the
  repository: ONNX Runtime inside Triton, with a bounded cache of encoded exemplars.
- `server`: runs the real `tritonserver` bundled with nvidia-pytriton, from its own environment
  (`make serve-env`), and stops it cleanly.
- `client`: a small KServe v2 HTTP client on the standard library (tests, the load generator).
"""
