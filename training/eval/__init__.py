"""How good is a trained model: `mclrt eval warp` (correspondence accuracy on pseudo pairs with a known
ideal warp) and `mclrt eval images` (the papers' image-quality metrics). One metric per file under
`metrics/`; the commands live in `cli.py`."""
