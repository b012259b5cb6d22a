"""One module per `mclrt` command: the typer function and the orchestration behind its options.

The work itself lives in the folders beside this one (bench/, checks/, video/, trt/, inputs/);
runtime/cli.py registers these functions. Training-side commands (train, export, eval, info,
quantize) are defined in their own packages and import torch only when they run.
"""
