"""Crops a photographer already made elsewhere (Lightroom and Camera Raw XMP, darktable XMP, the Lightroom Classic
catalog, exported crops beside their originals), read without writing beside them and merged into the log."""
