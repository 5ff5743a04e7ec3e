/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The control channel of the vfiotrace_pin test device (kmod/): one private
 * ioctl on its VFIO device fd.  Shared by the module and by vfiotrace, so
 * that both use the same layout and number.
 */
#ifndef VFIOTRACE_PIN_H
#define VFIOTRACE_PIN_H

#include <linux/types.h>
#include <linux/ioctl.h>

enum {
	VFIOTRACE_PIN_OP_PIN = 1,	/* vfio_pin_pages(iova, length pages, prot) */
	VFIOTRACE_PIN_OP_UNPIN = 2,	/* vfio_unpin_pages, one reference per page it pinned */
	VFIOTRACE_PIN_OP_RW = 3,	/* vfio_dma_rw(iova, length bytes, prot & 1 = write) */
	VFIOTRACE_PIN_OP_PINNED = 4,	/* how many distinct pages it holds pinned */
};

struct vfiotrace_pin_req {
	__u32 op;
	__u32 prot;	/* pin: IOMMU_READ (1) | IOMMU_WRITE (2); rw: 1 writes */
	__u64 iova;
	__u64 length;	/* pages for pin and unpin, bytes for rw */
	__s64 result;	/* out: the kernel function's return: a count, 0, or -errno */
};

#define VFIOTRACE_PIN_IOCTL _IOWR(';', 0xf0, struct vfiotrace_pin_req)

#endif
