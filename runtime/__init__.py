"""mclrt.runtime: run an exported model directory. No torch anywhere in here.

Where things live (imports point down this list, never up):
    cli.py       the `mclrt` app: registers every command, turns errors into one line and an exit code
    commands/    one module per command (infer, video, bench, check, compare, engine, doctor)
    bench/       latency and memory of a model directory, two directories side by side, kernel profiles
    checks/      static checks of an ONNX model (`mclrt check`): TensorRT operator support, FP16 risk
    video/       the streaming pipeline behind `mclrt video` (sources, stages, sinks, frame accounting)
    trt/         TensorRT: version table, plugin, FP16 recipe, builder, engine cache, runner
    kernels/     the CorrespondenceSoftmax kernel (Triton) and its torch-free launcher
    jetson/      Jetson facts (board, JetPack, DLA, power mode) and tegrastats telemetry
    inputs/      what a user gives: reading images, condition extraction, preprocessing, package photos
    model_dir.py, pipeline.py, runners.py, backends.py, image_out.py, fsutil.py, threads.py, errors.py: the core
    notices.py   one-line warnings for input that is probably wrong (the counterpart of errors.py)
    model_info.py `info --model`: what a model directory holds
"""
