"""Where cropkit reads and writes: the data layout under a root folder."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cropkit.errors import CropkitError, LayoutError

GENERATED_MARK = ".cropkit-generated"  # in a root that cropkit made for the demo or a benchmark


@dataclass(frozen=True)
class Layout:
    """Paths of one cropkit root; only ``ai_data`` and its children are ever written."""

    root: Path
    images: Path
    _folders: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # (dev, ino) -> walked path

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

    @property
    def _base(self) -> Path:
        """The folder names are relative to: the root, or a library outside the root."""
        return self.root if self.library_inside_root else self.images

    def image_name(self, path: str | Path) -> str | None:
        """The one name of an image file, as the library scan names it (relative to the root, or to a library
        outside the root, with '/' separators), or None for a file outside the library.

        The path may be relative to the current folder, hold ``..``, or come through a link to the library; a
        file whose real folder lies elsewhere is named through the link folder inside the library that the scan
        walks to it. The file itself is never followed (it may be a link)."""
        lexical = Path(os.path.abspath(Path(path).expanduser()))
        if (name := self._name_in_library(lexical, self.images)) is not None:
            return name
        try:
            real = lexical.parent.resolve() / lexical.name
            real_images = self.images.resolve()
        except (OSError, RuntimeError):  # a folder that is a link loop
            return None
        for candidate, top in ((real, self.images), (real, real_images)):
            if (name := self._name_in_library(candidate, top)) is not None:
                return name
        if not self._folders:
            self._folders.update(_walked_folders(self.images))
        for parent in real.parents:
            with contextlib.suppress(OSError):
                st = parent.stat()
                if (walked := self._folders.get((st.st_dev, st.st_ino))) is not None:
                    return self._name_in_library(walked / real.relative_to(parent), self.images)
        return None

    def _name_in_library(self, path: Path, images: Path) -> str | None:
        """The recorded name of ``path`` when it lies below ``images`` (the library, as written or resolved)."""
        inside = _name_under(path, images)
        return None if inside is None else (self.images / inside).relative_to(self._base).as_posix()

    def relative_name(self, path: Path) -> str:
        """The name recorded in caches and logs (``image_name``); absolute for a file outside the library
        (never logged)."""
        name = self.image_name(path)
        return name if name is not None else Path(path).as_posix()

    def image_path(self, name: str) -> Path:
        """The file a recorded name stands for (the inverse of ``relative_name``)."""
        return (self.root if self.library_inside_root else self.images) / name


def _name_under(path: Path, top: Path) -> str | None:
    try:
        name = path.relative_to(top).as_posix()
    except ValueError:
        return None
    return None if name == "." else name


def _walked_folders(top: Path, limit: int = 1_000_000) -> dict[tuple[int, int], Path]:
    """Each real folder below ``top`` by (device, inode), named as the scan walks it: the real folders first,
    then those that links lead to (each once). Listed without touching access times."""
    from cropkit.fileio import open_folder

    found: dict[tuple[int, int], Path] = {}
    pending, links = [top], []
    while (pending or links) and len(found) < limit:
        folder = pending.pop() if pending else links.pop(0)
        try:
            st = folder.stat()
            key = (st.st_dev, st.st_ino)
            if key in found:
                continue
            found[key] = folder
            fd = open_folder(folder)
        except OSError:
            continue
        try:
            with os.scandir(fd) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(folder / entry.name)
                        elif entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                            links.append(folder / entry.name)
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


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
