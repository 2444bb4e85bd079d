import pytest

from lutfarm.profiler.devices.inventory import InventoryError, load_inventory
from lutfarm.profiler.devices.record import UnknownDeviceError, select_devices

GOOD = """
[defaults]
user = "lab"
key_file = "~/.ssh/lab"

[[devices]]
name = "pi-1"
host = "10.0.0.11"
kind = "rpi4"
tags = ["arm", "lab2"]
affinity = [0, 1]

[[devices]]
name = "pi 2 'quoted'"
host = "10.0.0.12"
kind = "rpi4"
tags = ["arm"]
threads = 4

[[devices]]
name = "nuc"
host = "nuc.lab"
port = 2222
user = "root"
kind = "x86"
"""


def write(tmp_path, text):
    p = tmp_path / "farm.toml"
    p.write_text(text)
    return p


def test_a_good_inventory_with_defaults(tmp_path):
    devices = load_inventory(write(tmp_path, GOOD))
    assert [d.name for d in devices] == ["pi-1", "pi 2 'quoted'", "nuc"]
    pi = devices[0]
    assert (pi.user, pi.port, pi.transport, pi.python, pi.affinity) == ("lab", 22, "ssh",
                                                                          "python3", (0, 1))
    assert pi.key_file.endswith("/.ssh/lab") and not pi.key_file.startswith("~")
    assert devices[2].user == "root" and devices[2].port == 2222 and devices[1].threads == 4
    assert [d.line for d in devices] == [6, 13, 20]


def test_a_local_device_needs_no_login_but_an_ssh_one_does(tmp_path):
    """Another interpreter on this machine (an old board's numpy-1 environment) is a device."""
    devices = load_inventory(write(tmp_path, """
[[devices]]
name = "np1"
transport = "local"
kind = "local-np1"
python = "/opt/np1/bin/python"
runtimes = ["tflite"]
"""))
    (d,) = devices
    assert (d.transport, d.python, d.runtimes, d.host, d.user) == (
        "local", "/opt/np1/bin/python", ("tflite",), "", "")
    with pytest.raises(InventoryError, match="device #1 lacks 'host'; line 1: device #1 lacks 'user'"):
        load_inventory(write(tmp_path, '[[devices]]\nname = "pi"\nkind = "rpi4"\n'))
    with pytest.raises(InventoryError, match="python '.venv/np1/bin/python' must be an absolute"):
        load_inventory(write(tmp_path, '[[devices]]\nname = "np1"\ntransport = "local"\n'
                                       'kind = "x"\npython = ".venv/np1/bin/python"\n'))


def test_selection_by_name_kind_and_tag(tmp_path):
    devices = load_inventory(write(tmp_path, GOOD))
    names = lambda spec: [d.name for d in select_devices(devices, spec)]  # noqa: E731
    assert names("kind:rpi4") == ["pi-1", "pi 2 'quoted'"]
    assert names("tag:lab2,nuc") == ["pi-1", "nuc"]
    with pytest.raises(UnknownDeviceError, match="matches no device; kinds: rpi4, x86"):
        select_devices(devices, "kind:jetson")
    with pytest.raises(UnknownDeviceError, match="the inventory has: pi-1"):
        select_devices(devices, "pi-9")
    # this machine is 'local' beside an inventory that does not list it (after its devices)
    assert names("local,nuc") == ["nuc", "local"]
    assert select_devices(devices, "local")[0].transport == "local"


def test_every_problem_is_reported_with_its_line(tmp_path):
    bad = """[[devices]]
name = "a"
host = "h"
kind = "k"
port = 70000
colour = "red"

[[devices]]
name = "a"
host = "h2"
kind = "k"
runtimes = ["onnxruntime", "tensorrt"]
threads = 0

[[devices]]
host = "h3"
"""
    with pytest.raises(InventoryError) as exc:
        load_inventory(write(tmp_path, bad))
    msg = str(exc.value)
    assert "has 10 problem(s)" in msg   # the six below, and user (no default) x3, kind
    for part in ["line 5: port 70000 is outside 1-65535", "line 6: unknown key 'colour'",
                 "line 8: device name 'a' is already used at line 1",
                 "line 12: unknown runtime(s) 'tensorrt'", "line 13: threads must be at least 1",
                 "line 15: device #3 lacks 'name'"]:
        assert part in msg
    assert "\n" not in msg


def test_unreadable_inventories(tmp_path):
    with pytest.raises(InventoryError, match="does not exist"):
        load_inventory(tmp_path / "nope.toml")
    with pytest.raises(InventoryError, match="not valid TOML"):
        load_inventory(write(tmp_path, "[[devices]\nname="))
    with pytest.raises(InventoryError, match="no \\[\\[devices\\]\\] entries"):
        load_inventory(write(tmp_path, "[defaults]\nuser = 'x'\n"))


