#!/usr/bin/env python3
"""Build cloud/data/catalog.json: the simulator's instance catalog.

Facts (vCPU, memory, architecture, GPUs, burstable, which us-east-1 AZs offer the
type) come from moto's wheel (`pip install 'moto[server]'`), which ships AWS's
DescribeInstanceTypes / DescribeInstanceTypeOfferings answers:
  moto/ec2/resources/instance_types.json.gz
  moto/ec2/resources/instance_type_offerings/availability-zone/us-east-1.json.gz

On-demand prices are NOT in moto. They are the public AWS EC2 On-Demand price
list for us-east-1, Linux, shared tenancy, as published in 2025, written down
below. Within a non-burstable family AWS prices linearly in vCPU (m5.xlarge is
twice m5.large), so a family is recorded by its price per 2 vCPUs; burstable and
GPU families are not linear and are listed size by size.

Run: python3 cloud/data/build_catalog.py  (rewrites cloud/data/catalog.json)
"""
import datetime
import gzip
import json
import os
import sys

import moto

RES = os.path.join(os.path.dirname(moto.__file__), "ec2", "resources")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")
# The simulator models three AZs of a region; we keep the offering facts of these.
AZ_SUFFIXES = "abc"

# USD per hour for 2 vCPUs (the ".large" size), us-east-1 Linux on-demand.
PER_2_VCPU = {
    # general purpose
    "m4": 0.10, "m5": 0.096, "m5a": 0.086, "m5d": 0.113, "m5n": 0.119,
    "m5zn": 0.1652, "m6i": 0.096, "m6a": 0.0864, "m6id": 0.1187,
    "m6in": 0.13923, "m6g": 0.077, "m6gd": 0.0904, "m7i": 0.1008,
    "m7i-flex": 0.09576, "m7a": 0.11592, "m7g": 0.0816, "m7gd": 0.1068,
    "m8g": 0.08976,
    # compute optimized
    "c4": 0.10, "c5": 0.085, "c5a": 0.077, "c5d": 0.096, "c5n": 0.108,
    "c6i": 0.085, "c6a": 0.0765, "c6id": 0.1008, "c6in": 0.1134,
    "c6g": 0.068, "c6gd": 0.0768, "c6gn": 0.0864, "c7i": 0.08925,
    "c7a": 0.10264, "c7g": 0.0725, "c7gd": 0.0907, "c8g": 0.07976,
    # memory optimized
    "r5": 0.126, "r5a": 0.113, "r5b": 0.149, "r5d": 0.144, "r5n": 0.149,
    "r6i": 0.126, "r6a": 0.1134, "r6id": 0.1512, "r6g": 0.1008,
    "r6gd": 0.1152, "r7i": 0.1323, "r7a": 0.1521, "r7g": 0.1071,
    "r7gd": 0.1361, "r8g": 0.11782, "x2gd": 0.167,
    # storage optimized
    "i3": 0.156, "i4i": 0.172,
}

# Sizes whose price is not linear in vCPU.
EXPLICIT = {
    "c4.8xlarge": 1.591,
    # burstable: priced by size, not by vCPU (t3.nano and t3.large both have 2 vCPUs)
    "t2.nano": 0.0058, "t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464,
    "t2.large": 0.0928, "t2.xlarge": 0.1856, "t2.2xlarge": 0.3712,
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
    "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "t3a.nano": 0.0047, "t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376,
    "t3a.large": 0.0752, "t3a.xlarge": 0.1504, "t3a.2xlarge": 0.3008,
    "t4g.nano": 0.0042, "t4g.micro": 0.0084, "t4g.small": 0.0168, "t4g.medium": 0.0336,
    "t4g.large": 0.0672, "t4g.xlarge": 0.1344, "t4g.2xlarge": 0.2688,
    # GPU
    "g4dn.xlarge": 0.526, "g4dn.2xlarge": 0.752, "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176, "g4dn.12xlarge": 3.912, "g4dn.16xlarge": 4.352,
    "g4dn.metal": 7.824,
    "g4ad.xlarge": 0.37853, "g4ad.2xlarge": 0.54117, "g4ad.4xlarge": 0.867,
    "g4ad.8xlarge": 1.734, "g4ad.16xlarge": 3.468,
    "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.8xlarge": 2.448,
    "g5.12xlarge": 5.672, "g5.16xlarge": 4.096, "g5.24xlarge": 8.144,
    "g5.48xlarge": 16.288,
    "g5g.xlarge": 0.42, "g5g.2xlarge": 0.556, "g5g.4xlarge": 0.828,
    "g5g.8xlarge": 1.372, "g5g.16xlarge": 2.744, "g5g.metal": 2.744,
    "g6.xlarge": 0.8048, "g6.2xlarge": 0.9776, "g6.4xlarge": 1.3232,
    "g6.8xlarge": 2.0144, "g6.12xlarge": 4.6016, "g6.16xlarge": 3.3968,
    "g6.24xlarge": 6.6752, "g6.48xlarge": 13.3504,
    # p3 is absent from moto's DescribeInstanceTypes data; p3dn is present.
    "p3dn.24xlarge": 31.212,
}


