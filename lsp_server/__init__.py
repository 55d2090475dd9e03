"""The pilotfish language server and the completion core it serves."""
