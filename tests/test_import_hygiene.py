"""The engine never imports the user interface."""

import subprocess
import sys

CODE = """
import sys
import stepper, stepper.session, stepper.cli, stepper.commands, stepper.trace
import stepper.load
ui = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'widgets'))
print(ui)
sys.exit(1 if ui else 0)
"""


def test_importing_stepper_does_not_import_textual():
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
