"""The ``cropkit`` command: a thin layer over functions that notebooks and tests call directly.

Heavy modules (torch, open_clip) are imported inside the commands, so ``--help`` is instant and
decode worker processes, which re-import this module, stay light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cropkit import __version__
from cropkit.errors import CropkitError, explain_os_error

DESCRIPTION = """\
cropkit learns a photographer's crop taste and proposes the crops they would make.

Source images and their companion files are only ever read. cropkit writes new files under
ROOT/data/ai_data/ and, only with --sidecars, named sidecar files beside the images.
"""

EXTRACT_HELP = """\
Scan the library (ROOT/data/training_data, or --images) read-only and compute, per image, a
whole-frame CLIP embedding, a coarse spatial grid of patch features and a 64-bit perceptual hash.
Features go to ROOT/data/ai_data/embeddings/<model>/<sha256>.npy; every file gets one line in
ROOT/data/ai_data/cache/processed_files.jsonl. A rerun skips files whose path, size and mtime are
unchanged, without opening them.
"""


TRAIN_HELP = """\
Learn a crop proposer from data/ai_data/logs/training_log.jsonl (crops made in any tool) and
suggestions.jsonl (approved / modified / rejected suggestions). Features of the logged images are
extracted first where missing (read-only). Writes data/ai_data/models/crop_proposer_vN.pth, the next
free version, with metadata and held-out metrics against the baselines.
"""


IMPORT_HELP = """\
Read crops you already made into ROOT/data/ai_data/logs/training_log.jsonl, one line per crop with
"source" and "origin". Nothing is written beside your photos; a second run adds nothing, and a crop
changed at its source since replaces the old line (through an undo line). Paths outside the library are
skipped with the reason. Every kind has --dry-run.

  cropkit import xmp                      Lightroom / Camera Raw (crs:) and darktable crops from the
                                          library's XMP sidecars (IMG_1.xmp, IMG_1.jpg.xmp) and XMP
                                          embedded in JPEG and TIFF files
  cropkit import catalog CATALOG.lrcat    a Lightroom Classic catalog (read from a private copy)
  cropkit import exports ORIGINALS EXPORTS
                                          exported crops located in their originals (matched by name,
                                          else by content); boxes scoring below --min-confidence are
                                          reported, not logged

