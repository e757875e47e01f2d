"""Errors that carry a message telling the user what to do next."""


class CropkitError(Exception):
    """A failure the user can act on; the CLI prints the message and exits with status 2."""


class WeightsUnavailable(CropkitError):
    """Pretrained encoder weights could not be found or fetched."""


class LayoutError(CropkitError):
    """The root or images folder is missing or unusable."""
