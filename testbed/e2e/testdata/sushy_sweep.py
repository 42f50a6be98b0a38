"""Sweep BMCs with sushy (OpenStack Ironic's Redfish library), the peer of
Slipway's poller in `make bench-bmc`.

It collects what Slipway's poller collects: the first system's power state,
health, model, serial, BIOS version and NIC MACs, the manager's firmware
version and the firmware inventory. Two sweeps, the same number of BMCs in
flight as Slipway: the first connects (a session per BMC), the second reuses
the connections. Prints "sweep 1 done" and waits for a line on stdin between
them, then one JSON object with wall and CPU seconds.

usage: sushy_sweep.py URLS_FILE WORKERS USER PASSWORD
"""
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import sushy
from sushy import auth


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def connect(url, user, password):
    return sushy.Sushy(url + "/redfish/v1", auth=auth.SessionOrBasicAuth(username=user, password=password))


def collect(root):
    system = root.get_system(root.get_system_collection().members_identities[0])
    manager = root.get_manager(root.get_manager_collection().members_identities[0])
    inventory = root.get_update_service().firmware_inventory
    return {
        "power": system.power_state,
        "health": system.status.health if system.status else None,
        "model": system.json.get("Model"),  # sushy has no field for it
        "serial": system.serial_number,
        "bios": system.bios_version,
        "macs": sorted(system.ethernet_interfaces.summary),
        "bmc": manager.firmware_version,
        "firmware": sorted((m.identity, m.version, m.updateable) for m in inventory.get_members()),
    }


def main():
    urls_file, workers, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(urls_file) as f:
        urls = [line.strip() for line in f if line.strip()]
    out = {"bmcs": len(urls), "workers": workers}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start, c0 = time.monotonic(), cpu()
        roots = list(pool.map(lambda u: connect(u, user, password), urls))
        first = list(pool.map(collect, roots))
        out["sweep1_s"], out["sweep1_cpu_s"] = time.monotonic() - start, cpu() - c0
        # The caller counts each sweep's requests: it says when to go on.
        print("sweep 1 done", flush=True)
        sys.stdin.readline()
        start, c0 = time.monotonic(), cpu()
        second = list(pool.map(collect, roots))
        out["sweep2_s"], out["sweep2_cpu_s"] = time.monotonic() - start, cpu() - c0
    bad = [i for i, r in enumerate(first) if not r["serial"] or len(r["firmware"]) < 3]
    out["incomplete"] = len(bad) + sum(1 for a, b in zip(first, second) if a != b)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
