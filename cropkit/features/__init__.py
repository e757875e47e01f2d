"""What describes an image and where it is kept: the encoder and its id, feature and cue stores, the cache."""
