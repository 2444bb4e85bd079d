"""Agent side of the MCU harness protocol (see lutfarm_agent.mcu), over pyserial."""

from __future__ import annotations

import zlib

from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable, UnsupportedOp
from lutfarm_agent.runtimes.tflm_rt import smallest_arena

_BOARDS: dict = {}     # port -> Board: one open port per agent process


class BoardError(RuntimeError):
    """The firmware answered ``ERR`` or not at all."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code} {message}".strip())
        self.code = code
        self.detail = message


class Board:
    def __init__(self, port: str, baud: int = 115200, timeout: float = 30.0):
        try:
            import serial
        except ImportError:
            raise RuntimeUnavailable("the MCU harness needs pyserial on the host: "
                                     "pip install pyserial") from None
        try:
            self.port = serial.serial_for_url(port, baudrate=baud, timeout=timeout,
                                              write_timeout=timeout)
        except (serial.SerialException, OSError) as exc:
            raise RuntimeUnavailable(f"cannot open the board's serial port {port}: {exc}") from None
        self.name = port
        self.info: dict = {}

    def command(self, line: str, payload: bytes = b"") -> list:
        """Send one command (and its payload); the reply's fields after ``OK <COMMAND>``."""
        self.port.write((line + "\n").encode("ascii") + payload)
        self.port.flush()
        reply = self.port.readline().decode("ascii", "replace").strip()
        if not reply:
            raise BoardError("TIMEOUT", f"no reply from the board on {self.name} to {line.split()[0]!r}")
        fields = reply.split(" ")
        if fields[0] == "ERR":
            raise BoardError(fields[1] if len(fields) > 1 else "?", " ".join(fields[2:]))
        if fields[0] != "OK" or len(fields) < 2 or fields[1] != line.split()[0]:
            raise BoardError("PROTO", f"unexpected reply {reply[:80]!r} to {line!r}")
        return fields[2:]

    def hello(self) -> dict:
        fields = self.command("HELLO")
        info = dict(f.split("=", 1) for f in fields if "=" in f)
        for key in ("clock_hz", "max_model", "max_arena"):
            if key in info:
                info[key] = int(info[key])
        self.info = info
        return info

    def load(self, data: bytes) -> None:
        self.command(f"LOAD {len(data)} {zlib.crc32(data) & 0xFFFFFFFF:08x}", data)

    def arena(self, size: int) -> int:
        """Build the interpreter in ``size`` bytes; the bytes it really used."""
        fields = self.command(f"ARENA {size}")
        used = [f.split("=", 1)[1] for f in fields if f.startswith("used=")]
        return int(used[0]) if used else size

    def run(self, n: int) -> list:
        fields = self.command(f"RUN {n}")
        us = [f.split("=", 1)[1] for f in fields if f.startswith("us=")]
        return [int(t) for t in us[0].split(",")] if us and us[0] else []


def board_for(settings: dict) -> Board:
    port = settings["serial"]
    if port not in _BOARDS:
        board = Board(port, int(settings.get("baud") or 115200),
                      float(settings.get("serial_timeout") or 30.0))
        board.hello()
        _BOARDS[port] = board
    return _BOARDS[port]


def board_info(settings: dict) -> dict:
    board = board_for(settings)
    return dict(board.info, name="tflm", version=board.info.get("runtime", "unknown"),
                target="mcu on " + settings["serial"], threads=1)


def load_on_board(path: str, settings: dict) -> Loaded:
    board = board_for(settings)
    with open(path, "rb") as f:
        data = f.read()
    max_model = board.info.get("max_model")
    if max_model and len(data) > max_model:
        raise ValueError(f"the model is {len(data)} bytes; the board holds at most {max_model}")
    board.load(data)
    limit = int(board.info.get("max_arena") or settings.get("arena_limit") or (1 << 20))

    def works(size: int) -> bool:
        try:
            board.arena(size)
            return True
        except BoardError as exc:
            if exc.code == "OP":
                raise UnsupportedOp("unsupported op on the board's TFLite-Micro: " +
                                    exc.detail) from None
            if exc.code != "ARENA":
                raise
            return False

    try:
        arena = smallest_arena(works, limit)
    except UnsupportedOp:
        raise
    except ValueError as exc:
        raise ValueError(f"{exc} on the board (its max_arena is {limit} bytes)") \
            from None
    used = board.arena(arena)
    elapsed = [0.0]        # the board's own clock, seconds: the timing loop reads this

    def run() -> None:
        elapsed[0] += sum(board.run(1)) / 1e6

    details = {"arena_bytes": arena, "arena_used": used, "board": board.info.get("board"),
               "kernels": board.info.get("kernels"), "clock_hz": board.info.get("clock_hz")}
    return Loaded(run, [{"name": "input0", "shape": [], "dtype": "board"}], details=details,
                  memory={"peak_bytes": arena, "method": "mcu-arena"},
                  clock=lambda: elapsed[0])
