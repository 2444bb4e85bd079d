"""Agent side of the MCU harness protocol (see lutfarm_agent.mcu), over pyserial.

A board is either real (``serial``: its port on this host) or emulated (``emulator`` =
``"qemu"``, ``qemu_machine``, ``firmware``: lutfarm_agent.mcu.emulator starts QEMU and its UART's
pty is opened here like any port). A board that stops answering (a HardFault, a hang) is
dropped: an emulated one is restarted for the next case, a real one is opened again (reset it
by hand if it stays silent)."""

from __future__ import annotations

import zlib

from lutfarm_agent.mcu import RUN_MAX
from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable, UnsupportedOp
from lutfarm_agent.runtimes.tflm_rt import ARENA_ALIGN, smallest_arena

_BOARDS: dict = {}     # port or firmware -> Board: one open board per agent process
CRC_RETRIES = 2


class BoardError(RuntimeError):
    """The firmware answered ``ERR`` or not at all."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code} {message}".strip())
        self.code = code
        self.detail = message


def _open_port(port: str, baud: int, timeout: float):
    try:
        import serial
    except ImportError:
        raise RuntimeUnavailable("the MCU harness needs pyserial on the host: "
                                 "pip install pyserial") from None
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
    except (serial.SerialException, OSError) as exc:
        raise RuntimeUnavailable(f"cannot open the board's serial port {port}: {exc}") from None


class Board:
    def __init__(self, settings: dict):
        self.settings = settings
        self.timeout = float(settings.get("serial_timeout") or 30.0)
        self.emulator = None
        if settings.get("emulator"):
            from lutfarm_agent.mcu.emulator import Emulated, EmulatorError
            if settings["emulator"] != "qemu":
                raise RuntimeUnavailable(f"unknown MCU emulator {settings['emulator']!r}; "
                                         "lutfarm runs firmware under 'qemu'")
            try:
                self.emulator = Emulated(settings["qemu_machine"], settings["firmware"],
                                         int(settings.get("icount_shift") or 0))
            except EmulatorError as exc:
                raise RuntimeUnavailable(str(exc)) from None
            port = self.emulator.port
        else:
            port = settings["serial"]
        self.name = port
        self.port = _open_port(port, int(settings.get("baud") or 115200), self.timeout)
        self.info: dict = {}
        self.persistent: int | None = None     # of the last ARENA

    def command(self, line: str, payload: bytes = b"") -> list:
        """Send one command (and its payload); the reply's fields after ``OK <COMMAND>``."""
        try:    # a UART moves some 10-100 KB/s: give a payload the time it needs
            self.port.write_timeout = self.timeout + len(payload) / 4096
            self.port.write((line + "\n").encode("ascii") + payload)
            self.port.flush()
            reply = self.port.readline().decode("ascii", "replace").strip()
        except Exception as exc:     # pyserial's write timeout, a vanished pty
            raise BoardError("TIMEOUT", f"the link to the board on {self.name} failed during "
                                        f"{line.split()[0]}: {exc}") from None
        if not reply:
            raise BoardError("TIMEOUT", f"no reply from the board on {self.name} to "
                                        f"{line.split()[0]!r} within {self.timeout:.0f} s")
        fields = reply.split(" ")
        if fields[0] == "ERR":
            raise BoardError(fields[1] if len(fields) > 1 else "?", " ".join(fields[2:]))
        if fields[0] != "OK" or len(fields) < 2 or fields[1] != line.split()[0]:
            raise BoardError("PROTO", f"unexpected reply {reply[:80]!r} to {line!r}")
        return fields[2:]

    def hello(self) -> dict:
        fields = self.command("HELLO")
        info = dict(f.split("=", 1) for f in fields if "=" in f)
        for key, value in list(info.items()):
            if value.isdigit():
                info[key] = int(value)
        if self.emulator is not None:
            info.update(emulated=True, emulator="qemu " + self.emulator.machine,
                        icount_shift=self.emulator.icount_shift,
                        timing_note="QEMU -icount: virtual time counts instructions "
                                    f"(2^{self.emulator.icount_shift} ns each), not a "
                                    "Cortex-M's cycles")
        self.info = info
        return info

    def ops(self) -> list | None:
        """The firmware's ops, or None from a firmware without OPS (the protocol's first five
        commands are all a board must answer)."""
        try:
            return self.command("OPS")[0].split(",")
        except BoardError as exc:
            if exc.code == "CMD":
                return None
            raise

    def load(self, data: bytes) -> None:
        """The model into the board: over the link with LOAD (CRC-checked, sent again on a
        mismatch), or, on an emulator whose firmware reads host files (``hostfs=1``), LOADF."""
        crc = f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
        if self.emulator is not None and self.info.get("hostfs") == 1:
            self.command(f"LOADF {len(data)} {crc} {self.emulator.model_file(data)}")
            return
        line = f"LOAD {len(data)} {crc}"
        for attempt in range(CRC_RETRIES + 1):
            try:
                self.command(line, data)
                return
            except BoardError as exc:      # bytes lost on the link: send them again
                if exc.code != "CRC" or attempt == CRC_RETRIES:
                    raise

    def arena(self, size: int) -> int:
        """Build the interpreter in ``size`` bytes; the bytes it really used."""
        fields = dict(f.split("=", 1) for f in self.command(f"ARENA {size}") if "=" in f)
        # lutfarm's firmware also says how much of it is persistent (it adds up over a network)
        self.persistent = int(fields["persistent"]) if "persistent" in fields else None
        return int(fields["used"]) if "used" in fields else size

    def run(self, n: int) -> float:
        """Seconds of the board's own clock for ``n`` invokes (its ticks where it gives them)."""
        fields = dict(f.split("=", 1) for f in self.command(f"RUN {n}") if "=" in f)
        hz = self.info.get("timer_hz")
        if fields.get("ticks") and hz:
            return sum(int(t) for t in fields["ticks"].split(",")) / float(hz)
        return sum(int(t) for t in fields.get("us", "").split(",") if t) / 1e6

    def profile(self) -> list | None:
        """One invoke timed op by op (PROF): [(op name, seconds)], in execution order; None
        from a firmware without PROF."""
        hz = float(self.info.get("timer_hz") or 1e6)
        ops: list = []
        while True:
            try:
                fields = self.command(f"PROF {len(ops)}")
            except BoardError as exc:
                if exc.code == "CMD" and not ops:
                    return None
                raise
            total = int(fields[0])
            entries = [e.rsplit("=", 1) for e in (fields[2] if len(fields) > 2 else "").split(",")
                       if "=" in e]
            ops += [(tag, int(ticks) / hz) for tag, ticks in entries]
            if len(ops) >= total or not entries:
                return ops

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass
        if self.emulator is not None:
            self.emulator.stop()


