"""Models: the pinned bundles pilotfish can pull, and resolving a configured model name."""
