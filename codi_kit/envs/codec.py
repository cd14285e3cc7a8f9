"""What the diffusion model generates: observations as they are, or an environment's compact state.

Joint observations are redundant (in CN every agent sees every other agent's and every landmark's
position relative to itself), so a denoiser spends its capacity keeping copies consistent and the
small per-step motion drowns in it. An environment may offer a ``StateCodec``: a per-agent state
from which the observations are rebuilt exactly, with the features that never change within an
episode (CN: landmark positions) marked ``held``: generation takes them from o_0 and holds them
at every step, as it holds o_0 itself.
"""
from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from codi_kit.errors import CodiKitError


@attrs.frozen
class StateCodec:
    name: str
    encode: Callable[[np.ndarray], np.ndarray]  # observations [..., N, O] -> states [..., N, F]
    decode: Callable[[np.ndarray], np.ndarray]  # states [..., N, F] -> observations [..., N, O]
    held: tuple[int, ...] = ()  # state features constant within an episode

    def check(self, obs: np.ndarray, tolerance: float = 1e-4) -> None:
        """Raise unless decode(encode(obs)) rebuilds ``obs``."""
        error = float(np.abs(self.decode(self.encode(obs)) - obs).max()) if obs.size else 0.0
        if error > tolerance:
            raise ValueError(f"state codec {self.name!r} does not rebuild the observations (max error {error:.3g})")


def identity_codec() -> StateCodec:
    return StateCodec("observations", lambda obs: obs, lambda state: state)


def training_codec(env, diffused: str, obs: np.ndarray) -> StateCodec:
    """The codec for ``augmenter.diffused``: the env's state codec for "state" when it offers one (and
    it rebuilds ``obs``), else the observations themselves."""
    codec = env.state_codec() if diffused == "state" else None
    if codec is None:
        return identity_codec()
    try:
        codec.check(obs)
    except ValueError as error:
        raise CodiKitError(f"env {env.spec.name!r}: {error}; set augmenter.diffused=observations") from None
    return codec


def codec_named(env, name: str) -> StateCodec:
    """The codec a saved model was trained with, rebuilt from the env by its name."""
    if name == "observations":
        return identity_codec()
    codec = env.state_codec()
    if codec is None or codec.name != name:
        raise ValueError(f"env {env.spec.name!r} offers no state codec {name!r}")
    return codec
