"""A minimal QMP client (stdlib only) for tools/peer/peer.py."""
import json
import socket
import time


class Qmp:
    """Just enough QMP for query-blockstats: the host's count of what the
    guest really read and wrote, to check the guest's own report."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(timeout)
        self.f = self.sock.makefile("rwb")
        self._reply()                        # greeting
        self.cmd("qmp_capabilities")

    def _reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise OSError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name):
        self.f.write(json.dumps({"execute": name}).encode() + b"\n")
        self.f.flush()
        msg = self._reply()
        if "error" in msg:
            raise OSError(f"QMP {name}: {msg['error']}")
        return msg.get("return")

    def bytes_by_drive(self):
        """{drive id: (read bytes, written bytes)}"""
        out = {}
        for b in self.cmd("query-blockstats"):
            st = b.get("stats", {})
            out[b.get("device") or b.get("qdev")] = (st.get("rd_bytes", 0), st.get("wr_bytes", 0))
        return out

    def close(self):
        self.sock.close()
