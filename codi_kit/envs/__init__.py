"""What the env plugins share beside the env contract: rollouts, evaluation, probes, state codecs."""
