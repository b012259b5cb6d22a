"""Static checks of an exported model (`mclrt check`): graph index, TensorRT operator support,
FP16 risk, and the findings they report. No GPU and no TensorRT needed."""
