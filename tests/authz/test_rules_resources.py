"""kernel-memory, blkio-weight, blkio-weight-device: options the guide forbids or this host cannot honour."""
from __future__ import annotations

import pytest

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc


def test_kernel_memory():
    msg = denied_by(create(hc(KernelMemory=67108864)), "kernel-memory")
    assert "--kernel-memory 67108864" in msg
    assert "KernelMemoryTCP 1024" in denied_by(create(hc(KernelMemoryTCP=1024)), "kernel-memory")
    allowed(create(hc(Memory=67108864, KernelMemory=0)))


def test_kernel_memory_evasions():
    denied_by(create({"Image": "x", "Cmd": ["true"], "KernelMemory": 1}), "kernel-memory")
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"kernelmemory":1e6}}'), "kernel-memory")
    denied_by(decide("POST", "/v1.41/containers/web/update", {"KernelMemory": 67108864}), "kernel-memory")
    denied_by(decide("POST", "/v1.23/containers/web/start", {"KernelMemory": 1}), "kernel-memory")
    allowed(decide("POST", "/v1.41/containers/web/update", {"Memory": 67108864}))
    assert "must be an integer" in denied_by(create(hc(KernelMemory="64m")), "malformed-request")


def test_blkio_weight_depends_on_the_host():
    msg = denied_by(create(hc(BlkioWeight=500), blkio=False), "blkio-weight")
    assert "--blkio-weight 500" in msg
    allowed(create(hc(BlkioWeight=500), blkio=True))
    allowed(create(hc(BlkioWeight=0), blkio=False))
    denied_by(decide("POST", "/containers/x/update", {"BlkioWeight": 300}, blkio=False), "blkio-weight")


def test_blkio_weight_not_asked_needs_no_host_fact():
    class NoBlkio(FakeContext):
        def blkio_weight_supported(self):
            raise AssertionError("asked")

    allowed(create(hc(Memory=1), ctx=NoBlkio()))


SCHED = {
    "/dev/vda": ("vda", "mq-deadline", ["mq-deadline", "kyber", "bfq", "none"]),
    "/dev/sdb": ("sdb", "none", ["none", "mq-deadline"]),
    "/dev/loop0": ("loop0", "bfq", ["mq-deadline", "bfq", "none"]),
    "/dev/sdc1": ("sdc", "cfq", ["noop", "deadline", "cfq"]),
}


def wd(path):
    return hc(BlkioWeightDevice=[{"Path": path, "Weight": 500}])


def test_blkio_weight_device_scheduler():
    msg = denied_by(create(wd("/dev/vda"), schedulers=SCHED), "blkio-weight-device")
    assert "--blkio-weight-device /dev/vda: scheduler is 'mq-deadline' " \
           "(run: echo bfq > /sys/block/vda/queue/scheduler)" in msg
    msg = denied_by(create(wd("/dev/sdb"), schedulers=SCHED), "blkio-weight-device")
    assert "echo cfq > /sys/block/sdb/queue/scheduler" in msg
    allowed(create(wd("/dev/loop0"), schedulers=SCHED))
    allowed(create(wd("/dev/sdc1"), schedulers=SCHED))


def test_blkio_weight_device_not_a_block_device():
    msg = denied_by(create(wd("/dev/nope"), schedulers=SCHED), "blkio-weight-device")
    assert "--blkio-weight-device /dev/nope: not a block device on this host" in msg


def test_blkio_weight_device_update_and_several():
    body = {"BlkioWeightDevice": [{"Path": "/dev/loop0", "Weight": 1}, {"Path": "/dev/vda", "Weight": 1}]}
    msg = denied_by(decide("POST", "/containers/x/update", body, schedulers=SCHED), "blkio-weight-device")
    assert "/dev/vda" in msg and "/dev/loop0" not in msg
    assert create_problems("blkio-weight-device", hc(), schedulers=SCHED) == []