def _key(settings: dict) -> str:
    return settings.get("firmware") if settings.get("emulator") else settings["serial"]


def board_for(settings: dict) -> Board:
    key = _key(settings)
    if key not in _BOARDS:
        board = Board(settings)
        try:
            board.hello()
        except BoardError as exc:
            board.close()
            raise RuntimeUnavailable(f"the board on {board.name} does not speak lutfarm's "
                                     f"harness protocol: {exc}") from None
        _BOARDS[key] = board
    return _BOARDS[key]


def drop_board(settings: dict) -> None:
    """Forget a board that stopped answering; an emulated one is stopped (and restarted by
    the next ``board_for``)."""
    board = _BOARDS.pop(_key(settings), None)
    if board is not None:
        board.close()


def board_info(settings: dict) -> dict:
    board = board_for(settings)
    kernels, asked = board.info.get("kernels"), settings.get("provider")
    if asked and kernels and asked != kernels:    # a LUT's key must name the kernels it timed
        raise RuntimeUnavailable(f"the firmware on {board.info.get('board')} has {kernels} "
                                 f"kernels, the job asked for {asked}: set kernels = "
                                 f"\"{kernels}\" for this device in the inventory")
    target = ("emulated " + board.info.get("board", "?") + " under " + board.info["emulator"]
              if board.info.get("emulated") else "mcu on " + settings["serial"])
    return dict(board.info, name="tflm", version=board.info.get("runtime", "unknown"),
                target=target, threads=1, ops=board.ops())


def _silent(settings: dict, exc: BoardError, during: str) -> Exception:
    board = _BOARDS.get(_key(settings))
    dead = board.emulator.why_dead() if board is not None and board.emulator else ""
    if dead:
        exc = BoardError(exc.code, dead)
    drop_board(settings)
    what = ("the emulator was restarted" if settings.get("emulator")
            else "reset the board if it stays silent")
    return RuntimeError(f"the board stopped answering during {during} (a HardFault or a hang: "
                        f"{exc.detail}); {what}")


