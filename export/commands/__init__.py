"""`mclrt` commands of export/: registered through the `mclrt.commands` entry points in pyproject.toml."""
