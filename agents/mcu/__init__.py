"""The harness protocol between a lutfarm agent and TFLite-Micro firmware on a microcontroller.

A microcontroller sits behind a host (a Raspberry Pi, a lab PC) on a USB serial port; the
agent runs on the host and talks to the firmware over that port (``lutfarm_agent.mcu.harness``, with
pyserial). The firmware links TFLite-Micro, a static tensor arena and a microsecond timer
(a cycle counter divided by the clock, or a hardware timer).

Protocol, version 1: ASCII lines ending in ``\\n``; each command gets exactly one reply line,
``OK <COMMAND> …`` or ``ERR <CODE> <message>``. Numbers are decimal unless noted.

=====================================  ============================================================
host -> firmware                       firmware -> host
=====================================  ============================================================
``HELLO``                              ``OK HELLO proto=1 board=<name> runtime=<tflm version>
                                       kernels=<reference|cmsis-nn|…> clock_hz=<n>
                                       max_model=<bytes> max_arena=<bytes>`` (no spaces in values)
``LOAD <nbytes> <crc32 hex>`` then     ``OK LOAD <nbytes>`` once all bytes arrived and the CRC-32
exactly nbytes of raw model bytes      (zlib's) matches; ``ERR CRC …`` / ``ERR SIZE …`` otherwise
``ARENA <bytes>``                      build the interpreter for the loaded model in an arena of
                                       that size: ``OK ARENA <bytes> used=<bytes>``;
                                       ``ERR ARENA <message>`` when it does not fit,
                                       ``ERR OP <op name>`` when the firmware lacks a kernel,
                                       ``ERR NOMODEL`` before a LOAD
``RUN <n>``                            invoke n (1 to ``RUN_MAX`` = 16) times on its own input:
                                       ``OK RUN <n> us=<t1>,<t2>,…`` (microseconds per invoke)
=====================================  ============================================================

Error codes: ``CRC``, ``SIZE``, ``ARENA``, ``OP``, ``NOMODEL``, ``RUN``, ``CMD`` (unknown
command), ``MODEL`` (not a TFLite flatbuffer), ``LOAD`` (LOADF's host file unreadable).

Optional commands of lutfarm's firmware (``firmware/``): ``OPS`` (``OK OPS <op>,<op>,…``: the
resolver's ops), and, on an emulated board whose HELLO says ``hostfs=1``, ``LOADF <nbytes>
<crc32 hex> <host path>``: the firmware reads the model from a file on the emulator's host
(ARM semihosting) instead of the UART, which QEMU moves at some 20 KiB/s; the reply and the
checks are LOAD's (``OK LOADF <nbytes>``). HELLO also gives ``core``, ``timer``, ``timer_hz``
and the firmware's own ``fw_text``/``fw_data``/``fw_bss``/``fw_stack``; ``RUN`` adds
``ticks=`` (the timer's counts) beside ``us=``. ``PROF <first>`` (``first`` 0 invokes once
with the interpreter's profiler on) answers ``OK PROF <ops> <first> <OP>=<ticks>,…``, up to 8
ops from ``first`` per reply: the per-operator profile of ``lutfarm bench --ops``. The agent finds the smallest arena by bisection over ``ARENA`` (the firmware's
``max_arena`` bounds it) and reports it as the block's peak memory; times are the firmware's
own microseconds, so the serial round trip never enters a latency.

``lutfarm_agent.mcu.standin`` is a **stand-in for firmware**, not an MCU: it speaks this protocol over
a pseudo-terminal and runs the ``tflite-micro`` host interpreter behind it, so the agent side
can be tested end to end here. Its latencies are the host's, not a microcontroller's.
"""

PROTOCOL_VERSION = 1
RUN_MAX = 16        # invokes one RUN may ask for (the firmware's reply line holds 16 times)
