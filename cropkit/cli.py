"""The ``cropkit`` command: a thin layer over functions that notebooks and tests call directly.

Heavy modules (torch, open_clip) are imported inside the commands, so ``--help`` is instant and
decode worker processes, which re-import this module, stay light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cropkit import __version__
from cropkit.errors import CropkitError

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


def _add_root_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=".", metavar="DIR",
                   help="folder that holds data/ (default: the current directory)")
    p.add_argument("--images", metavar="DIR",
                   help="the photo library to read (default: ROOT/data/training_data)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cropkit", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cropkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser("extract", help="compute CLIP features and perceptual hashes for a library (read-only)",
                        description=EXTRACT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_root_args(ex)
    ex.add_argument("--model", default="ViT-B-32", help="open_clip architecture (default: ViT-B-32)")
    ex.add_argument("--pretrained", default="openai",
                    help="open_clip weights tag (e.g. openai, laion2b_s34b_b79k), a local checkpoint file "
                         "(.safetensors/.bin/.pt), or 'none' for an UNTRAINED random encoder (default: openai)")
    ex.add_argument("--model-config", metavar="JSON",
                    help="register extra open_clip architectures from a JSON file or folder of them")
    ex.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                    help="auto picks cuda, then mps, then cpu (default: auto)")
    ex.add_argument("--batch-size", type=_positive, default=32, help="images per encoder batch (default: 32)")
    ex.add_argument("--workers", type=int, default=-1,
                    help="decode worker processes; 0 decodes in the main process (default: cores - 1)")
    ex.add_argument("--max-images", type=_positive, metavar="N",
                    help="process at most N new images this run (cached ones do not count); rerun to continue")
    ex.add_argument("--force", action="store_true", help="recompute every image, ignoring the cache")
    ex.add_argument("--retry-failed", action="store_true",
                    help="try again files that failed before and have not changed since")
    ex.add_argument("--sidecars", action="store_true",
                    help="also write <image>.embedding.npy and <image>.phash beside each image (new files only)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.set_defaults(func=_cmd_extract)

    cl = sub.add_parser("clean-sidecars", help="delete the sidecar files cropkit can write, and nothing else",
                        description="Delete exactly the sidecar files (*.embedding.npy, *.phash, *.saliency.npy, "
                                    "*.hands.json, and temp files a killed writer left) below DIR, listing each. "
                                    "Links and every other file are left alone.")
    cl.add_argument("dir", nargs="?", metavar="DIR", help="folder to clean (default: ROOT/data/training_data)")
    cl.add_argument("--root", default=".", metavar="DIR", help="folder that holds data/ (default: .)")
    cl.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    cl.set_defaults(func=_cmd_clean_sidecars)

    sl = sub.add_parser("sample-library", help="copy the sample photos shipped inside installed wheels into DIR",
                        description="Build the demo library from real photographs that ship inside the "
                                    "scikit-image, scikit-learn and matplotlib wheels (no network). "
                                    "Existing files are never replaced.")
    sl.add_argument("dir", nargs="?", default="data/sample_library", metavar="DIR",
                    help="where to put the photos (default: data/sample_library)")
    sl.set_defaults(func=_cmd_sample_library)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _cmd_extract(args: argparse.Namespace) -> int:
    from cropkit.encoder import register_model_configs
    from cropkit.extract import ExtractOptions, run_extract

    if args.model_config:
        register_model_configs(args.model_config)
    opts = ExtractOptions(
        root=args.root, images=args.images, model=args.model, pretrained=args.pretrained, device=args.device,
        batch_size=args.batch_size, workers=args.workers, max_images=args.max_images, force=args.force,
        retry_failed=args.retry_failed, sidecars=args.sidecars, progress=not args.no_progress,
    )
    summary = run_extract(opts, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print("\n".join(summary.lines()))
    return 0


def _cmd_clean_sidecars(args: argparse.Namespace) -> int:
    from cropkit.layout import Layout
    from cropkit.sidecars import clean_sidecars

    folder = Path(args.dir) if args.dir else Layout.from_args(args.root).images
    if not folder.is_dir():
        raise CropkitError(f"clean-sidecars: {folder} is not a folder")
    removed = clean_sidecars(folder, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{verb} {len(removed)} sidecar files under {folder}")
    return 0


def _cmd_sample_library(args: argparse.Namespace) -> int:
    from cropkit.sample_library import build_sample_library

    photos, missing = build_sample_library(Path(args.dir))
    for note in missing:
        print(f"not found: {note}", file=sys.stderr)
    print(f"sample library: {len(photos)} photos in {Path(args.dir).resolve()}")
    return 0 if photos else 1


def main(argv: list[str] | None = None) -> int:
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
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"cropkit: error: cannot write{where}: {exc.strerror or exc}. Everything finished before this is "
              "saved; free some space or make ROOT/data/ai_data writable, then run the command again.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cropkit: interrupted; everything finished so far is saved, rerun to continue", file=sys.stderr)
        return 130
