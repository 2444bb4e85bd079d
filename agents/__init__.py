"""lutfarm's measuring agent: runs on the device, times models, prints JSON lines.

Imports only the standard library, numpy and the runtime it times, and stays Python 3.8
compatible (checked by ``tests/test_agent_portability.py``): boards run old distributions.
The job protocol is documented in ``lutfarm_agent.protocol``.
"""

AGENT_VERSION = "0.1.0"
