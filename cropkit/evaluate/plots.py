"""Figures shared by the CLI, the notebooks and the tests: each function draws one figure, saves it as a PNG
and returns it."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no global state, any backend, notebooks show the returned figure

from cropkit.errors import CropkitError
from cropkit.fileio import atomic_write_bytes
from cropkit.layout import Layout

METRIC_LABELS = {"mean_iou": "mean IoU", "acceptance_rate": "acceptance rate (IoU >= 0.85)",
                 "mean_bde": "mean BDE", "best_of_k_iou": "best-of-3 IoU"}


def report_paths(folder: Path, names: Iterable[str], layout: Layout) -> dict[str, Path]:
    """The files of a new report in ``folder``, checked before any work: none may exist yet (a report never
    overwrites a file) and the folder may not lie in the photo library outside data/ai_data (extract would take
    its figures for photos)."""
    folder = Path(folder).expanduser().absolute()
    real = folder.resolve()
    in_library = real == layout.images or layout.images in real.parents
    if in_library and not (real == layout.ai_data or layout.ai_data in real.parents):
        raise CropkitError(f"{folder} is inside the photo library {layout.images}: cropkit never writes reports "
                           f"there. Choose a folder outside it, or leave the option out (reports then go under "
                           f"{layout.ai_data})")
    paths = {name: folder / name for name in names}
    taken = [p.name for p in paths.values() if p.exists() or p.is_symlink()]
    if taken:
        raise CropkitError(f"{folder} already holds {', '.join(taken)}: a report never overwrites files. "
                           "Choose a new or empty folder.")
    return paths


def write_new(path: Path, data: bytes) -> Path:
    """Write a report file whole (temp file and rename) under a name nobody has taken; never replaces a file."""
    if not atomic_write_bytes(path, data, replace=False):
        raise CropkitError(f"{path} appeared while the report was being written: a report never overwrites "
                           "files. Choose a new or empty folder.")
    return path


def _save(fig, path: Path) -> Path:
    """Write the PNG whole or not at all, as a new file."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    return write_new(path, buf.getvalue())


def iou_by_method(report: dict[str, dict], path: Path):
    """Distribution of top-1 IoU per method (proposer first), with the acceptance threshold."""
    names = list(report)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    ax.boxplot([report[n]["ious"] or [0.0] for n in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.axhline(0.85, color="green", linestyle=":", label="accepted (IoU >= 0.85)")
    ax.set_ylabel("IoU with the photographer's crop")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title("Held-out images: top-1 suggestion vs final crop")
    _save(fig, path)
    return fig


def acceptance_over_time(series: dict[str, list[tuple[float, float]]], retrains: list[float], path: Path):
    """Rolling acceptance rate of logged suggestions, one line per model version, retrain points marked."""
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    for name, points in series.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    for i, t in enumerate(retrains):
        ax.axvline(t, color="grey", linestyle="--", linewidth=0.8, label="retrained" if i == 0 else None)
    ax.set_xlabel("decision number")
    ax.set_ylabel("acceptance rate (rolling)")
    ax.set_ylim(0, 1)
    if series or retrains:
        ax.legend(loc="best")
    ax.set_title("Suggestions accepted over time")
    _save(fig, path)
    return fig


def decisions_by_model(counts: dict[str, dict[str, int]], path: Path):
    """Approved / modified / rejected per model version, stacked."""
    names = list(counts)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    bottom = [0] * len(names)
    for kind, colour in (("approved", "tab:green"), ("modified", "tab:orange"), ("rejected", "tab:red")):
        values = [counts[n].get(kind, 0) for n in names]
        ax.bar(names, values, bottom=bottom, label=kind, color=colour)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("decisions")
    ax.legend()
    ax.set_title("Decisions by model version")
    _save(fig, path)
    return fig


def learning_curves(curves: dict[int, dict[str, dict]], path: Path, metric: str = "mean_iou"):
    """Quality against number of decisions, one line per method."""
    ns = sorted(curves)
    methods = list(curves[ns[0]]) if ns else []
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    for m in methods:
        ax.plot(ns, [curves[n][m][metric] for n in ns], marker="o", label=m)
    ax.set_xscale("log")
    ax.set_xlabel("decisions learned from")
    label = METRIC_LABELS.get(metric, metric)
    ax.set_ylabel(label)
    ax.legend()
    ax.set_title(f"Learning curve on this library: {label}")
    _save(fig, path)
    return fig


def example_grid(items: list[dict], path: Path, columns: int = 4):
    """Images with the suggestion (dotted green) and the photographer's crop (solid orange), worst IoU first.

    Each item: ``{"path", "width", "height", "suggested": box, "finals": [box, ...], "iou"}``; images are only read.
    """
    from matplotlib.patches import Rectangle

    from cropkit.extract.decode import decode_oriented_rgb
    from cropkit.fileio import read_source_bytes

    items = sorted(items, key=lambda it: it["iou"])
    rows = max(1, -(-len(items) // columns))
    fig = Figure(figsize=(3.2 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, it in zip(axes.ravel(), items):
        data, _ = read_source_bytes(Path(it["path"]))
        img, _ = decode_oriented_rgb(data, 320)
        img.thumbnail((480, 480))
        sx, sy = img.width / it["width"], img.height / it["height"]
        ax.imshow(img)
        for box, style in [(it["suggested"], {"edgecolor": "lime", "linestyle": ":", "linewidth": 2.2})] + [
                (b, {"edgecolor": "orange", "linestyle": "-", "linewidth": 1.6}) for b in it["finals"]]:
            ax.add_patch(Rectangle((box[0] * sx, box[1] * sy), (box[2] - box[0]) * sx, (box[3] - box[1]) * sy,
                                   fill=False, **style))
        ax.set_title(f"IoU {it['iou']:.2f}  {Path(it['path']).name}", fontsize=8)
    fig.suptitle("Suggestion (dotted green) and final crop (orange), worst first", fontsize=10)
    _save(fig, path)
    return fig
