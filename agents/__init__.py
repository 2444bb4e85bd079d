"""lutfarm's measuring agent (``lutfarm_agent``): runs on the device, times models, emits
framed JSON events.

Imports only the standard library, numpy and the runtime it times, and stays Python 3.8
compatible (checked by ``tests/test_agent.py`` and the import-linter contracts): boards run
old distributions.
The job protocol is documented in ``lutfarm_agent.protocol``.
"""

AGENT_VERSION = "0.1.0"
