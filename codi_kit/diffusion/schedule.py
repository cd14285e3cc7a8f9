"""The DDPM forward process (paper Eq. 1-2) with a cosine schedule, its three parametrisations of the
denoiser's output (noise, clean sample, velocity; the default is velocity, the CPU path's is the sample),
and a few-step DDIM sampler."""
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

    def target(self, prediction: str, x0: torch.Tensor, k: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the denoiser learns to output: the noise, the clean sample, or v = sqrt(a) eps - sqrt(1-a) x_0."""
        if prediction == "noise":
            return noise
        if prediction == "sample":
            return x0
        a = self.alpha_bar[k - 1].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def sample_from(self, prediction: str, x: torch.Tensor, k: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The clean x_0 implied by the denoiser's output at per-sample steps ``k`` [B]."""
        if prediction == "sample":
            return output
        a = self.alpha_bar[k - 1].view(-1, *([1] * (x.dim() - 1)))
        if prediction == "noise":
            return (x - (1 - a).sqrt() * output) / a.sqrt()
        return a.sqrt() * x - (1 - a).sqrt() * output

    def noise_from(self, prediction: str, x: torch.Tensor, k: int, output: torch.Tensor) -> torch.Tensor:
        """The noise implied by the denoiser's output at step ``k`` (linear in the output, so guidance
        composes outputs of any kind the same way)."""
        a = self.alpha_bar[k - 1]
        if prediction == "noise":
            return output
        if prediction == "sample":
            return (x - a.sqrt() * output) / (1 - a).sqrt()
        return (1 - a).sqrt() * x + a.sqrt() * output

    def clean_estimate(self, x: torch.Tensor, k: int, epsilon: torch.Tensor) -> torch.Tensor:
        """x_0 implied by x_k and its noise: (x_k - sqrt(1 - a_k) eps) / sqrt(a_k)."""
        a = self.alpha_bar[k - 1]
        return (x - (1 - a).sqrt() * epsilon) / a.sqrt()

    def sampling_steps(self, count: int, spacing: str = "uniform") -> list[int]:
        """``count`` steps from K down to 1 (DDIM's sub-sequence), evenly spaced or quadratically
        (dense near the data, DDIM's "quad" skip): with uniform spacing the last jump is from k = K/count
        to 0, whose noise is larger than one step of motion, so the final denoised segment is the
        blurred mean of the motions that fit it."""
        count = min(count, self.steps)
        power = 2 if spacing == "quadratic" else 1
        return sorted({max(1, round(self.steps * ((i + 1) / count) ** power)) for i in range(count)}, reverse=True)

    def ddim_step(self, x: torch.Tensor, epsilon: torch.Tensor, k: int, k_previous: int, eta: float,
                  generator: torch.Generator | None = None, clip: float = 4.0) -> torch.Tensor:
        """One DDIM update from step k to k_previous (0 = data); eta=1 is DDPM-like (Eq. 2 / Eq. 10).

        The implied x_0 is clipped to the normalised data range and the noise recomputed from it:
        near k = K, alpha-bar is ~1e-7 and any error in eps is amplified ~2000-fold in x_0; left
        unclipped it pushed samples off the data (measured: std 2.8 against 0.87)."""
        a = self.alpha_bar[k - 1]
        a_previous = self.alpha_bar[k_previous - 1] if k_previous > 0 else torch.ones((), device=x.device)
        x0 = self.clean_estimate(x, k, epsilon).clamp(-clip, clip)
        epsilon = (x - a.sqrt() * x0) / (1 - a).sqrt()
        sigma = eta * ((1 - a_previous) / (1 - a) * (1 - a / a_previous)).clamp(min=0).sqrt()
        direction = (1 - a_previous - sigma ** 2).clamp(min=0).sqrt() * epsilon
        noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device) if eta > 0 else 0.0
        return a_previous.sqrt() * x0 + direction + sigma * noise
