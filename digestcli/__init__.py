"""digest: compose, preview, render and send a newsletter digest from the terminal."""

__version__ = "0.1.0"
