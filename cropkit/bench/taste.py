"""The taste benchmark on real photographs whose subjects a person judged.

Simulated photographers crop views of those photographs by rules defined on the *judged* subject box and the
frame (never on anything cropkit computes); cropkit learns from their decisions through ``cropkit train`` and
answers through ``cropkit suggest --json``, run as subprocesses exactly as a user runs them. Peers (full frame,
centre crop at the learned aspect and scale, the mean box, the saliency crop, smartcrop) are fitted on the same
decisions and scored on the same held-out views. Views of one photo never straddle the split.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cropkit.decisions import TRAINING_LOG, CropDecision
from cropkit.errors import CropkitError
from cropkit.features.encoder_id import concrete_encoder, is_untrained
from cropkit.fileio import atomic_write_bytes, read_source_bytes
from cropkit.geometry import Box, clamp_box, denormalise, largest_centred_box
from cropkit.layout import Layout, claim_generated_root
from cropkit.learn.dataset import examples_from_decisions
from cropkit.learn.heldout import learning_curve as evaluation_curve
from cropkit.learn.metrics import score_proposals

BUDGETS = (10, 30, 100, 300)
Taste = Callable[[int, int, Box, np.random.Generator], Box]


# ---- the judged subjects and the views cut around them ----------------------------------------------------------

def read_subjects(file: Path) -> dict[str, Box]:
    """``{"subjects": {"NAME.jpg": [x0, y0, x1, y1]}}`` in fractions of the upright image, checked."""
    data, _ = read_source_bytes(file, max_bytes=4 << 20)
    try:
        subjects = json.loads(data)["subjects"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CropkitError(f"{file}: not a subjects file ({exc}); expected {{\"subjects\": {{name: box}}}}") from None
    out = {}
    for name, box in subjects.items():
        ok = (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
              and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1)
        if not ok or "/" in name or name.startswith("."):
            raise CropkitError(f"{file}: subject of {name!r} must be [x0, y0, x1, y1] fractions with x0 < x1, y0 < y1")
        out[name] = tuple(float(v) for v in box)
    return out


@dataclass(frozen=True)
class View:
    """One picture the simulated photographer crops: a sub-window (maybe mirrored) of a photo, its subject in
    pixels of the view."""

    path: Path
    photo: str
    width: int
    height: int
    subject: Box


def _window_keeping(subject: Box, rng: np.random.Generator) -> Box:
    """A random window (fractions) of 55-100% per side that keeps the whole subject in view where it can."""
    fw, fh = rng.uniform(0.55, 1.0, 2)
    fw, fh = max(fw, subject[2] - subject[0]), max(fh, subject[3] - subject[1])
    lo_x, hi_x = max(0.0, subject[2] - fw), min(subject[0], 1.0 - fw)
    lo_y, hi_y = max(0.0, subject[3] - fh), min(subject[1], 1.0 - fh)
    x0 = rng.uniform(lo_x, hi_x) if hi_x > lo_x else min(max(0.0, subject[0]), 1.0 - fw)
    y0 = rng.uniform(lo_y, hi_y) if hi_y > lo_y else min(max(0.0, subject[1]), 1.0 - fh)
    return (x0, y0, x0 + fw, y0 + fh)


def make_views(photos: Path, subjects: dict[str, Box], dest: Path, per_photo: dict[str, int], seed: int = 0,
               long_side: int = 640) -> list[View]:
    """``per_photo[name]`` views of each photo: the whole frame first, then windows keeping the subject, each
    mirrored with probability 1/2; written once as JPEGs (new files only)."""
    dest.mkdir(parents=True, exist_ok=True)
    views = []
    for name in sorted(per_photo):
        rng = np.random.default_rng([seed, *name.encode()])
        data, _ = read_source_bytes(photos / name)
        with Image.open(BytesIO(data)) as img:
            src = ImageOps.exif_transpose(img).convert("RGB")
        sx0, sy0, sx1, sy1 = subjects[name]
        for k in range(per_photo[name]):
            win = (0.0, 0.0, 1.0, 1.0) if k == 0 else _window_keeping(subjects[name], rng)
            mirror = k > 0 and rng.random() < 0.5
            w, h = src.size
            crop = src.crop((round(win[0] * w), round(win[1] * h), round(win[2] * w), round(win[3] * h)))
            crop.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            fw, fh = win[2] - win[0], win[3] - win[1]
            sub = ((sx0 - win[0]) / fw, (sy0 - win[1]) / fh, (sx1 - win[0]) / fw, (sy1 - win[1]) / fh)
            sub = tuple(min(max(v, 0.0), 1.0) for v in sub)
            if mirror:
                crop = ImageOps.mirror(crop)
                sub = (1 - sub[2], sub[1], 1 - sub[0], sub[3])
            path = dest / f"{Path(name).stem}_v{k:02d}.jpg"
            if not path.exists():
                buf = BytesIO()
                crop.save(buf, format="JPEG", quality=90)
                atomic_write_bytes(path, buf.getvalue(), replace=False)
            views.append(View(path, name, crop.width, crop.height, denormalise(sub, crop.width, crop.height)))
    return views


# ---- simulated photographers: crops defined on the judged subject and the frame ------------------------------------

def _around(cx: float, cy: float, w: float, h: float, fx: float, fy: float, width: int, height: int) -> Box:
    """A w x h box (shrunk to fit the frame, aspect kept) with the point (cx, cy) at fraction (fx, fy) of it."""
    s = min(1.0, width / w, height / h)
    w, h = w * s, h * s
    return clamp_box((cx - fx * w, cy - fy * h, cx - fx * w + w, cy - fy * h + h), width, height)


def habit(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """Content-blind: 3:2 at 90% of the widest fit, a little above the middle, whatever the picture shows."""
    full = largest_centred_box(1.5, width, height)
    w, h = 0.9 * (full[2] - full[0]), 0.9 * (full[3] - full[1])
    return _around(width / 2, height * 0.45, w, h, 0.5, 0.5, width, height)


def portrait_around(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """4:5 around the subject with a margin of 20% of its size on every side."""
    x0, y0, x1, y1 = subject
    w, h = (x1 - x0) * 1.4, (y1 - y0) * 1.4
    w, h = max(w, h * 0.8), max(h, w / 0.8)
    return _around((x0 + x1) / 2, (y0 + y1) / 2, w, h, 0.5, 0.5, width, height)


def thirds(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """The original aspect at 70% of the frame, the subject's centre on the nearest thirds point."""
    cx, cy = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
    fx = 1 / 3 if cx < width / 2 else 2 / 3
    fy = 1 / 3 if cy < height / 2 else 2 / 3
    return _around(cx, cy, 0.7 * width, 0.7 * height, fx, fy, width, height)


