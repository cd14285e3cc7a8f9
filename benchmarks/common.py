"""Shared by the benchmarks: where results go, and the machine they ran on."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from codi_kit.run.atomic import write_json
from codi_kit.run.versions import versions

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def save(name: str, payload: dict) -> Path:
    path = RESULTS / f"{name}.json"
    write_json(path, {"benchmark": name, "machine": machine(), "versions": versions(), **payload})
    print(json.dumps(payload, indent=2, default=str)[:4000])
    return path
