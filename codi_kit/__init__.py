"""codi-kit: offline multi-agent RL data augmentation with compositional diffusion (CODI)."""
import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("codi_kit")

__all__ = ["__version__", "hookimpl"]
