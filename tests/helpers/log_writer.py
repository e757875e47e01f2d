"""Appends numbered decisions, continuing after the last one logged: a stand-in for the reviewer under kills."""

import sys
import time
from pathlib import Path

from cropkit.decisions import CropDecision, append_decision, read_crops

logs, total = Path(sys.argv[1]), int(sys.argv[2])
done = {round(d.ts) for d in read_crops(logs)[0]}
for i in range(len(done), total):
    append_decision(logs, CropDecision(f"data/training_data/img{i:04d}.jpg", 100, 100, (10, 10, 60, 60), float(i)))
    time.sleep(0.004)
