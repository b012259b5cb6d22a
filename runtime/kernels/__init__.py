"""GPU kernels of the runtime (the CorrespondenceSoftmax plugin's Triton kernel and its launchers).

Importing this package imports nothing heavy: Triton is imported by `correspondence_triton` only,
and the launchers import Triton / cuda-python inside the functions that use them, so
`import mclrt.runtime.kernels` works on a machine (or a Jetson) without either.
"""
