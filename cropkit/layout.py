"""Where cropkit reads and writes: the data layout under a root folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cropkit.errors import LayoutError


@dataclass(frozen=True)
class Layout:
    """Paths of one cropkit root; only ``ai_data`` and its children are ever written."""

    root: Path
    images: Path

    @classmethod
    def from_args(cls, root: str | Path = ".", images: str | Path | None = None) -> Layout:
        root_path = Path(root).expanduser().resolve()
        images_path = Path(images).expanduser().resolve() if images else root_path / "data" / "training_data"
        return cls(root=root_path, images=images_path)

    @property
    def ai_data(self) -> Path:
        return self.root / "data" / "ai_data"

    @property
    def embeddings(self) -> Path:
        return self.ai_data / "embeddings"

    @property
    def cues(self) -> Path:
        """Composition cues (saliency and edges), which do not depend on the CLIP model."""
        return self.ai_data / "cues" / "v1"

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

    def relative_name(self, path: Path) -> str:
        """The name recorded in caches and logs: relative to the root with '/' separators, else absolute."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()
