"""Dataset formats other tools use: ``codi-kit import FORMAT PATH`` and ``codi-kit export FORMAT``."""
from codi_kit.formats import offpymarl

IMPORTERS = {"offpymarl": offpymarl.read}
EXPORTERS = {"offpymarl": offpymarl.write}