def load_on_board(path: str, settings: dict) -> Loaded:
    board = board_for(settings)
    with open(path, "rb") as f:
        data = f.read()
    max_model = board.info.get("max_model")
    try:
        board.load(data)
    except BoardError as exc:
        if exc.code == "TIMEOUT":
            raise _silent(settings, exc, "LOAD") from None
        if exc.code == "SIZE":
            raise ValueError(f"the model is {len(data)} bytes; the board "
                             f"{board.info.get('board', '')} holds at most {max_model} bytes "
                             f"of model") from None
        raise ValueError(f"the board refused the model: {exc}") from None
    limit = int(board.info.get("max_arena") or settings.get("arena_limit") or (1 << 20))
    if settings.get("arena_limit"):
        limit = min(limit, int(settings["arena_limit"]))

    refused = [""]         # the firmware's reason for the last arena that did not fit

    def try_arena(size: int) -> int | None:
        """The bytes used in an arena of ``size``, or None when it does not fit."""
        try:
            return board.arena(size)
        except BoardError as exc:
            if exc.code == "ARENA":
                refused[0] = exc.detail
                return None
            if exc.code == "OP":
                raise UnsupportedOp("unsupported op on the board's TFLite-Micro: " +
                                    exc.detail) from None
            if exc.code == "TIMEOUT":
                raise _silent(settings, exc, "ARENA") from None
            raise ValueError(f"the board refused the model: {exc}") from None

    used = try_arena(limit)     # the firmware's own count: where the bisection starts
    if used is None:
        raise ValueError(f"no tensor arena up to {limit} bytes lets the board run this "
                         f"model ({refused[0]})")

    def works(size: int) -> bool:
        return try_arena(size) is not None

    # the arena holds at least what the interpreter used: never bisect below it (TFLite-Micro
    # places its own bookkeeping in the arena unchecked, and a far too small one crashes it)
    if used >= limit:     # a firmware (the stand-in) that reports the whole arena as used
        arena = smallest_arena(works, limit)
    else:
        start = max(ARENA_ALIGN, (used + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN)
        arena = smallest_arena(works, limit, start=start, floor=max(0, used - 1))
    used = board.arena(arena)
    elapsed = [0.0]        # the board's own clock, seconds: the timing loop reads this

    def many(n: int) -> None:
        try:
            while n > 0:          # RUN takes up to 16 invokes per command
                elapsed[0] += board.run(min(n, RUN_MAX))
                n -= RUN_MAX
        except BoardError as exc:
            if exc.code == "TIMEOUT":
                raise _silent(settings, exc, "RUN") from None
            raise

    def run() -> None:
        many(1)
    run.many = many      # the timing loop's batches: one round trip per 16 invokes

    def profile(runs: int) -> dict:
        """The firmware's per-op timer (TFLite-Micro's profiler interface), ``runs`` invokes."""
        try:
            rounds = [board.profile() for _ in range(runs)]
        except BoardError as exc:
            if exc.code == "TIMEOUT":
                raise _silent(settings, exc, "PROF") from None
            raise
        if rounds[0] is None:
            raise RuntimeError("this firmware has no PROF command (lutfarm's firmware has)")
        nodes = [{"node": f"#{i} {tag}", "op": tag,
                  "ms": sum(r[i][1] for r in rounds) / len(rounds) * 1000.0}
                 for i, (tag, _) in enumerate(rounds[0])]
        return {"method": "firmware op timer (TFLite-Micro profiler interface)", "runs": runs,
                "nodes": nodes}

    info = board.info
    details = {"arena_bytes": arena, "arena_used": used, "model_bytes": len(data),
               "arena_persistent": board.persistent,
               "board": info.get("board"), "core": info.get("core"),
               "kernels": info.get("kernels"), "clock_hz": info.get("clock_hz"),
               "timer": info.get("timer"), "timer_hz": info.get("timer_hz"),
               "emulated": bool(info.get("emulated")),
               "firmware": {k: info.get(k) for k in ("fw_text", "fw_data", "fw_bss", "fw_stack")
                            if k in info}}
    if info.get("emulated"):
        details.update(emulator=info.get("emulator"), icount_shift=info.get("icount_shift"))
    return Loaded(run, [{"name": "input0", "shape": [], "dtype": "board"}], details=details,
                  memory={"peak_bytes": arena, "method": "mcu-arena"},
                  clock=lambda: elapsed[0], deterministic=bool(info.get("emulated")),
                  profile=profile)