def test_an_mcu_behind_a_host_gets_its_port_into_every_job(tmp_path):
    devices = load_inventory(write(tmp_path, GOOD + """
[[devices]]
name = "f746-1"
host = "10.0.0.20"
kind = "stm32f746"
runtimes = ["tflm"]
serial = "/dev/ttyACM0"
baud = 921600
arena_limit = 327680
"""))
    mcu = devices[-1]
    assert mcu.runtime_settings() == {"serial": "/dev/ttyACM0", "baud": 921600,
                                      "arena_limit": 327680}
    assert devices[0].runtime_settings() == {}
    with pytest.raises(InventoryError, match="baud must be positive"):
        load_inventory(write(tmp_path, GOOD.replace('threads = 4', 'baud = 0')))


def test_version_pins_on_defaults_and_devices_merge_pin_by_pin(tmp_path):
    from lutfarm.profiler.devices.inventory import load_inventory
    from lutfarm.profiler.devices.provision import venv_packages
    inv = tmp_path / "farm.toml"
    inv.write_text('[defaults]\nuser = "pi"\nkind = "rpi4"\n'
                   'packages = { onnxruntime = "==1.22.0", numpy = "<2" }\n\n'
                   '[[devices]]\nname = "a"\nhost = "h1"\nruntimes = ["onnxruntime", "tflite"]\n'
                   'packages = { tflite-runtime = "==2.14.0" }\n\n'
                   '[[devices]]\nname = "b"\nhost = "h2"\n')
    a, b = load_inventory(inv)
    assert venv_packages(list(a.runtimes), dict(a.packages)) == [
        "numpy<2", "onnxruntime==1.22.0", "tflite-runtime==2.14.0"]
    assert venv_packages(list(b.runtimes), dict(b.packages)) == ["numpy<2", "onnxruntime==1.22.0"]


def test_a_pin_that_is_not_a_string_is_reported_with_its_line(tmp_path):
    from lutfarm.profiler.devices.inventory import InventoryError, load_inventory
    inv = tmp_path / "farm.toml"
    inv.write_text('[[devices]]\nname = "a"\nhost = "h"\nuser = "u"\nkind = "k"\n'
                   'packages = { onnxruntime = 1.22 }\n')
    with pytest.raises(InventoryError, match="line 6: packages maps package names"):
        load_inventory(inv)


def test_platform_tags_follow_the_boards_glibc():
    from lutfarm.profiler.devices.provision import platform_tags
    tags = platform_tags("armv7l", "glibc-2.36")
    assert tags[0] == "manylinux_2_36_armv7l" and "manylinux_2_34_armv7l" in tags
    assert tags[-2:] == ["manylinux2014_armv7l", "linux_armv7l"]
    assert "manylinux_2_35_aarch64" not in platform_tags("aarch64", "glibc-2.31")


def test_a_cooldown_temperature_reaches_the_agent_and_must_be_positive(tmp_path):
    from lutfarm.profiler.devices.inventory import InventoryError, load_inventory
    inv = tmp_path / "farm.toml"
    inv.write_text('[[devices]]\nname = "a"\nhost = "h"\nuser = "u"\nkind = "k"\n'
                   'cooldown_c = 55.5\n')
    [device] = load_inventory(inv)
    assert device.runtime_settings()["cooldown_c"] == 55.5
    inv.write_text(inv.read_text().replace("55.5", "-3"))
    with pytest.raises(InventoryError, match="line 6: cooldown_c must be positive"):
        load_inventory(inv)


def test_a_governor_or_a_fixed_frequency_reaches_the_agent(tmp_path):
    from lutfarm.profiler.devices.inventory import InventoryError, load_inventory
    inv = tmp_path / "farm.toml"
    inv.write_text('[defaults]\ngovernor = "performance"\n[[devices]]\nname = "a"\nhost = "h"\n'
                   'user = "u"\nkind = "k"\nfrequency_khz = 1200000\n')
    [device] = load_inventory(inv)
    assert device.runtime_settings() == {"governor": "performance", "frequency_khz": 1200000}
    inv.write_text(inv.read_text().replace("1200000", "0"))
    with pytest.raises(InventoryError, match="line 8: frequency_khz must be positive"):
        load_inventory(inv)
    inv.write_text(inv.read_text().replace('"performance"', "1"))
    with pytest.raises(InventoryError, match="governor must be a str"):
        load_inventory(inv)
