"""The staged run: the pipeline over a run directory, its stage store, settings and their layers."""
