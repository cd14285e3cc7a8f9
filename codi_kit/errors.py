"""The one exception type whose message is shown to the user as a single line, without a traceback."""


class CodiKitError(Exception):
    """A problem the user can fix: the message names the file, field or plugin at fault."""


class DatasetError(CodiKitError):
    """A dataset file that cannot be used: names the file and the field."""

    def __init__(self, path, field: str, problem: str):
        self.path, self.field, self.problem = str(path), field, problem
        super().__init__(f"{self.path}: field '{field}': {problem}")


class PluginError(CodiKitError):
    """A plugin that is missing, duplicated or failed: names the plugin."""
