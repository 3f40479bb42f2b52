"""Data: image I/O, colour, sources (folder pairs, synthetic, TFDS) and the Grain pipeline."""
