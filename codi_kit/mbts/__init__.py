"""Model-based trajectory stitching (MBTS: Hepburn & Montana 2022), on the joint state."""
