"""Device throughput of the diffusion core: training segment samples per second (the paper
profile's U-Net and the quick profile's MLP), and composed guidance in one batched pass against
n+1 sequential passes (paper Eq. 8).

    python benchmarks/gpu.py [--device cuda] [--dataset benchmarks/runs/cn3-imbalanced-quick.npz] [--name gpu]

Each denoiser is built from its profile's settings through ``Architecture.of`` and trained with
the real ``denoising_loss`` on real CN segments for a few seconds after a warm-up. Writes
benchmarks/results/<name>.json with the device name.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.envs.codec import identity_codec  # noqa: E402
from codi_kit.data.dataset import Dataset  # noqa: E402
from codi_kit.diffusion.guidance import agent_conditions, guided_output  # noqa: E402
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser  # noqa: E402
from codi_kit.diffusion.settings import PROFILES, DiffusionSettings  # noqa: E402
from codi_kit.diffusion.trainer import denoising_loss, loss_weights, lowest_step, segment_data, training_conditions  # noqa: E402
from codi_kit.torch_utils import adam  # noqa: E402


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(settings: DiffusionSettings, dataset: Dataset, device):
    """The profile's model over CN observations, and every real segment of the dataset."""
    normaliser = Normaliser.fit(dataset, identity_codec(), device)
    architecture = Architecture.of(settings, dataset.obs.shape[-1], dataset.agents, int(dataset.actions.max()) + 1,
                                   identity_codec(), dataset.obs.shape[-1])
    torch.manual_seed(0)
    model = DiffusionModel(architecture, normaliser, device)
    data = segment_data(dataset, settings.horizon, dataset.segment_index(settings.horizon), None, model)
    return model, data


def training_rate(settings: DiffusionSettings, dataset: Dataset, device, seconds: float) -> dict:
    """Segment samples per second of denoiser updates (forward, backward, Adam step)."""
    model, data = build(settings, dataset, device)
    optimizer = adam(model.denoiser.parameters(), settings.learning_rate)
    generator = torch.Generator().manual_seed(0)
    weights = loss_weights(model, settings.action_weight)

    def update():
        rows = torch.randint(0, data.x.shape[0], (settings.batch_size,), generator=generator).to(device)
        loss = denoising_loss(model, model.denoiser, data.x[rows], training_conditions(data, rows, settings, generator),
                              generator, weights, settings.rounding_weight, lowest_step(settings))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(20):  # warm-up: kernels chosen, allocator filled
        update()
    synchronise(device)
    updates, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(10):
            update()
        updates += 10
        synchronise(device)
    elapsed = time.perf_counter() - started
    return {"denoiser": settings.denoiser, "width": settings.width, "multipliers": list(settings.unet_multipliers),
            "horizon": settings.horizon, "batch_size": settings.batch_size,
            "parameters": sum(p.numel() for p in model.denoiser.parameters()),
            "updates_per_second": updates / elapsed, "segment_samples_per_second": updates * settings.batch_size / elapsed}


def guidance_rate(settings: DiffusionSettings, dataset: Dataset, device, batch: int, repeats: int = 10) -> dict:
    """Seconds per composed prediction (Eq. 8, n+1 conditions): one batched pass against n+1 passes."""
    model, _ = build(settings, dataset, device)
    net, agents, horizon = model.denoiser.eval(), dataset.agents, settings.horizon
    x = torch.randn(batch, horizon, agents, model.architecture.channels, device=device)
    k = torch.full((batch,), 10, device=device)
    conditions = agent_conditions(torch.rand(batch, device=device), agents, weight=1.2, compose=True, use_labels=True)
    zeros = torch.zeros(batch, agents, device=device)
    observed = model.architecture.observation_input
    observation = torch.randn(batch, agents, observed, device=device) if observed else None
    extra = () if observation is None else (observation,)

    def sequential():
        net(x, k, torch.zeros(batch, device=device), torch.zeros(batch, device=device), zeros, zeros, *extra)
        for agent in range(agents):
            mask = torch.zeros(batch, agents, device=device)
            mask[:, agent] = 1
            net(x, k, conditions.return_to_go[agent], torch.ones(batch, device=device), mask, mask, *extra)

    timings = {}
    with torch.no_grad():
        for name, call in (("batched", lambda: guided_output(net, x, k, conditions, observation)), ("sequential", sequential)):
            call()
            synchronise(device)
            started = time.perf_counter()
            for _ in range(repeats):
                call()
            synchronise(device)
            timings[name] = (time.perf_counter() - started) / repeats
    return {"denoiser": settings.denoiser, "batch": batch, "batched_seconds": timings["batched"],
            "sequential_seconds": timings["sequential"], "sequential_over_batched": timings["sequential"] / timings["batched"]}


@click.command()
@click.option("--device", default="cuda", show_default=True)
@click.option("--dataset", "dataset_path", default="benchmarks/runs/cn3-imbalanced-quick.npz", show_default=True)
@click.option("--seconds", default=5.0, show_default=True, help="Timed training per denoiser.")
@click.option("--guidance-batch", default=1024, show_default=True)
@click.option("--name", default="gpu", show_default=True)
def main(device, dataset_path, seconds, guidance_batch, name):
    device = torch.device(device)
    dataset = Dataset.load(dataset_path)
    profiles = {"paper (U-Net)": DiffusionSettings(**PROFILES["paper"]),
                "quick (MLP)": DiffusionSettings(**{**PROFILES["quick"], "diffused": "observations"})}
    training = {label: training_rate(settings, dataset, device, seconds) for label, settings in profiles.items()}
    guidance = {label: guidance_rate(settings, dataset, device, guidance_batch) for label, settings in profiles.items()}
    save(name, {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "dataset": dataset_path, "training": training, "guidance": guidance})


if __name__ == "__main__":
    main()
