"""`mclrt` commands of training/: registered through the `mclrt.commands` entry points in pyproject.toml."""
