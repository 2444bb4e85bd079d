"""Devices and how to reach them: the device record (``record``), the farm inventory, SSH and
the agent transports, deploying and provisioning the agent, the board lock, ``devices check``,
and the TFLite-Micro firmware a microcontroller runs."""