def category(family):
    if family.startswith("t"):
        return "burstable"
    if family.startswith(("g", "p")):
        return "accelerated"
    if family.startswith("m"):
        return "general"
    if family.startswith("c"):
        return "compute"
    if family.startswith(("r", "x")):
        return "memory"
    if family.startswith("i"):
        return "storage"
    return "other"


def main():
    types = json.load(gzip.open(os.path.join(RES, "instance_types.json.gz")))
    offerings = json.load(gzip.open(os.path.join(
        RES, "instance_type_offerings", "availability-zone", "us-east-1.json.gz")))
    offered = {}
    for o in offerings:
        loc = o["Location"]
        if loc.startswith("us-east-1") and loc[-1] in AZ_SUFFIXES:
            offered.setdefault(o["InstanceType"], set()).add(loc[-1])

    out = []
    for name in sorted(types):
        t = types[name]
        family = name.split(".")[0]
        vcpu = t["VCpuInfo"]["DefaultVCpus"]
        if name in EXPLICIT:
            price = EXPLICIT[name]
        elif family in PER_2_VCPU:
            price = round(PER_2_VCPU[family] * vcpu / 2, 5)
        else:
            continue
        azs = "".join(sorted(offered.get(name, ())))
        if not azs:
            continue  # not offered in us-east-1a/b/c
        archs = t["ProcessorInfo"]["SupportedArchitectures"]
        arch = "arm64" if "arm64" in archs else "x86_64"
        gpus = sum(g["Count"] for g in t.get("GpuInfo", {}).get("Gpus", []))
        out.append({
            "name": name,
            "family": family,
            "category": category(family),
            "vcpu": vcpu,
            "memory_mib": t["MemoryInfo"]["SizeInMiB"],
            "architecture": arch,
            "gpus": gpus,
            "gpu_memory_mib": t.get("GpuInfo", {}).get("TotalGpuMemoryInMiB", 0),
            "burstable": bool(t.get("BurstablePerformanceSupported", False)),
            "on_demand_usd_per_hour": price,
            "az_suffixes": azs,
        })

    missing = sorted(set(EXPLICIT) - {t["name"] for t in out})
    if missing:
        print("priced but absent or not offered in us-east-1a/b/c:", missing, file=sys.stderr)

    doc = {
        "facts_source": "moto %s wheel: moto/ec2/resources/instance_types.json.gz and "
                        "instance_type_offerings/availability-zone/us-east-1.json.gz "
                        "(AWS DescribeInstanceTypes / DescribeInstanceTypeOfferings)" % moto.__version__,
        "price_source": "AWS EC2 On-Demand pricing, us-east-1, Linux, shared tenancy, as published 2025",
        "price_unit": "USD per instance-hour",
        "price_date": "2025",
        "generated": datetime.date.today().isoformat(),
        "generator": "cloud/data/build_catalog.py",
        "types": out,
    }
    # One type per line keeps diffs of the committed file readable.
    types_json = ",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in out)
    doc["types"] = "@TYPES@"
    text = json.dumps(doc, indent=1).replace('"@TYPES@"', "[\n" + types_json + "\n ]")
    with open(OUT, "w") as f:
        f.write(text + "\n")
    archs = {t["architecture"] for t in out}
    print("wrote %d types (%s), %d with GPUs, to %s"
          % (len(out), ",".join(sorted(archs)), sum(1 for t in out if t["gpus"]), OUT))


if __name__ == "__main__":
    main()