def tight_square(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """A square just holding the subject (10% margin), centred on it."""
    side = 1.1 * max(subject[2] - subject[0], subject[3] - subject[1])
    return _around((subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2, side, side, 0.5, 0.5, width, height)


def mixed(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """Human-like: 3:2 for landscape frames and 4:5 for portrait ones, sized so the subject fills about a third of
    the crop's area, the subject a little above the middle and towards the nearer side; 3% jitter per decision,
    and one decision in ten is the content-blind habit instead."""
    if rng.random() < 0.1:
        return habit(width, height, subject, rng)
    aspect = 1.5 if width >= height else 0.8
    area = (subject[2] - subject[0]) * (subject[3] - subject[1]) * 3.0
    w = math.sqrt(area * aspect)
    h = w / aspect
    cx, cy = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
    fx = 0.45 if cx < width / 2 else 0.55
    jitter = rng.normal(0, 0.03, 3)
    w, h = w * (1 + jitter[2]), h * (1 + jitter[2])
    return _around(cx + jitter[0] * w, cy + jitter[1] * h, w, h, fx, 0.45, width, height)


TASTES: dict[str, Taste] = {"habit-3:2": habit, "portrait-4:5": portrait_around, "thirds": thirds,
                            "tight-square": tight_square, "mixed": mixed}
CONTENT_BLIND = ("habit-3:2",)


def decisions(taste: str, views: list[View], root: Path, seed: int = 0) -> list[CropDecision]:
    """The simulated photographer's crop of each view, in the order given."""
    rng = np.random.default_rng([seed, *taste.encode()])
    rule = TASTES[taste]
    return [CropDecision(v.path.relative_to(root).as_posix(), v.width, v.height,
                         rule(v.width, v.height, v.subject, rng), float(i + 1)) for i, v in enumerate(views)]


def split_by_photo(photos: list[str], test_share: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Training and held-out photos (sorted), by a seeded shuffle of the photo names."""
    order = sorted(photos)
    np.random.default_rng(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_share))
    return sorted(order[n_test:]), sorted(order[:n_test])


# ---- running cropkit as a user would, and the peers beside it ------------------------------------------------------

def cropkit_command(args: list[str]) -> str:
    """Run ``cropkit ARGS`` in a subprocess; its stdout, or a RuntimeError with its stderr."""
    done = subprocess.run([sys.executable, "-m", "cropkit", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cropkit {' '.join(args[:1])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def train_and_suggest(root: Path, train: list[CropDecision], test: list[View], steps: int | None,
                      extra: list[str]) -> dict[str, list[Box]]:
    """Log ``train`` as the root's only decisions, ``cropkit train`` on them, then ``cropkit suggest --json`` on
    every test view: the ranked boxes per view name."""
    layout = Layout.from_args(root)
    lines = "".join(json.dumps(d.to_json()) + "\n" for d in train)
    atomic_write_bytes(layout.logs / TRAINING_LOG, lines.encode())
    effort = ["--steps", str(steps)] if steps else []
    out = cropkit_command(["train", "--root", str(root), "--holdout", "0", *effort, "--no-progress", "--workers", "0",
                           *extra])
    proposer = next(line.split(None, 1)[1] for line in out.splitlines() if line.startswith("proposer:"))
    out = cropkit_command(["suggest", "--root", str(root), "--proposer", proposer, "--json", "--top-k", "3",
                           *extra, *(str(v.path) for v in test)])
    return {obj["image"]: [tuple(s["box"]) for s in obj["suggestions"]]
            for obj in map(json.loads, out.splitlines())}


def peer_boxes(train: list[CropDecision], test: list[View], cues: dict[str, object]) -> dict[str, list[list[Box]]]:
    """Every peer fitted on the training crops, its top-3 boxes per test view."""
    from cropkit.learn.baselines import BASELINES, Target, fitted_shape

    targets = [Target(d.width, d.height, d.crop) for d in train]
    out = {}
    for cls in BASELINES:
        peer = cls()
        peer.fit(targets)
        out[peer.name] = [[s.box for s in peer.propose(v.width, v.height, cues.get(v.path.name), k=3)]
                          for v in test]
    smart = smartcrop_boxes(test, fitted_shape(targets))
    if smart is not None:
        out["smartcrop"] = smart
    return out


def smartcrop_boxes(test: list[View], shape: tuple[float | None, float]) -> list[list[Box]] | None:
    """smartcrop (PyPI) at the learned aspect and scale; None when it is not installed."""
    try:
        import smartcrop
    except ImportError:
        return None
    aspect, scale = shape
    cropper = smartcrop.SmartCrop()
    out = []
    for v in test:
        full = largest_centred_box(aspect, v.width, v.height)
        w, h = max(1, int((full[2] - full[0]) * scale)), max(1, int((full[3] - full[1]) * scale))
        with Image.open(v.path) as img:
            top = cropper.crop(img.convert("RGB"), w, h)["top_crop"]
        x, y = float(top["x"]), float(top["y"])
        out.append([(x, y, x + top["width"], y + top["height"])])
    return out


def score(boxes: list[list[Box]], truth: list[CropDecision], test: list[View]) -> dict:
    return score_proposals(boxes, [[d.crop] for d in truth], [(v.width, v.height) for v in test]).to_json()


def run_real_benchmark(photos: Path, subjects_file: Path, root: Path, arch: str = "auto",
                       weights: str = "auto", steps: int | None = None, budgets: tuple[int, ...] = BUDGETS,
                       tastes: tuple[str, ...] = tuple(TASTES), test_share: float = 0.3, test_views: int = 7,
                       extra: list[str] = (), log: Callable[[str], None] = print) -> dict:
    """Every taste at every budget: the proposer (through the CLI) and every peer on the same held-out views.
    ``auto``: the encoder ``cropkit extract`` would choose (cached CLIP, else EfficientNet-Lite0), never random."""
    started = time.perf_counter()
    arch, weights = concrete_encoder(arch, weights)
    subjects = read_subjects(subjects_file)
    missing = [n for n in subjects if not (photos / n).is_file()]
    if missing:
        raise CropkitError(f"{len(missing)} photos of {subjects_file} are not in {photos} (first: {missing[0]})")
    root = claim_generated_root(root, "benchmark")
    train_photos, test_photos = split_by_photo(list(subjects), test_share)
    per_train = math.ceil(max(budgets) / len(train_photos))
    per_photo = {**{n: per_train for n in train_photos}, **{n: test_views for n in test_photos}}
    log(f"views: {per_train} per training photo ({len(train_photos)}), {test_views} per held-out photo "
        f"({len(test_photos)})")
    views = make_views(photos, subjects, root / "data" / "training_data" / "views", per_photo)
    train_views = [v for v in views if v.photo in set(train_photos)]
    np.random.default_rng(1).shuffle(train_views)  # any first N decisions cover many photos
    test = [v for v in views if v.photo in set(test_photos)]
    cropkit_command(["extract", "--root", str(root), "--arch", arch, "--weights", weights, "--no-progress",
                     "--workers", "1", *extra])
    cues = load_cues(root, views)
    results: dict[str, dict] = {}
    for taste in tastes:
        train_all = decisions(taste, train_views, root)
        truth = decisions(taste, test, root, seed=1)
        results[taste] = {}
        for n in budgets:
            log(f"{taste}: {n} decisions")
            train = train_all[:n]
            answered = train_and_suggest(root, train, test, steps, extra)
            methods = {"proposer": score([answered[d.image] for d in truth], truth, test)}
            methods.update({name: score(b, truth, test) for name, b in peer_boxes(train, test, cues).items()})
            best = max((name for name in methods if name != "proposer"), key=lambda k: methods[k]["mean_iou"])
            results[taste][n] = {"methods": methods, "best_peer": best,
                                 "margin": methods["proposer"]["mean_iou"] - methods[best]["mean_iou"]}
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "arch": arch, "weights": weights, "steps": steps, "train_photos": len(train_photos),
            "test_photos": len(test_photos), "test_views": len(test), "seconds": time.perf_counter() - started}
    return {"meta": meta, "tastes": results}


def load_cues(root: Path, views: list[View]) -> dict[str, object]:
    """The stored composition cues of each view (by file name), for the saliency peer."""
    from cropkit.features.cues import CueStore

    layout = Layout.from_args(root)
    store, wanted, hashes = CueStore(layout.cues), {v.path.name for v in views}, {}
    for line in layout.processed_files.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("status") == "ok" and Path(obj["path"]).name in wanted:
            hashes[Path(obj["path"]).name] = obj["hash"]
    return {name: store.load(h) for name, h in hashes.items() if store.is_whole(h)}


REAL_TITLE = "# Taste benchmark on real photographs"
OLD_TITLE = "# Simulated-photographer benchmark"  # the sanity check's title before it was named one


def real_markdown(report: dict) -> str:
    """The report as Markdown: per taste, mean IoU of every method at every budget, and the proposer's margin."""
    meta = report["meta"]
    lines = [REAL_TITLE, "",
             f"Generated by `cropkit benchmark-taste --photos ... --subjects ...` on {meta['date']} "
             f"({meta['machine']}); "
             f"{meta['arch']} with weights `{meta['weights']}`"
             + (" (UNTRAINED: random weights)" if meta["weights"] == "none" else "")
             + f", training steps: {meta['steps'] or 'as cropkit train (scaled to the decisions)'}.",
             "",
             f"Photos whose subject a person judged, split by photo: {meta['train_photos']} for training, "
             f"{meta['test_photos']} held out ({meta['test_views']} held-out views). The simulated photographers "
             "crop by rules on the judged subject box and the frame; the proposer's numbers come from `cropkit "
             "train` and `cropkit suggest --json` run as subprocesses. Mean IoU of the top suggestion; "
             "acceptance is IoU >= 0.85; margin is the proposer's mean IoU minus the best peer's.", ""]
    for taste, budgets in report["tastes"].items():
        methods = list(next(iter(budgets.values()))["methods"])
        lines += [f"## `{taste}`", "", "| decisions | " + " | ".join(methods) + " | best peer | margin | "
                  "proposer acceptance | proposer BDE |", "|" + " ---: |" * (len(methods) + 5)]
        for n, r in budgets.items():
            m = r["methods"]
            lines.append(f"| {n} | " + " | ".join(f"{m[k]['mean_iou']:.3f}" for k in methods)
                         + f" | {r['best_peer']} | {r['margin']:+.3f} | {m['proposer']['acceptance_rate']:.1%} | "
                         f"{m['proposer']['mean_bde']:.3f} |")
        lines.append("")
    lines.append(f"Total time: {meta['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


# ---- the sanity check: tastes on cropkit's own saliency peak (plumbing only, not evidence) -----------------------

@dataclass
class TasteRun:
    taste: str
    curve: dict[int, dict[str, dict]]  # decisions -> method -> scores




def learning_curve(taste: str, train_decisions: list[CropDecision], test_decisions: list[CropDecision],
                   data: dict, fit: Callable, points=BUDGETS) -> TasteRun:
    """Proposer and baselines trained on the first N decisions, all scored on the same held-out pictures."""
    train = list(examples_from_decisions(train_decisions, []).values())
    test = list(examples_from_decisions(test_decisions, []).values())
    return TasteRun(taste, evaluation_curve(train, test, data, fit, points))


def beats_baselines_from(run: TasteRun) -> int | None:
    """The fewest decisions from which the proposer beats every baseline in mean IoU and acceptance, at every
    later point of the curve; None if it never does."""
    since = None
    for n in sorted(run.curve):
        methods = run.curve[n]
        ours = methods["proposer"]
        wins = all(ours["mean_iou"] > s["mean_iou"] and ours["acceptance_rate"] > s["acceptance_rate"]
                   for name, s in methods.items() if name != "proposer")
        since = (since or n) if wins else None
    return since


SANITY_TITLE = "# Sanity check: simulated photographers on cropkit's own saliency peak (not evidence)"


def sanity_markdown(runs: list[TasteRun], meta: dict) -> str:
    lines = [SANITY_TITLE, "",
             "The subject here is the peak of the saliency map the proposer itself reads, so a learner only has "
             "to read its own input back: this checks the plumbing, it proves nothing about taste. The evidence "
             "is `docs/taste_benchmark.md` (real photographs, subjects judged by a person).", "",
             f"Generated by `cropkit benchmark-taste --sanity-check` on {meta['date']} ({meta['machine']}).", "",
             f"{meta['n_train']} training and {meta['n_test']} held-out pictures cut from the "
             f"{meta['n_photos']} real photographs of the sample library; features from {meta['feature_model']}"
             + (" (an UNTRAINED encoder: random weights)" if is_untrained(meta["feature_model"]) else "")
             + ". Acceptance: "
             "IoU >= 0.85 with the simulated photographer's crop.", "",
             "Tastes: `thirds-4:5` puts the subject on the nearer vertical thirds line and the upper third of a "
             "4:5 crop; `tight-square` centres a square of 60% of the short side on the subject; `wide-3:2` "
             "centres the subject in a 3:2 crop at 90% of the widest fit. The subject is the peak of a fine "
             "saliency map (`cropkit.demo.photographer.subject_point`).", "", "## Verdict", ""]
    for run in runs:
        since = beats_baselines_from(run)
        lines.append(f"- `{run.taste}`: the proposer beats every baseline in mean IoU and acceptance "
                     + (f"from {since} decisions on." if since else "at no point of the curve."))
    lines.append("")
    for run in runs:
        lines += [f"## Taste `{run.taste}`", "", "| decisions | method | mean IoU | acceptance | BDE | best-of-3 IoU |",
                  "| ---: | --- | ---: | ---: | ---: | ---: |"]
        for n, methods in run.curve.items():
            for name, s in methods.items():
                lines.append(f"| {n} | {name} | {s['mean_iou']:.3f} | {s['acceptance_rate']:.1%} | "
                             f"{s['mean_bde']:.3f} | {s['best_of_k_iou']:.3f} |")
        lines.append("")
    lines.append(f"Total time: {meta['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"




def _earlier_report(path: Path) -> bool:
    """Whether ``path`` holds a taste-benchmark report written before (Markdown or JSON)."""
    if path.is_symlink():
        return False
    try:
        data, _ = read_source_bytes(path, max_bytes=1 << 20)
        if path.suffix == ".json":
            return set(json.loads(data)) == {"meta", "tastes"}
        return data.decode().startswith((SANITY_TITLE + "\n", REAL_TITLE + "\n", OLD_TITLE + "\n"))
    except (OSError, ValueError, TypeError, RecursionError):
        return False


def check_report_targets(out_md: Path, out_json: Path) -> None:
    """Refuse report paths that hold anything but an earlier taste-benchmark report (call it before the run too)."""
    for path in (out_md, out_json):
        if (path.exists() or path.is_symlink()) and not _earlier_report(path):
            raise CropkitError(f"{path} exists and is not an earlier taste-benchmark report: it is left alone; "
                               "choose another --out")


def write_reports(markdown: str, report: dict, out_md: Path, out_json: Path) -> None:
    """Write both reports whole; an existing file is replaced only when it is an earlier report."""
    check_report_targets(out_md, out_json)
    atomic_write_bytes(out_md, markdown.encode())
    atomic_write_bytes(out_json, json.dumps(report, indent=1).encode())


def run_sanity_check(root: Path, n_train: int = 300, n_test: int = 120, arch: str = "auto",
                        weights: str = "auto", steps: int | None = None, log: Callable[[str], None] = print,
                        progress: bool = True, points: tuple[int, ...] = BUDGETS) -> tuple[list[TasteRun], dict]:
    """Build the variant library under ``root`` (a new or empty folder, one generated before, or one under this
    checkout's data/), extract features, and run every saliency-peak taste's learning curve."""
    from cropkit.demo.photographer import TASTES as SALIENCY_TASTES
    from cropkit.demo.photographer import decisions_for, make_variants
    from cropkit.demo.samples import build_sample_library
    from cropkit.extract.options import ExtractOptions
    from cropkit.learn.dataset import load_image_data
    from cropkit.learn.train import fit_proposer

    started = time.perf_counter()
    root = claim_generated_root(root, "benchmark")
    layout = Layout(root, root / "data" / "training_data")
    photos, _missing = build_sample_library(root / "data" / "sample_library")
    paths = make_variants(photos, layout.images / "variants", n_train + n_test)
    rel = [layout.relative_name(p) for p in paths]
    opts = ExtractOptions(root=root, arch=arch, weights=weights, progress=progress, workers=1)
    data, skipped, encoder_id = load_image_data(layout, rel, opts, log)
    if skipped:
        raise RuntimeError(f"benchmark pictures could not be extracted: {skipped}")
    runs = []
    for taste in SALIENCY_TASTES:
        decisions = decisions_for(taste, layout.root, paths)
        log(f"taste {taste}: learning curve at {', '.join(map(str, points))} decisions")
        runs.append(learning_curve(taste, decisions[:n_train], decisions[n_train:], data,
                                   lambda train, d: fit_proposer(train, d, steps=steps), points))
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU",
            "n_train": n_train, "n_test": n_test, "n_photos": len(photos), "feature_model": encoder_id,
            "steps": steps, "seconds": time.perf_counter() - started}
    return runs, meta
