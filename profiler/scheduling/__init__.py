"""Running a campaign across the farm: one queue per device kind (``work_queue``), a worker per
device (``device_worker``), the recorder that stores each result as it arrives (and its
journal while a shared store is away), and the campaigns built on it: whole networks
(``networks``) and repeat runs (``repeatability``)."""
