"""`mclrt` commands of calibration/: registered through the `mclrt.commands` entry points in pyproject.toml."""
