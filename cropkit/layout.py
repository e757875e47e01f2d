"""Where cropkit reads and writes: the data layout under a root folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cropkit.errors import CropkitError, LayoutError

GENERATED_MARK = ".cropkit-generated"  # in a root that cropkit made for the demo or a benchmark


@dataclass(frozen=True)
class Layout:
    """Paths of one cropkit root; only ``ai_data`` and its children are ever written."""

    root: Path
    images: Path

    @classmethod
    def from_args(cls, root: str | Path = ".", images: str | Path | None = None) -> Layout:
        """``images`` None: the library this root remembers (see cropkit.remembered), else ROOT/data/training_data."""
        from cropkit.remembered import read_remembered

        root_path = Path(root).expanduser().resolve()
        if images is None and (known := read_remembered(root_path / "data" / "ai_data").images):
            images = root_path / known  # remembered relative to the root, or absolute
        images_path = Path(images).expanduser().resolve() if images else root_path / "data" / "training_data"
        return cls(root=root_path, images=images_path)

    @property
    def images_setting(self) -> str | None:
        """How to remember this library: None for ROOT/data/training_data, else relative to the root when inside
        it (so the root can move), else absolute."""
        if self.images == self.root / "data" / "training_data":
            return None
        return self.relative_name(self.images) if self.library_inside_root else str(self.images)

    @property
    def ai_data(self) -> Path:
        return self.root / "data" / "ai_data"

    @property
    def embeddings(self) -> Path:
        return self.ai_data / "embeddings"

    @property
    def cues(self) -> Path:
        """Composition cues, one folder per cue version (see cropkit.features.cues); they do not depend on the
        CLIP encoder."""
        return self.ai_data / "cues"

    @property
    def models(self) -> Path:
        return self.ai_data / "models"

    @property
    def cache(self) -> Path:
        return self.ai_data / "cache"

    @property
    def processed_files(self) -> Path:
        return self.cache / "processed_files.jsonl"

    @property
    def logs(self) -> Path:
        return self.ai_data / "logs"

    def require_images(self) -> None:
        """Fail with a helpful message when the images folder is missing."""
        if not self.images.is_dir():
            raise LayoutError(
                f"images folder not found: {self.images}\n"
                f"Put photos under {self.root / 'data' / 'training_data'}, "
                "or point --images at your library (and --root at the folder that should hold data/ai_data)."
            )

    @property
    def library_inside_root(self) -> bool:
        return self.images == self.root or self.root in self.images.parents

    def relative_name(self, path: Path) -> str:
        """The name recorded in caches and logs, with '/' separators: relative to the root, or, for a library
        outside the root, relative to that library; absolute for a file outside it (never logged)."""
        try:
            return path.relative_to(self.root if self.library_inside_root else self.images).as_posix()
        except ValueError:
            return path.as_posix()

    def image_path(self, name: str) -> Path:
        """The file a recorded name stands for (the inverse of ``relative_name``)."""
        return (self.root if self.library_inside_root else self.images) / name


def claim_generated_root(root: str | Path, purpose: str) -> Path:
    """The folder where cropkit may build a generated library (the demo, a benchmark): a new or empty folder, one
    it generated before, or one under this checkout's data/. Any other folder is refused, so simulated pictures
    and decisions never enter a user's library or logs."""
    from cropkit.fileio import atomic_write_bytes

    root = Path(root).expanduser().resolve()
    mark = root / GENERATED_MARK
    if mark.is_file() and not mark.is_symlink():
        return root
    checkout_data = Path(__file__).resolve().parent.parent / "data"
    in_checkout = checkout_data in root.parents and (checkout_data.parent / "pyproject.toml").is_file()
    if root.exists() and not in_checkout and (not root.is_dir() or any(root.iterdir())):
        raise CropkitError(f"{root} already holds files that cropkit did not generate: the {purpose} builds its "
                           "simulated pictures and decisions only in a new or empty folder (or one it made "
                           "before), never in your library. Choose a new folder.")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(mark, f"cropkit {purpose}: generated pictures and decisions, no user data\n".encode(),
                       replace=False)
    return root
