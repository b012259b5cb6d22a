"""Power rails from the INA3221 monitors through sysfs -- no tegrastats process needed.

JetPack 5 and later use the mainline `ina3221` hwmon driver (Jetson Linux developer guide, "Jetson
Orin ... power monitor"): under /sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon<N>/ each channel
N has `inN_label` (the rail's name, e.g. VDD_IN), `inN_input` (bus voltage, mV) and `currN_input`
(current, mA). Power = voltage x current. Thor's monitors are not INA3221; there tegrastats is the
source (mclrt.runtime.jetson.tegrastats). Read on fixture trees here; never run on a device by this project.
"""

from __future__ import annotations

from pathlib import Path

INA3221_DRIVER = Path("sys/bus/i2c/drivers/ina3221")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_rails_mw(root: Path = Path("/")) -> dict[str, int]:
    """Rail name -> instant power in mW for every labelled INA3221 channel below `root`; {} where there are none."""
    rails: dict[str, int] = {}
    for hwmon in sorted((Path(root) / INA3221_DRIVER).glob("*/hwmon/hwmon*")):
        for label_file in sorted(hwmon.glob("in*_label")):
            channel = label_file.name[2:-len("_label")]
            label = label_file.read_text().strip()
            millivolts = _read_int(hwmon / f"in{channel}_input")
            milliamps = _read_int(hwmon / f"curr{channel}_input")
            if label and millivolts is not None and milliamps is not None and not label.startswith("NC"):
                rails[label] = millivolts * milliamps // 1000
    return rails
