"""The simulated photographer and the sample library."""
