"""`mclrt video`: translate a stream of frames in the style of one exemplar, encoded once.

    source --> decode --[queue]--> extract --[queue]--> infer --[queue]--> encode --> sink

Each stage is a thread; the queues between them are bounded (`--max-queue`), so a slow stage makes
the ones before it wait instead of piling frames up in memory. With `--drop-late` the two queues in
front of the translator evict their oldest waiting frame instead of waiting (the newest frame always
gets in), and every eviction is counted. At the end, frames read = written + dropped + failed.

Modules: `sources` (video file, camera, folder of frames, raw stdin), `sinks` (video file, folder of
frames, raw stdout), `channel` (the bounded queue), `ledger` (frame accounting and latencies),
`extract` (a frame -> the model's condition map), `stream` (the stages and their threads),
`report` (the summary and its JSON); the typer command is runtime/commands/video.py. No torch here.
"""
