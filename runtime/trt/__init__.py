"""TensorRT engines: version table, the CorrespondenceSoftmax plugin, FP16 recipe, builder, cache, runner.

Nothing here imports TensorRT, cuda-python or Triton at module level: each is imported inside the
function that needs it, so `import mclrt.runtime.trt.<anything>` works on a machine without them.
Every difference between TensorRT versions lives in `compat`; the other modules ask it.
"""
