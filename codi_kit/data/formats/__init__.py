"""Dataset formats other tools use: ``codi-kit import FORMAT PATH`` and ``codi-kit export FORMAT``.
An importer is ``read(path, spec) -> Dataset`` (``spec``: the env's sizes, for formats that do not
carry them); an exporter is ``write(dataset, folder, actions) -> path``."""
from codi_kit.data.formats import madiff, offpymarl, og_marl

IMPORTERS = {"offpymarl": offpymarl.read, "madiff": madiff.read, "og-marl": og_marl.read}
EXPORTERS = {"offpymarl": offpymarl.write}
