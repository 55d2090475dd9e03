"""The pilotfish language server and the completion core it serves."""

__version__ = "0.1.0"
