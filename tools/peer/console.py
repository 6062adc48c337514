"""A qemu process on a serial console we type into and read (stdlib only).

tools/vm.py's Machine boots our ESP; the Linux peer boots with -kernel, so
peer.py drives it through this smaller class: start the command line,
keep everything it prints in a log and a buffer, expect a pattern with a
deadline, send a line, kill.
"""
import os
import re
import signal
import subprocess
import threading
import time


class ConsoleError(Exception):
    pass


class Console:
    def __init__(self, name, cmd, log_path):
        self.name = name
        self.buf = ""
        self.pos = 0
        self.cond = threading.Condition()
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.log.write("# " + " ".join(cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                break
            text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
            with self.cond:
                self.buf += text
                self.log.write(text)
                self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def expect(self, pattern, timeout):
        """Wait until `pattern` (a regex, multiline) appears after what was
        already consumed; returns the text up to and including the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    out = self.buf[self.pos:m.end()]
                    self.pos = m.end()
                    return out
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConsoleError(f"{self.name}: no {pattern!r} within {timeout} s; last output:\n"
                                       + self.buf[-800:])
                if self.proc.poll() is not None:
                    raise ConsoleError(f"{self.name}: qemu exited ({self.proc.returncode}) waiting for "
                                       f"{pattern!r}; last output:\n" + self.buf[-800:])
                self.cond.wait(min(left, 1.0))

    def sendline(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.reader.join(timeout=5)
        self.log.close()
