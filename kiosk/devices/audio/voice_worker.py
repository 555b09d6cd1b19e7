"""The voice's own small process: it starts espeak-ng for the kiosk, so the kiosk never does.

Starting a process from the kiosk's event loop stalls the loop for long enough to be seen on the
next scan (measured in ``scripts/bench/speech.py``: a tail of up to 300 ms over 40 scans, the same
with ``/bin/sleep`` in espeak-ng's place). So the kiosk starts this worker once, before its first
customer, and then only writes a line to its stdin per utterance; the worker, at the lowest CPU
priority (SCHED_IDLE, inherited by espeak-ng), starts and stops the synthesizer.

Run as a plain script (``python -I voice_worker.py ESPEAK [ARG...]``), standard library only, so it
starts quickly and small. The command line is espeak-ng's, without the voice. Protocol, one JSON
document a line:

- in  ``{"id": N, "voice": V, "text": T}``: stop what is being said, then say ``T`` with ``-v V``;
- in  ``{"stop": N}``: stop utterance ``N`` if it is still being said;
- out ``{"ready": true}`` once, when it listens;
- out ``{"id": N, "status": S, "error": E}`` once utterance ``N`` has ended (``S`` is espeak-ng's
  exit status, negative for a signal: stopped; -1 when it could not run, or said on stderr that
  the sound failed), ``E`` the end of its stderr.

The worker ends when its stdin closes (the kiosk went away), stopping any utterance first.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading

_PR_SET_PDEATHSIG = 1


def _die_with_the_worker() -> None:
    """In espeak-ng's process before it starts: killed when the worker ends, however it ends (a
    killed worker must not leave a voice talking over the next one)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def lowest_priority() -> None:
    """Only a processor nobody else wants: SCHED_IDLE, or nice 19 where that is refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


class Voice:
    """The one utterance at a time, and the lock that keeps stdout's lines whole."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.current: tuple[int, subprocess.Popen[bytes]] | None = None
        self.lock = threading.Lock()

    def say(self, utterance: int, voice: str, text: str) -> None:
        self.stop(None)
        try:
            child = subprocess.Popen(
                [*self.command, "-v", voice],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_the_worker,
            )
        except (OSError, subprocess.SubprocessError) as exc:  # a synthesizer that cannot run at all
            self._answer(utterance, -1, f"espeak-ng cannot run: {exc}")
            return
        with self.lock:
            self.current = (utterance, child)
        threading.Thread(target=self._finish, args=(utterance, child, text), daemon=True).start()

    def stop(self, utterance: int | None) -> None:
        """Stop ``utterance`` (any, when None) and wait for it to be gone."""
        with self.lock:
            current = self.current
        if current is not None and utterance in (None, current[0]):
            current[1].kill()
            current[1].wait()

    def _finish(self, utterance: int, child: subprocess.Popen[bytes], text: str) -> None:
        """Feed the text, wait for the end, answer; whatever happens, utterance ``utterance`` is
        answered, so the kiosk never waits for it in vain."""
        try:
            _, err = child.communicate(text.encode("utf-8", "replace"))
        except Exception as exc:  # a closed pipe (stopped), or anything else: said in the answer
            child.kill()
            child.wait()
            err = repr(exc).encode()
        with self.lock:
            if self.current is not None and self.current[1] is child:
                self.current = None
        said = err.decode(errors="replace").strip()
        # espeak-ng says what went wrong with the sound (no such device, say) on stderr and still
        # exits 0: a voice nobody hears is a failure too.
        status = child.returncode if child.returncode != 0 or not said else -1
        self._answer(utterance, status, said)

    def _answer(self, utterance: int, status: int, error: str) -> None:
        with self.lock:
            sys.stdout.write(json.dumps({"id": utterance, "status": status, "error": error[-200:]}) + "\n")
            sys.stdout.flush()


def main(command: list[str]) -> int:
    lowest_priority()
    voice = Voice(command)
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if "stop" in request:
            voice.stop(int(request["stop"]))
        else:
            voice.say(int(request["id"]), str(request["voice"]), str(request["text"]))
    voice.stop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