cropkit import KIND --help tells more about each.
"""


class _OldSpelling(argparse.Action):
    """A renamed flag's old spelling, kept for one release: it still works, says the new one, and is hidden
    from --help."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"cropkit: note: {option_string} is now {self.new}; the old spelling will be removed in a later "
              "release", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _renamed(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` as a deprecated spelling of the flag ``new`` declared just before."""
    parser.add_argument(old, dest=new.lstrip("-").replace("-", "_"), action=_OldSpelling, new=new)


def _parents() -> dict[str, argparse.ArgumentParser]:
    """The options several commands share, declared once each (argparse parent parsers)."""

    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    root, library, features, config, device, progress = (parent() for _ in range(6))
    root.add_argument("--root", default=".", metavar="DIR",
                      help="folder that holds data/ (default: the current directory)")
    library.add_argument("--images", metavar="DIR",
                         help="the photo library to read (default: the library ROOT's last extract read, else "
                              "ROOT/data/training_data)")
    config.add_argument("--arch-config", metavar="JSON",
                        help="register extra open_clip architectures from a JSON file or folder of them")
    _renamed(config, "--model-config", "--arch-config")
    device.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="auto picks cuda, then mps, then cpu (default: auto)")
    progress.add_argument("--no-progress", action="store_true", help="no progress bars")
    features.add_argument("--arch", default=None,
                          help="encoder: efficientnet-lite0, an open_clip architecture (ViT-B-32, ...) or auto "
                               "(ViT-B-32 when its openai weights are cached here, else efficientnet-lite0; never "
                               "random). Default: the one ROOT's features came from, else auto")
    features.add_argument("--weights", default=None,
                          help="imagenet (efficientnet-lite0), an open_clip tag (openai, laion2b_s34b_b79k, ...), "
                               "a local checkpoint file (.safetensors/.bin/.pt/.pth), or 'none' for an UNTRAINED "
                               "random encoder (default: the weights ROOT's features came from, remembered by "
                               "extract; else the architecture's pretrained weights)")
    _renamed(features, "--model", "--arch")
    _renamed(features, "--pretrained", "--weights")
    features.add_argument("--subject-model", default=None, metavar="FILE.onnx|rembg:NAME|none",
                          help="a salient-object model (ONNX; none ships with cropkit) whose subject map the "
                               "proposer reads; rembg:NAME takes rembg's model from ~/.u2net; none turns it off "
                               "(default: the one ROOT's last extract used, else none). Needs cropkit[subject]")
    features.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                          help="encoder arithmetic: auto uses fp16 on CUDA and bf16 on CPUs that have it in "
                               "hardware (features within cosine 0.9999 of fp32), else fp32 (default: auto)")
    return {"root": root, "library": library, "features": features, "config": config, "device": device,
            "progress": progress}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cropkit", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cropkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    shared = _parents()

    def command(name: str, *parents: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[shared[p] for p in parents], **kwargs)

    encoder = ("root", "library", "features", "config", "device", "progress")
    ex = command("extract", *encoder, help="compute CLIP features and perceptual hashes for a library (read-only)",
                 description=EXTRACT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--batch-size", type=_positive, default=None,
                    help="images per encoder batch (default: 32 on CPU; on CUDA sized to the free GPU memory)")
    ex.add_argument("--workers", type=_workers, default=-1,
                    help="decode worker processes, at most one per core; 0 decodes in the main process "
                         "(default: one per core)")
    ex.add_argument("--max-images", type=_positive, metavar="N",
                    help="process at most N new images this run (cached ones do not count); rerun to continue")
    ex.add_argument("--force", action="store_true", help="recompute every image, ignoring the cache")
    ex.add_argument("--retry-failed", action="store_true",
                    help="try again files that failed before and have not changed since")
    ex.add_argument("--sidecars", action="store_true",
                    help="also write <image>.embedding.npy and <image>.phash beside each image (new files only)")
    ex.add_argument("--decoder", choices=["auto", "cpu", "device"], default="auto",
                    help="where JPEGs are decoded: device (nvJPEG on a CUDA GPU, other files on the CPU) or cpu; "
                         "auto (default) is cpu, measured faster on camera JPEGs (docs/benchmarks.md)")
    ex.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="local: worker processes on this machine (default); ray: a Ray cluster (pip install "
                         "'cropkit[ray]'), same files and cache lines")
    ex.add_argument("--address", metavar="auto|HOST:PORT", default=None,
                    help="ray: the cluster to join (auto: the one `ray start` made here; default: start a local one)")
    ex.add_argument("--num-gpus", type=float, default=0.0, metavar="G",
                    help="ray: GPUs per encoder actor (default: 0)")
    ex.add_argument("--encoders", type=_positive, default=1, metavar="N",
                    help="ray: encoder actors, one model load each (default: 1)")
    ex.add_argument("--cpus-per-task", type=float, default=1.0, metavar="C",
                    help="ray: CPUs each read-hash-decode task takes (default: 1)")
    ex.set_defaults(func=_cmd_extract)

    tr = command("train", *encoder, help="learn a crop proposer from the logged decisions",
                 description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("--steps", type=_positive,
                    help="optimisation steps (default: scaled to the decisions, 6 per image, 150 to 1500)")
    tr.add_argument("--epochs", type=_positive, help="passes over the training images (overrides --steps)")
    tr.add_argument("--holdout", type=_share, default=0.2,
                    help="share of images held out for the metrics, split by image (default: 0.2)")
    tr.add_argument("--workers", type=_workers, default=-1,
                    help="decode workers for missing features, at most one per core (default: one per core)")
    tr.add_argument("--learning-curve", metavar="DIR",
                    help="also refit on the first 10, 30, 100, ... training images and save learning-curve "
                         "figures (quality against number of decisions) to DIR")
    tr.set_defaults(func=_cmd_train)

    sg = command("suggest", "root", "config", "device", help="propose ranked crops for images",
                 description="Ranked crop suggestions in pixels of the upright image, each with the probability "
                             "that you accept it (calibrated on your held-out decisions when the proposer was "
                             "trained). Uses "
                             "cached features when the image is unchanged, computes them otherwise "
                             "(the image is only read).")
    sg.add_argument("images", nargs="+", metavar="IMAGE")
    sg.add_argument("--proposer", metavar="PATH", help="a proposer file (default: the latest crop_proposer_vN.pth)")
    _renamed(sg, "--model", "--proposer")
    sg.add_argument("--aspect", metavar="W:H", help="required aspect, e.g. 4:5 or 16:9 (default: learned)")
    sg.add_argument("--top-k", type=_positive, default=3, help="how many suggestions per image (default: 3)")
    sg.add_argument("--json", action="store_true", help="one JSON object per image per line")
    sg.add_argument("--subject-model", default=None, metavar="FILE.onnx|rembg:NAME",
                    help="the subject model the proposer was trained with, when it reads subject maps (default: "
                         "the one ROOT's extract used)")
    sg.set_defaults(func=_cmd_suggest)

    ev = command("evaluate", "root", "config", "device", "progress",
                 help="measure the proposer against baselines; plot acceptance over time",
                 description="Scores the proposer and every baseline (full frame, centre crop at the usual "
                             "aspect, mean box, saliency) on held-out images (split by image, as in "
                             "train): mean IoU, BDE, acceptance (IoU >= 0.85), best-of-3 IoU, and says "
                             "whether the proposer is above its best baseline; the learning curve (refitted on "
                             "the first 10, 30, 100, ... decisions); and the acceptance of logged suggestions "
                             "over time and by model version. Writes report.json and PNG figures under "
                             "data/ai_data/reports/.")
    ev.add_argument("--proposer", metavar="PATH", help="a proposer file (default: the latest)")
    _renamed(ev, "--model", "--proposer")
    ev.add_argument("--holdout", type=_share, default=0.2, help="held-out share, as in train (default: 0.2)")
    ev.add_argument("--window", type=_positive, default=50, help="rolling window in decisions (default: 50)")
    ev.add_argument("--out", metavar="DIR", help="report folder (default: data/ai_data/reports/evaluation_<time>)")
    ev.add_argument("--no-learning-curve", action="store_true",
                    help="skip the learning curve (it refits the proposer once per point: the slow part)")
    ev.add_argument("--steps", type=_positive, default=None,
                    help="training steps of each learning-curve fit (default: scaled to the decisions, as train)")
    ev.set_defaults(func=_cmd_evaluate)

    bt = command("benchmark-taste", "config",
                 help="learning curves of the proposer and its peers on real photographs",
                 description="Real photographs whose subject a person judged (--photos, --subjects) are cut into "
                             "views, split by photo; simulated photographers crop them by rules on the judged "
                             "subject; after 10, 30, 100 and 300 decisions the proposer (cropkit train and "
                             "cropkit suggest --json, run as subprocesses) and its peers (full frame, centre "
                             "crop, mean box, saliency, smartcrop; with --subject-model, the subject map's box) "
                             "are scored on the held-out views, beside the ceilings of the cues (each taste's "
                             "rule applied to a cue's subject box). "
                             "--sanity-check runs the old tastes on cropkit's own saliency peak instead (plumbing "
                             "only: not evidence). Writes a Markdown and a JSON report.")
    bt.add_argument("--photos", metavar="DIR", help="the photographs (e.g. ../shared/benchmarks/real_photos/photos)")
    bt.add_argument("--subjects", metavar="FILE", help="their judged subjects (subjects.json)")
    bt.add_argument("--sanity-check", action="store_true",
                    help="the saliency-peak tastes on the sample library instead (not evidence)")
    bt.add_argument("--root", metavar="DIR", help="working root for pictures and features, one cropkit "
                    "generated (default: data/benchmark-real, or data/benchmark for --sanity-check)")
    bt.add_argument("--out", metavar="FILE", help="Markdown report, JSON beside it (default: "
                    "docs/taste_benchmark.md, or docs/taste_sanity_check.md for --sanity-check)")
    bt.add_argument("--train", type=_positive, default=300, help="--sanity-check: training pictures (default: 300)")
    bt.add_argument("--test", type=_positive, default=120, help="--sanity-check: held-out pictures (default: 120)")
    bt.add_argument("--arch", default="auto", help="encoder, as for extract (default: auto: cached ViT-B-32 "
                    "openai weights, else efficientnet-lite0 with ImageNet weights)")
    bt.add_argument("--weights", default="auto",
                    help="as for extract; none gives an UNTRAINED encoder (default: the architecture's own)")
    _renamed(bt, "--model", "--arch")
    _renamed(bt, "--pretrained", "--weights")
    bt.add_argument("--steps", type=_positive, help="training steps per run (default: as cropkit train)")
    bt.add_argument("--subject-model", default="none", metavar="FILE.onnx|rembg:NAME|none",
                    help="a salient-object model for the benchmark's extract, as for extract: the proposer trains "
                         "with its subject maps, and the report adds the subject-box peer and the subject map's "
                         "ceiling (default: none; make taste-bench fetches ISNet)")
    bt.set_defaults(func=_cmd_benchmark_taste)

    bn = command("bench", "device", help="time extraction against its ceiling, training and suggestions",
                 description="Extraction half: makes N camera-size JPEGs (24 MP, quality 92) once, then "
                             "measures in one run with the same model, batch, threads and device: the "
                             "encoder alone on ready tensors (ceiling), a naive one-file-at-a-time script, "
                             "and cropkit extract end to end, with peak memory, feature bytes and a "
                             "cached rerun. Learning half: a cached library of N decisions, cropkit train "
                             "end to end, suggest from cached features and on new 24 MP JPEGs. Prints "
                             "the ratios and writes a JSON report. No weights are needed (ViT-B-32 with "
                             "random weights: the cost of the encoder does not depend on them).")
    bn.add_argument("--root", default="data/bench", metavar="DIR",
                    help="working root, one cropkit generated (default: data/bench)")
    bn.add_argument("--decisions", type=_positive, default=14_000, help="library size (default: 14000)")
    bn.add_argument("--new-images", type=_positive, default=8, help="new 24 MP JPEGs to time (default: 8)")
    bn.add_argument("--out", default="data/bench/report.json", help="JSON report (default: data/bench/report.json)")
    bn.add_argument("--only", choices=["learning", "extract", "store", "engines"],
                    help="run one part only (store: loading feature entries from per-image files and packed; "
                         "engines: extract with the local and the Ray engine)")
    bn.add_argument("--store-entries", type=_positive, default=1_000_000,
                    help="synthetic feature entries for the store part (default: 1000000; about 4 GB of files)")
    bn.add_argument("--camera-images", type=_positive, default=128,
                    help="24 MP JPEGs for the extraction half, made once under ROOT/extract/camera (default: 128)")
    bn.add_argument("--subject-model", default="none", metavar="FILE.onnx|rembg:NAME|none",
                    help="time the subject map too: alone on the decode extract gives it (target <= 0.5 s per "
                         "image), inside cropkit extract, and read by train and suggest (default: none)")
    bn.set_defaults(func=_cmd_bench)

    nb = command("notebooks", help="run the extract, train and evaluate notebooks headless (papermill)",
                 description="Executes notebooks/01..03 in order with papermill and keeps each executed notebook "
                             "as ROOT/data/ai_data/runs/<time>_<name>.ipynb, its figures in "
                             "ROOT/data/ai_data/runs/<time>_figures/. With --demo, a demo library with a simulated "
                             "photographer's decisions is built at ROOT first if it has none; that happens only in "
                             "a new or empty folder, one cropkit generated, or this checkout's data/, never in "
                             "your library.")
    nb.add_argument("--root", default=None, metavar="DIR",
                    help="folder that holds data/ (default: the root parameter, else this checkout's data/demo)")
    nb.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a notebook parameter, repeatable; the value is plain YAML data (a number, true/false, "
                         "null, text or a list; no tags), checked against the notebooks' parameters cells; "
                         "relative paths are relative to the current folder")
    nb.add_argument("--demo", action="store_true", help="build the demo library at ROOT when it has none")
    nb.set_defaults(func=_cmd_notebooks)

    cl = command("clean-sidecars", help="delete the sidecar files cropkit wrote, and nothing else",
                 description="Delete the sidecar files below DIR (<image>.embedding.npy, .phash, .saliency.npy or "
                             ".hands.json beside their image) that cropkit recorded writing for ROOT (in "
                             "ROOT/data/ai_data/cache/sidecars.jsonl) and whose content is still what it wrote, "
                             "plus temp files a killed sidecar writer left, listing each. A file merely named like "
                             "a sidecar, a changed sidecar, a link and every other file are left alone and listed "
                             "with the reason, whatever the record says; links below DIR are not followed.")
    cl.add_argument("dir", nargs="?", metavar="DIR", help="folder to clean (default: ROOT's library)")
    cl.add_argument("--root", metavar="DIR", help="folder that holds data/ (default: with DIR, the root whose "
                    "record lists sidecars below DIR: the current folder, DIR or a folder above it; else the "
                    "current folder)")
    cl.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    cl.set_defaults(func=_cmd_clean_sidecars)

    im = command("import", help="read the crops you already made (Lightroom, Camera Raw, darktable, exported "
                 "crops) into the log", description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = im.add_subparsers(dest="kind", metavar="KIND", required=True)

    def kind(name: str, help: str) -> argparse.ArgumentParser:
        p = kinds.add_parser(name, parents=[shared["root"], shared["library"]], help=help, description=help)
        p.add_argument("--dry-run", action="store_true", help="say what would be imported, write nothing")
        p.set_defaults(func=_cmd_import)
        return p

    kind("xmp", "Lightroom / Camera Raw (crs:) and darktable crops from the library's XMP sidecars (IMG_1.xmp, "
                "IMG_1.jpg.xmp) and XMP embedded in JPEG and TIFF files")
    cat = kind("catalog", "the crops of a Lightroom Classic catalog (read from a private copy)")
    cat.add_argument("catalog", metavar="CATALOG.lrcat", help="the catalog file")
    cat.add_argument("--map", metavar="OLD=NEW", help="the library moved: rewrite catalog paths starting OLD")
    exp = kind("exports", "exported crops located in their originals (matched by name, else by content)")
    exp.add_argument("originals", metavar="ORIGINALS", help="the folder of originals (inside the library)")
    exp.add_argument("exports", metavar="EXPORTS", help="the folder of exported crops")
    exp.add_argument("--min-confidence", type=float, default=None, metavar="X",
                     help="the match score (0-1) a recovered box needs to be logged (default: 0.8)")

    pk = command("pack", "root", help="gather the feature files into sharded matrices and an index (large "
                 "libraries)", description="Pack the per-image feature files of ROOT's encoder into float16 "
                 "shards (ROOT/data/ai_data/embeddings/<model>/packed/shard-*.npy, each image's row beside its "
                 "content hash) and a SQLite index of content hash, path and position. Training, evaluation and "
                 "suggestion then memory-map the shards and fall back to per-image files for images extracted "
                 "since, and for rows a damaged (or older) pack cannot vouch for. The per-image files are kept; a "
                 "rerun replaces the pack and removes what killed packs left.")
    pk.set_defaults(func=_cmd_pack)

    sl = command("sample-library", help="copy the sample photos shipped inside installed wheels into DIR",
                 description="Build the demo library from real photographs that ship inside the scikit-image, "
                             "scikit-learn and matplotlib wheels (no network), in a new or empty DIR, one cropkit "
                             "generated or one under this checkout's data/ (a user's library is refused). Existing "
                             "files are never replaced.")
    sl.add_argument("dir", nargs="?", default="data/sample_library", metavar="DIR",
                    help="where to put the photos (default: data/sample_library)")
    sl.set_defaults(func=_cmd_sample_library)
    return parser


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {value}")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (decode in the main process) or more, not {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _cmd_extract(args: argparse.Namespace) -> int:
    from cropkit.extract.options import ExtractOptions
    from cropkit.extract.pipeline import run_extract
    from cropkit.extract.ray_engine import RayOptions

    _register(args)
    ray = RayOptions(args.address, args.cpus_per_task, args.encoders, args.num_gpus) if args.engine == "ray" else None
    opts = ExtractOptions(
        root=args.root, images=args.images, arch=args.arch, weights=args.weights, device=args.device,
        precision=args.precision, batch_size=args.batch_size, workers=args.workers, max_images=args.max_images,
        force=args.force, retry_failed=args.retry_failed, sidecars=args.sidecars, progress=not args.no_progress,
        engine=args.engine, ray=ray, decoder=args.decoder, subject_model=args.subject_model,
    )
    summary = run_extract(opts, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print("\n".join(summary.lines()))
    return 0


def _warn_if_untrained(encoder_id: str) -> None:
    from cropkit.features.encoder_id import is_untrained

    if is_untrained(encoder_id):
        print(f"!!! {encoder_id}: these suggestions stand on an UNTRAINED encoder (random weights); only the "
              "composition cues carry meaning.", file=sys.stderr)


def _register(args: argparse.Namespace) -> None:
    if getattr(args, "arch_config", None):
        from cropkit.features.encoders.open_clip import register_arch_configs

        register_arch_configs(args.arch_config)


def _cmd_train(args: argparse.Namespace) -> int:
    from cropkit.learn.train import TrainOptions, run_train

    _register(args)
    opts = TrainOptions(root=args.root, images=args.images, arch=args.arch, weights=args.weights,
                        device=args.device, precision=args.precision, workers=args.workers,
                        subject_model=args.subject_model, steps=args.steps,
                        epochs=args.epochs, holdout=args.holdout, progress=not args.no_progress)
    if args.learning_curve:  # a folder that would be overwritten, or lies in the library, is refused before training
        from cropkit.evaluate.curves import learning_curve_paths
        from cropkit.layout import Layout

        learning_curve_paths(args.learning_curve, Layout.from_args(args.root, args.images))
    result = run_train(opts, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print("\n".join(result.lines()))
    if args.learning_curve:
        from cropkit.evaluate.curves import learning_curve_figures, learning_curve_paths

        files = learning_curve_paths(args.learning_curve, result.layout)
        learning_curve_figures(result.train, result.test, result.data, files, opts.steps)
        for path in (p for name, p in files.items() if name.endswith(".png")):
            print(f"figure:     {path}")
    _warn_if_untrained(result.proposer.encoder_id)
    return 0


def _cmd_suggest(args: argparse.Namespace) -> int:
    from cropkit.features.cache import ProcessedCache
    from cropkit.geometry import parse_aspect
    from cropkit.learn.suggest import Suggester, display_name, result_json

    _register(args)
    try:
        aspect = parse_aspect(args.aspect)
    except ValueError as exc:
        raise CropkitError(f"--aspect: {exc}") from None
    suggester = Suggester.open(args.root, args.proposer, args.device, args.subject_model)
    _warn_if_untrained(suggester.encoder_id)
    cache = ProcessedCache(suggester.layout.processed_files, suggester.encoder_id)
    failed = 0
    for image in args.images:
        try:
            result = suggester.suggest(Path(image), aspect=aspect, k=args.top_k, cache=cache)
        except CropkitError as exc:
            print(f"cropkit: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(result_json(result))
        else:
            print(f"{display_name(result.image)}  {result.width}x{result.height}  ({result.proposer})")
            for rank, s in enumerate(result.suggestions, start=1):
                print(f"  {rank}. {[round(v, 1) for v in s.box]}  {s.score:.0%} likely to be accepted")
    for note in suggester.not_stored:
        print(f"cropkit: note: features not stored, they will be computed again next time: {note}", file=sys.stderr)
    if problem := suggester.stores().features.pack_problem:
        print(f"cropkit: note: {problem}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cropkit.evaluate.report import EvaluateOptions, report_lines, run_evaluate

    _register(args)
    opts = EvaluateOptions(root=args.root, proposer=args.proposer, holdout=args.holdout, window=args.window,
                           device=args.device, progress=not args.no_progress, out_dir=args.out,
                           learning_curve=not args.no_learning_curve, steps=args.steps)
    report, out = run_evaluate(opts, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    _warn_if_untrained(report["feature_model"])
    print("\n".join(report_lines(report, out)))
    return 0


def _cmd_benchmark_taste(args: argparse.Namespace) -> int:
    from cropkit.bench import taste

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    _register(args)
    if args.sanity_check == bool(args.photos or args.subjects) or bool(args.photos) != bool(args.subjects):
        raise CropkitError("benchmark-taste: give --photos DIR and --subjects FILE (make taste-bench uses "
                           "../shared/benchmarks/real_photos), or --sanity-check alone")
    out = Path(args.out or ("docs/taste_sanity_check.md" if args.sanity_check else "docs/taste_benchmark.md"))
    taste.check_report_targets(out, out.with_suffix(".json"))
    if args.sanity_check:
        runs, meta = taste.run_sanity_check(Path(args.root or "data/benchmark"), n_train=args.train,
                                            n_test=args.test, arch=args.arch, weights=args.weights,
                                            steps=args.steps, log=log)
        markdown, report = taste.sanity_markdown(runs, meta), {"meta": meta, "tastes": {r.taste: r.curve for r in runs}}
    else:
        extra = ["--arch-config", args.arch_config] if args.arch_config else []
        root = Path(args.root or "data/benchmark-real")
        report = taste.run_real_benchmark(Path(args.photos), Path(args.subjects), root, arch=args.arch,
                                          weights=args.weights, steps=args.steps, extra=extra, log=log,
                                          subject_model=args.subject_model)
        markdown = taste.real_markdown(report)
    taste.write_reports(markdown, report, out, out.with_suffix(".json"))
    print(markdown)
    print(f"report: {out} and {out.with_suffix('.json')}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from cropkit.bench.extract import format_extract_report, run_extract_bench
    from cropkit.bench.learning import check_report_target, format_report, run_bench, write_report

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    check_report_target(Path(args.out))
    if args.subject_model != "none":  # refused before the long set-up, not after it
        from cropkit.features.subject import INSTALL_HINT, available, model_file

        model_file(args.subject_model)
        if not available():
            raise CropkitError(f"--subject-model needs onnxruntime and onnx: {INSTALL_HINT}")
    report: dict = {}
    if args.only == "engines":
        from cropkit.bench.extract import format_engine_report, run_engine_bench

        report["engines"] = run_engine_bench(Path(args.root) / "engines", min(args.camera_images, 32),
                                             device=args.device, log=log)
        write_report(report, Path(args.out))
        print(format_engine_report(report["engines"]))
        print(f"report: {args.out}")
        return 0
    if args.only == "store":
        from cropkit.bench.store import format_store_report, run_store_bench

        report["store"] = run_store_bench(Path(args.root) / "store", args.store_entries, log=log)
        write_report(report, Path(args.out))
        print(format_store_report(report["store"]))
        print(f"report: {args.out}")
        return 0
    if args.only != "learning":
        report["extract"] = run_extract_bench(Path(args.root) / "extract", args.camera_images, device=args.device,
                                              log=log, subject_model=args.subject_model)
    if args.only != "extract":
        report["learning"] = run_bench(Path(args.root) / "learning", args.decisions, args.new_images, log=log,
                                       subject_model=args.subject_model)
    write_report(report, Path(args.out))
    if "extract" in report:
        print(format_extract_report(report["extract"]))
    if "learning" in report:
        print(format_report(report["learning"]))
    print(f"report: {args.out}")
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from cropkit.notebooks import notebook_parameters, run_notebooks

    params = notebook_parameters(args.parameter)  # typed data only; relative paths follow the caller's folder
    result = run_notebooks(args.root, params, demo=args.demo, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    for path in result.executed:
        print(f"executed: {path}")
    for path in result.figures:
        print(f"figure:   {path}")
    return 0


def _cmd_clean_sidecars(args: argparse.Namespace) -> int:
    from cropkit.extract.sidecars import clean_sidecars, recording_roots
    from cropkit.layout import Layout

    root = args.root
    if root is None and args.dir and Path(args.dir).is_dir():  # the root that recorded them, wherever run from
        roots = recording_roots(Path(args.dir))
        if len(roots) > 1:
            raise CropkitError(f"clean-sidecars: {len(roots)} roots recorded sidecars under {args.dir}: "
                               f"{', '.join(map(str, roots))}; pass --root one of them")
        if roots:
            root = roots[0]
            print(f"root: {root} (its record lists the sidecars under {args.dir})")
    layout = Layout.from_args(root or ".")
    folder = Path(args.dir) if args.dir else layout.images
    if not folder.is_dir():
        raise CropkitError(f"clean-sidecars: {folder} is not a folder")
    for line in clean_sidecars(folder, layout.ai_data, dry_run=args.dry_run).lines():
        print(line)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from cropkit.decisions import brief
    from cropkit.layout import Layout
    from cropkit.remembered import SETTINGS
    from cropkit.sources.exports import MIN_CONFIDENCE
    from cropkit.sources.run import run_import

    path_map = None
    if getattr(args, "map", None):
        if "=" not in args.map:
            raise CropkitError(f"--map {brief(args.map)}: write OLD=NEW (the start of the catalog's paths, and its "
                               "replacement)")
        path_map = tuple(args.map.split("=", 1))
    sources = {"xmp": [], "catalog": [getattr(args, "catalog", "")],
               "exports": [getattr(args, "originals", ""), getattr(args, "exports", "")]}[args.kind]
    confidence = getattr(args, "min_confidence", None)
    layout = Layout.from_args(args.root, args.images)
    remembered = args.images is None and layout.images != layout.root / "data" / "training_data"
    print(f"library {layout.images}" + (f" (remembered in {layout.ai_data / SETTINGS}; --images to choose another)"
                                        if remembered else "") + f", root {layout.root}")
    summaries = run_import(args.kind, layout, [Path(p) for p in sources], args.dry_run, path_map,
                           MIN_CONFIDENCE if confidence is None else confidence)
    shown = [s for s in summaries if s.imported or s.known or s.skipped] or summaries[:1]
    for summary in shown:
        for line in summary.lines():
            print(line)
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    import time

    from tqdm.auto import tqdm

    from cropkit.features.cache import ProcessedCache
    from cropkit.features.encoder_id import concrete_encoder, encoder_id
    from cropkit.features.packed import pack
    from cropkit.features.store import FeatureStore
    from cropkit.layout import Layout
    from cropkit.remembered import resolve_encoder

    layout = Layout.from_args(args.root)
    arch, weights = concrete_encoder(*resolve_encoder(layout.ai_data, None, None))
    mid = encoder_id(arch, weights)
    cache = ProcessedCache(layout.processed_files, mid)
    entries = [(e.hash, e.path) for e in cache.entries.values() if e.ok]
    if not entries:
        raise CropkitError(f"nothing to pack: no extracted images of {mid} under {layout.root}; run cropkit extract")
    store = FeatureStore(layout.embeddings, mid)
    started = time.perf_counter()
    with tqdm(total=len(entries), unit="img", desc="pack") as bar:
        packed, missing = pack(store.folder, entries, progress=bar)
    print(f"packed:  {packed} images of {mid} in {time.perf_counter() - started:.1f} s into {store.folder / 'packed'}")
    if missing:
        print(f"missing: {missing} feature files (unreadable or absent): run cropkit extract, then pack again")
    return 0


def _cmd_sample_library(args: argparse.Namespace) -> int:
    from cropkit.demo.samples import build_sample_library

    photos, missing = build_sample_library(Path(args.dir))
    for note in missing:
        print(f"not found: {note}", file=sys.stderr)
    print(f"sample library: {len(photos)} photos in {Path(args.dir).resolve()}")
    return 0 if photos else 1


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8 is printed escaped, never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except CropkitError as exc:
        print(f"cropkit: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a read-only data/ai_data: say where, keep what is done
        print(f"cropkit: error: {explain_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cropkit: interrupted; everything finished so far is saved, rerun to continue", file=sys.stderr)
        return 130
