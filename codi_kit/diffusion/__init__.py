"""The diffusion core shared by the diffusion augmenters (codi, madiff, madits): ``augmenter.py``
is CODI's method on one page; beside it the schedule, denoiser, guidance, dynamics models,
generation with stitching, MADiTS's repair and the diagnostics."""
