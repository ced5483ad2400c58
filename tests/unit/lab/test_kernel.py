"""Guest kernel preparation: module dependency closure for the initramfs."""

from __future__ import annotations

import pytest

from lab.kernel import module_closure

pytestmark = pytest.mark.unit

MODULES_DEP = """\
kernel/fs/overlayfs/overlay.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
"""


def test_dependencies_come_first_and_once() -> None:
    order = module_closure(MODULES_DEP, ("9pnet_virtio", "9p", "overlay"))
    assert order.index("kernel/net/9p/9pnet.ko") < order.index("kernel/fs/9p/9p.ko")
    assert order.index("kernel/fs/netfs/netfs.ko") < order.index("kernel/fs/fscache/fscache.ko")
    assert order.index("kernel/drivers/virtio/virtio_ring.ko") < order.index(
        "kernel/net/9p/9pnet_virtio.ko"
    )
    assert len(order) == len(set(order)) == 7


def test_builtin_modules_are_skipped() -> None:
    assert module_closure(MODULES_DEP, ("virtio_pci",)) == []
