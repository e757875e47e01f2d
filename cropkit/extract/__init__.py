"""Photos -> features, stage by stage: scan, prepare (decode, hashes, cues), sidecars, the pipeline."""
