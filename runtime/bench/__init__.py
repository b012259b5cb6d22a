"""Benchmarks (`mclrt bench`): latency and memory of a model directory, two directories timed in
one run (`--against`), and ONNX Runtime's per-operator kernel profile (`--profile`)."""
