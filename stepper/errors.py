"""The mistakes a user can make, one exception type per kind.

Every message is one line that names the file, the place in it and what would fix it.
The command line and the app print `str(error)` and never a traceback for these.
"""


class StepperError(Exception):
    """A problem with the user's input that stepper explains in one line."""


class ModelFileError(StepperError):
    """A model file or directory that is missing, truncated, corrupt or pickled."""


class UnsupportedModelError(StepperError):
    """A readable model whose architecture or tensor type stepper cannot run."""


class ScenarioError(StepperError):
    """A scenario file with an unknown key, a wrong type or an out-of-range value."""


class SamplingError(StepperError):
    """Sampling settings or logits the sampler cannot work with."""


class RecordingError(StepperError):
    """A recording that cannot be written, read or replayed faithfully."""
