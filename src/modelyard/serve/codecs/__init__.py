"""Wire formats <-> arrays: one module per format, mirrored encode/decode functions."""
