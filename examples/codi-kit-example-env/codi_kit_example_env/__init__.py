"""An example codi-kit plugin distribution."""
