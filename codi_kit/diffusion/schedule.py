"""DDPM with noise prediction (paper Eq. 1-2), cosine schedule, and a few-step DDIM sampler."""
from __future__ import annotations

import math

import torch


class CosineSchedule:
    """K diffusion steps with the cosine alpha-bar schedule (Nichol & Dhariwal 2021)."""

    def __init__(self, steps: int, device: torch.device | str = "cpu"):
        self.steps = steps
        t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
        alpha_bar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        alpha_bar = alpha_bar / alpha_bar[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
        self.alpha_bar = torch.cumprod(1 - betas, 0).float().to(device)  # [K], index k-1 for step k

    def noise(self, x0: torch.Tensor, k: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_k = sqrt(a_k) x_0 + sqrt(1 - a_k) eps (forward process); ``k`` in 1..K, shape [B]."""
        a = self.alpha_bar[k - 1].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def sampling_steps(self, count: int) -> list[int]:
        """``count`` steps from K down to 1, evenly spaced (DDIM's sub-sequence)."""
        count = min(count, self.steps)
        return sorted({max(1, round(self.steps * (i + 1) / count)) for i in range(count)}, reverse=True)

    def ddim_step(self, x: torch.Tensor, epsilon: torch.Tensor, k: int, k_previous: int, eta: float,
                  generator: torch.Generator | None = None, clip: float = 4.0) -> torch.Tensor:
        """One DDIM update from step k to k_previous (0 = data); eta=1 is DDPM-like (Eq. 2 / Eq. 10).

        The implied x_0 is clipped to the normalised data range and the noise recomputed from it:
        near k = K, alpha-bar is ~1e-7 and any error in eps is amplified ~2000-fold in x_0; left
        unclipped it pushed samples off the data (measured: std 2.8 against 0.87)."""
        a = self.alpha_bar[k - 1]
        a_previous = self.alpha_bar[k_previous - 1] if k_previous > 0 else torch.ones((), device=x.device)
        x0 = ((x - (1 - a).sqrt() * epsilon) / a.sqrt()).clamp(-clip, clip)
        epsilon = (x - a.sqrt() * x0) / (1 - a).sqrt()
        sigma = eta * ((1 - a_previous) / (1 - a) * (1 - a / a_previous)).clamp(min=0).sqrt()
        direction = (1 - a_previous - sigma ** 2).clamp(min=0).sqrt() * epsilon
        noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device) if eta > 0 else 0.0
        return a_previous.sqrt() * x0 + direction + sigma * noise
