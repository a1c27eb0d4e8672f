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
from stepper.scenario import Scenario
from stepper.session import Session
from widgets.opening import Opened, narration
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
        scenario: Scenario | None,
        publish: Callable[[Snapshot], None],
        fail: Callable[[str], None],
    ) -> None:
        self.session = session
        self.scenario = scenario
        self.publish = publish
        self.fail = fail
        self.stop = threading.Event()
        self._queue: deque[Action] = deque()
        self._lock = threading.Lock()
        self._draining = False
        self._last_progress = 0.0

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
            self.session, self.scenario = result.session, result.scenario
            result = f"opened {self._title()}"
        if self.session is None:
            self.fail(error or "no session is open")
            return
        self.publish(self._take(status=result or "", error=error))

    def _take(self, **fields: object) -> Snapshot:
        """A snapshot of the session with the scenario's narration for it."""
        assert self.session is not None
        note = narration(self.scenario, self.session.cursor)
        return take(self.session, note=note, **fields)  # type: ignore[arg-type]

    def _title(self) -> str:
        """What was opened, for the status line."""
        assert self.session is not None
        if self.scenario is None or self.scenario.source is None:
            return self.session.model.name
        return f"{self.scenario.title} on {self.session.model.name}"

    def should_stop(self) -> bool:
        """A run's stop check: True once interrupted; publishes progress meanwhile."""
        now = time.monotonic()
        if self.session is not None and now - self._last_progress > PROGRESS_SECONDS:
            self._last_progress = now
            self.publish(self._take(status="running… (Esc stops)", running=True))
        return self.stop.is_set()
