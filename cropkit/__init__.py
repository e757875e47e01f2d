"""cropkit: learn a photographer's crop taste and propose the crops they would make."""

__version__ = "0.1.0"
