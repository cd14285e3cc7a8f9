"""codi-kit bench: a grid of runs sharing one stage store, on a local process pool or a Ray cluster."""
