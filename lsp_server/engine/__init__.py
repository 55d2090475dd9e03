"""The completion core: named stages from cursor to suggestion, shared with training."""
