"""What the learner plugins share: networks, torch policies, recurrent encoders, the training loop."""
