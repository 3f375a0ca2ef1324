"""Resource options the guide forbids or says cannot work on this host
(guide: kernel memory cgroup不稳定，禁止使用; blkio-weight参数...; 使用--blkio-weight-device需要磁盘支持CFQ调度策略)."""
from __future__ import annotations

from . import rule

ACTIONS = ("container.create", "container.start", "container.update")


@rule("kernel-memory", actions=ACTIONS,
      reason="the kernel memory cgroup is unstable on every kernel and is forbidden by the guide",
      hint="limit memory with --memory (and --memory-swap) only")
def kernel_memory(spec, facts):
    out = []
    if spec.kernel_memory:
        out.append(f"--kernel-memory {spec.kernel_memory}")
    if spec.kernel_memory_tcp:
        out.append(f"KernelMemoryTCP {spec.kernel_memory_tcp}")
    return out


@rule("blkio-weight", actions=ACTIONS,
      reason="this kernel has no blkio weight support: the container would fail to start "
             "(\"blkio.weight not supported, use weight_device instead\")",
      hint="use --blkio-weight-device DEVICE:WEIGHT on a disk running the bfq (or cfq) scheduler")
def blkio_weight(spec, facts):
    if spec.blkio_weight and not facts.blkio_weight_supported():
        return [f"--blkio-weight {spec.blkio_weight}"]


@rule("blkio-weight-device", actions=ACTIONS,
      reason="--blkio-weight-device only works on a disk whose I/O scheduler is CFQ or BFQ",
      hint="switch the disk's scheduler first: echo bfq > /sys/block/DEV/queue/scheduler")
def blkio_weight_device(spec, facts):
    out = []
    for dev in spec.blkio_weight_device:
        sched = facts.scheduler(dev)
        if sched is None:
            out.append(f"--blkio-weight-device {dev}: not a block device on this host")
            continue
        block, active, available = sched
        if active not in ("cfq", "bfq"):
            want = "bfq" if "bfq" in available else "cfq"
            out.append(f"--blkio-weight-device {dev}: scheduler is {active!r} "
                       f"(run: echo {want} > /sys/block/{block}/queue/scheduler)")
    return out
