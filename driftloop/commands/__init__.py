"""One module per ``driftloop`` sub-command; each only wires arguments to library code."""
