"""Jetson support: what board this is (facts), what it draws (tegrastats, INA3221 power).

Everything here reads text files and tool outputs; nothing imports TensorRT or CUDA. The parsers
are tested on fixture trees copied from real devices' documented outputs
(tests/fixtures/jetson/); the live paths (running `tegrastats`, `nvpmodel -q`, `jetson_clocks
--show` on a board) have never run on a device in this project's CI.
"""
