"""Where cropkit reads and writes: the data layout under a root folder."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cropkit.errors import CropkitError, LayoutError
from cropkit.walk import PRUNED, walk_files

GENERATED_MARK = ".cropkit-generated"  # in a root that cropkit made for the demo or a benchmark


@dataclass(frozen=True)
class Layout:
    """Paths of one cropkit root; only ``ai_data`` and its children are ever written."""

    root: Path
    images: Path
    _folders: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # image_name's cache

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
        return self.images.relative_to(self.root).as_posix() if self.library_inside_root else str(self.images)

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

    @property
    def _base(self) -> Path:
        """The folder names are relative to: the root, or a library outside the root."""
        return self.root if self.library_inside_root else self.images

    def image_name(self, path: str | Path) -> str | None:
        """The one name of an image file, as the library scan names it (relative to the root, or to a library
        outside the root, with '/' separators), or None for a file outside the library.

        The path may be relative to the current folder, hold ``..``, come through a link to the library or through
        any link folder inside it: its real folder is named the way the scan walks to it (real folders first,
        then links in the scan's order). The file itself is never followed (it may be a link)."""
        lexical = Path(os.path.abspath(Path(path).expanduser()))
        folder = self._folder_name(lexical.parent)
        if folder is None or not lexical.name:
            return None
        return (self.images / folder / lexical.name).relative_to(self._base).as_posix()

    def _folder_name(self, folder: Path) -> str | None:
        """A folder's name below the library as the scan walks it ('' for the library), None outside; cached."""
        if folder in self._folders:
            return self._folders[folder]
        try:
            real = folder.resolve()
        except (OSError, RuntimeError):  # a link loop
            real = None
        name = _inside(folder, self.images) if real == folder else None  # no link on the way: named by its path
        if name is None and real is not None:
            with contextlib.suppress(OSError):
                st = real.stat()
                walked = self._walked().get((st.st_dev, st.st_ino))
                name = None if walked is None or walked is PRUNED else _inside(walked, self.images)
        self._folders[folder] = name
        return name

    def _walked(self) -> dict[tuple[int, int], Path]:
        """Every folder the scan walks in the library, by (device, inode), named as it walks it (built once)."""
        key = ("walked",)
        if key not in self._folders:
            walked: dict[tuple[int, int], Path] = {}
            prune = self.ai_data if self.ai_data.is_relative_to(self.images) else None
            for _ in walk_files(self.images, prune=prune, seen=walked):
                pass
            self._folders[key] = walked
        return self._folders[key]

    def relative_name(self, path: Path) -> str:
        """The name recorded in caches and logs (``image_name``); absolute for a file outside the library
        (never logged)."""
        name = self.image_name(path)
        return name if name is not None else Path(path).as_posix()

    def image_path(self, name: str) -> Path:
        """The file a recorded name stands for (the inverse of ``relative_name``)."""
        return (self.root if self.library_inside_root else self.images) / name


def _inside(path: Path, top: Path) -> str | None:
    """``path`` relative to ``top`` with '/' separators ('' for ``top`` itself), None when not below it."""
    try:
        name = path.relative_to(top).as_posix()
    except ValueError:
        return None
    return "" if name == "." else name


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
