"""STAND-IN FIRMWARE — NOT A MICROCONTROLLER.

Speaks the MCU harness protocol (lutfarm_agent.mcu) over a pseudo-terminal and runs the
``tflite-micro`` host interpreter behind it, so that the agent's serial side is exercised end
to end where no board exists. Its latencies and arena sizes are the host build's; a real
board's firmware implements the same five commands in C++.

    python -m lutfarm_agent.mcu.standin [--link PATH] [--max-arena BYTES] [--max-model BYTES]

prints the pty's device path (and symlinks it to PATH), then serves until killed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tty
import zlib

BOARD_NAME = "standin-not-an-mcu"


class StandIn:
    def __init__(self, fd: int, max_arena: int, max_model: int):
        self.fd, self.max_arena, self.max_model = fd, max_arena, max_model
        self.buf = b""
        self.model = None
        self.interpreter = None

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _readline(self) -> str:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def _reply(self, text: str) -> None:
        os.write(self.fd, (text + "\n").encode("ascii"))

    def serve(self) -> None:
        while True:
            try:
                line = self._readline()
            except (EOFError, OSError):   # the host closed the port: wait for the next open
                time.sleep(0.05)
                continue
            if line:
                self._reply(self.handle(line))

    def handle(self, line: str) -> str:
        cmd, *args = line.split()
        try:
            if cmd == "HELLO":
                from tflite_micro import __version__
                return (f"OK HELLO proto=1 board={BOARD_NAME} runtime=tflite-micro-{__version__} kernels=reference "
                        f"clock_hz=0 max_model={self.max_model} max_arena={self.max_arena}")
            if cmd == "LOAD":
                n, crc = int(args[0]), int(args[1], 16)
                if n > self.max_model:
                    self._read(n)
                    return f"ERR SIZE model of {n} bytes exceeds {self.max_model}"
                data = self._read(n)
                if zlib.crc32(data) & 0xFFFFFFFF != crc:
                    return "ERR CRC model bytes do not match their CRC-32"
                self.model, self.interpreter = data, None
                return f"OK LOAD {n}"
            if cmd == "ARENA":
                return self._arena(int(args[0]))
            if cmd == "RUN":
                if self.interpreter is None:
                    return "ERR NOMODEL no interpreter: send LOAD and ARENA first"
                times = []
                for _ in range(int(args[0])):
                    t0 = time.perf_counter_ns()
                    self.interpreter.invoke()
                    times.append(max((time.perf_counter_ns() - t0) // 1000, 1))
                return "OK RUN {} us={}".format(args[0], ",".join(map(str, times)))
            return "ERR CMD unknown command " + cmd
        except (IndexError, ValueError) as exc:
            return f"ERR CMD bad arguments to {cmd}: {exc}"

    def _arena(self, size: int) -> str:
        from lutfarm_agent.quiet import QuietStderr
        from lutfarm_agent.runtimes.tflm_rt import _host_interpreter, probe_arena

        if self.model is None:
            return "ERR NOMODEL send LOAD first"
        if size > self.max_arena:
            return f"ERR ARENA {size} bytes exceed this board's {self.max_arena}"
        self.interpreter = None
        failure = probe_arena(self.model, size)     # a real board resets; the host forks
        if failure is not None:
            if failure.unsupported_op:
                return "ERR OP " + failure.message.split(": ", 1)[-1].replace("\n", " ")
            return "ERR ARENA " + failure.message.replace("\n", " ")
        with QuietStderr():
            self.interpreter, _ = _host_interpreter(self.model, size)
        return f"OK ARENA {size} used={size}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lutfarm_agent.mcu.standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--link", help="also make this path a symlink to the pty")
    parser.add_argument("--max-arena", type=int, default=512 * 1024)
    parser.add_argument("--max-model", type=int, default=2 << 20)
    args = parser.parse_args(argv)
    master, slave = os.openpty()
    tty.setraw(slave)                  # no echo, no line editing: the link carries bytes
    path = os.ttyname(slave)
    if args.link:
        if os.path.lexists(args.link):
            os.unlink(args.link)
        os.symlink(path, args.link)
    print(path, flush=True)
    print("STAND-IN firmware (not an MCU) on " + path, file=sys.stderr, flush=True)
    StandIn(master, args.max_arena, args.max_model).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
