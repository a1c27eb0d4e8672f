"""The engine thread's side of the app: one queue of session actions, run in order.

The screen submits actions (functions of the session) from the UI thread; a thread
worker drains the queue, performing each action and publishing a `Snapshot` after
it. Long runs check a stop flag between stages, so they can be interrupted, and
publish progress at most every `PROGRESS_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from stepper.errors import StepperError
from stepper.session import Session
from widgets.opening import Opened, narration, title
from widgets.snapshot import Snapshot, take

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.1

# An action changes the session and may say something (the status line), or
# return a whole new session to switch to (a scenario or model just opened).
Action = Callable[[Session], "str | Opened | None"]


class Engine:
    """Owns the session; performs queued actions one at a time off the UI thread."""

    def __init__(
        self,
        session: Session | None,
        publish: Callable[[Snapshot], None],
        fail: Callable[[str], None],
    ) -> None:
        self.session = session
        self.publish = publish
        self.fail = fail
        self.stop = threading.Event()
        self._queue: deque[Action] = deque()
        self._lock = threading.Lock()
        self._draining = False
        self._last_progress = 0.0
        self.serial = 0  # the serial number of the latest snapshot published

    @property
    def busy(self) -> bool:
        """Whether actions are being performed now."""
        return self._draining

    def submit(self, action: Action) -> bool:
        """Queue `action`; True when the caller must start a drain worker."""
        with self._lock:
            self._queue.append(action)
            if self._draining:
                return False
            self._draining = True
            return True

    def interrupt(self) -> None:
        """Stop a long run at its next stage and drop actions still waiting."""
        with self._lock:
            self._queue.clear()
        self.stop.set()

    def drain(self) -> None:
        """Perform queued actions in order until the queue is empty."""
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                action = self._queue.popleft()
            self.perform(action)

    def perform(self, action: Action) -> None:
        """Perform one action and publish the result with its status or error."""
        self.stop.clear()
        error = ""
        try:
            result = action(self.session)  # type: ignore[arg-type]
        except StepperError as failure:
            log.info("action failed: %s", failure)
            result, error = None, str(failure)
        if isinstance(result, Opened):
            self.session = result.session
            result = f"opened {title(self.session)}"
        if self.session is None:
            self.fail(error or "no session is open")
            return
        self.publish(self._take(status=result or "", error=error))

    def _take(self, status: str, error: str = "", running: bool = False) -> Snapshot:
        """A snapshot of the session with the scenario's narration for it."""
        assert self.session is not None
        self.serial += 1
        note = narration(self.session)
        return take(self.session, status, running, note, error, self.serial)

    def should_stop(self) -> bool:
        """A run's stop check: True once interrupted; publishes progress meanwhile."""
        now = time.monotonic()
        if self.session is not None and now - self._last_progress > PROGRESS_SECONDS:
            self._last_progress = now
            self.publish(self._take(status="running… (Esc stops)", running=True))
        return self.stop.is_set()
