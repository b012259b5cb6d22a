"""The work of the commands that translate files and streams (infer, video), callable from Python:
each a user of the Python API (runtime/api.py), below the commands that parse options and print."""
