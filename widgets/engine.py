"""The engine thread's side of the app: one queue of session actions, run in order.

The screen submits actions (functions of the session) from the UI thread; a thread
worker drains the queue, performing each action and publishing a `Snapshot` after
it. Long runs check a stop flag between stages, so they can be interrupted, and
publish progress at most every `PROGRESS_SECONDS`. The engine also holds the
session's `Recorder`, if one is on: it opens on this thread (hashing a large model
takes a while), and stops when another session is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from stepper.errors import StepperError
from stepper.recording import Recorder
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
        notice: Callable[[str], None] = log.info,
    ) -> None:
        self.session = session
        self.publish = publish
        self.fail = fail
        self.notice = notice  # tells the user something they did not ask for
        self.recorder: Recorder | None = None
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

    @property
    def recording(self) -> Recorder | None:
        """The recorder writing the session's events, if one is."""
        recorder = self.recorder
        return recorder if recorder is not None and recorder.active else None

    def start_recording(self, path: str, overwrite: bool = False) -> str:
        """Record the session into `path` (engine thread); the status to show.

        Raises `RecordingExistsError` when `path` exists and not `overwrite`.
        """
        if self.recording is not None:
            return f"already recording to {self.recording.path}"
        assert self.session is not None
        self.recorder = Recorder.open(path, self.session, overwrite=overwrite)
        return f"recording to {path}"

    def stop_recording(self) -> str:
        """Stop recording (safe from any thread); where it went, or "" if it was off."""
        recorder, self.recorder = self.recording, None
        if recorder is None:
            return ""
        where = recorder.path.resolve()
        try:
            recorder.stop()
        except OSError as error:
            return f"recording stopped; {where} may be incomplete ({error.strerror})"
        n = recorder.events
        return f"recording stopped: {n} event{'s' * (n != 1)} written to {where}"

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
            result = self._switch(result)
        if self.session is None:
            self.fail(error or "no session is open")
            return
        self.publish(self._take(status=result or "", error=error))

    def _switch(self, opened: Opened) -> str:
        """Make an opened session current; a recording of the old one stops."""
        stopped = self.stop_recording()
        if stopped:
            self.notice(f"{stopped} (another session was opened)")
        self.session = opened.session
        return f"opened {title(self.session)}"

    def _take(self, status: str, error: str = "", running: bool = False) -> Snapshot:
        """A snapshot of the session with the scenario's narration for it."""
        assert self.session is not None
        self.serial += 1
        note = narration(self.session)
        snapshot = take(self.session, status, running, note, error, self.serial)
        recorder = self.recording
        if recorder is None:
            return snapshot
        return replace(snapshot, recording=str(recorder.path), recorded=recorder.events)

    def should_stop(self) -> bool:
        """A run's stop check: True once interrupted; publishes progress meanwhile."""
        now = time.monotonic()
        if self.session is not None and now - self._last_progress > PROGRESS_SECONDS:
            self._last_progress = now
            self.publish(self._take(status="running… (Esc stops)", running=True))
        return self.stop.is_set()
