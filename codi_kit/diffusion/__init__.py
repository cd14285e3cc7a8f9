"""The diffusion core shared by the diffusion augmenters (codi, madiff): schedule, denoiser,
guidance, dynamics models, generation with stitching, and diagnostics."""
