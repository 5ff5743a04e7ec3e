// SPDX-License-Identifier: GPL-2.0
/*
 * vfiotrace_pin: a test device for vfiotrace, and nothing else.
 *
 * It registers an mdev parent ("vfiotrace-pin") with one mdev type whose
 * devices are emulated-IOMMU VFIO devices.  Such a device is what makes the
 * type1 driver track dirty pages by pinning: pages it pins through
 * vfio_pin_pages() are reported dirty after every query while they stay
 * pinned, pages it writes through vfio_dma_rw() are reported once, and a
 * container holding only such devices reports nothing else.  vfio-pci never
 * pins, so without a device like this none of that can be seen on a real
 * kernel.
 *
 * Userspace drives it through a private ioctl on the VFIO device fd (the
 * VFIO core passes ioctls it does not know to the driver): pin or unpin
 * pages at an IOVA, or read or write guest memory through vfio_dma_rw().
 * The kernel's return value comes back in the request; the ioctl itself
 * fails only for a bad request.
 *
 * The device remembers every page it pinned, with a count, so that its
 * dma_unmap callback (called by the type1 driver before it unmaps a range
 * with pinned pages) unpins exactly those pages -- otherwise the unmap
 * retry loop ends in BUG_ON -- and so that it never unpins a page it did not
 * pin.  Closing the device fd or unloading the module unpins the rest.
 *
 * It taints the kernel (out of tree, unsigned).  Load it only in a test VM
 * or on a host you are testing on.  Builds against 6.1 and 6.12 headers.
 */
#include <linux/module.h>
#include <linux/device.h>
#include <linux/mdev.h>
#include <linux/vfio.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/iommu.h>
#include <linux/version.h>
#include <vfiotrace_pin.h>

#define VPIN_NAME "vfiotrace-pin"
#define VPIN_RW_MAX (16UL << 20)

struct vpin_page {
	struct list_head node;
	u64 iova;
	unsigned int refs;
};

struct vpin_device {
	struct vfio_device vdev;
	struct mutex lock;
	struct list_head pinned;	/* struct vpin_page, one per page */
};

static struct class *vpin_class;
static struct device *vpin_parent_dev;
static struct mdev_parent vpin_parent;

static struct vpin_page *vpin_find(struct vpin_device *v, u64 iova)
{
	struct vpin_page *p;

	list_for_each_entry(p, &v->pinned, node)
		if (p->iova == iova)
			return p;
	return NULL;
}

/* Drops one reference this device holds on the page at iova. */
static void vpin_unpin_one(struct vpin_device *v, struct vpin_page *p)
{
	vfio_unpin_pages(&v->vdev, p->iova, 1);
	if (--p->refs == 0) {
		list_del(&p->node);
		kfree(p);
	}
}

/* Unpins every page this device pinned in [iova, iova + length). */
static void vpin_unpin_range(struct vpin_device *v, u64 iova, u64 length)
{
	struct vpin_page *p, *n;

	list_for_each_entry_safe(p, n, &v->pinned, node) {
		if (p->iova < iova || p->iova - iova >= length)
			continue;
		while (p->refs > 1)
			vpin_unpin_one(v, p);
		vpin_unpin_one(v, p);
	}
}

static int vpin_pin(struct vpin_device *v, struct vfiotrace_pin_req *req)
{
	struct page **pages;
	struct page *dummy[1];
	u64 n = req->length, i;
	int ret;

	/* The core refuses 0 and more than VFIO_PIN_PAGES_MAX_ENTRIES pages
	 * itself; let it, with an array it will not use. */
	if (n == 0 || n > PAGE_SIZE / sizeof(unsigned long) || n > INT_MAX)
		return vfio_pin_pages(&v->vdev, req->iova, n > INT_MAX ? INT_MAX : (int)n, req->prot, dummy);
	pages = kcalloc(n, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	ret = vfio_pin_pages(&v->vdev, req->iova, (int)n, req->prot, pages);
	if (ret > 0) {
		for (i = 0; i < (u64)ret; i++) {
			u64 iova = req->iova + i * PAGE_SIZE;
			struct vpin_page *p = vpin_find(v, iova);

			if (!p) {
				p = kzalloc(sizeof(*p), GFP_KERNEL);
				if (!p) {
					/* Cannot remember it: give it back. */
					vfio_unpin_pages(&v->vdev, iova, 1);
					continue;
				}
				p->iova = iova;
				list_add_tail(&p->node, &v->pinned);
			}
			p->refs++;
		}
	}
	kfree(pages);
	return ret;
}

/* Unpins the pages of the range this device pinned (one reference each);
 * returns how many it unpinned. */
static int vpin_unpin(struct vpin_device *v, struct vfiotrace_pin_req *req)
{
	u64 i;
	int done = 0;

	for (i = 0; i < req->length && i < INT_MAX; i++) {
		struct vpin_page *p = vpin_find(v, req->iova + i * PAGE_SIZE);

		if (p) {
			vpin_unpin_one(v, p);
			done++;
		}
	}
	return done;
}

static int vpin_rw(struct vpin_device *v, struct vfiotrace_pin_req *req)
{
	void *buf;
	int ret;

	if (req->length == 0 || req->length > VPIN_RW_MAX)
		return vfio_dma_rw(&v->vdev, req->iova, NULL, 0, req->prot & 1);
	buf = kvzalloc(req->length, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0x5a, req->length);
	ret = vfio_dma_rw(&v->vdev, req->iova, buf, req->length, req->prot & 1);
	kvfree(buf);
	return ret;
}

static long vpin_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);
	struct vfiotrace_pin_req req;

	if (cmd != VFIOTRACE_PIN_IOCTL)
		return -ENOTTY;
	if (copy_from_user(&req, (void __user *)arg, sizeof(req)))
		return -EFAULT;
	mutex_lock(&v->lock);
	switch (req.op) {
	case VFIOTRACE_PIN_OP_PIN:
		req.result = vpin_pin(v, &req);
		break;
	case VFIOTRACE_PIN_OP_UNPIN:
		req.result = vpin_unpin(v, &req);
		break;
	case VFIOTRACE_PIN_OP_RW:
		req.result = vpin_rw(v, &req);
		break;
	case VFIOTRACE_PIN_OP_PINNED: {
		struct vpin_page *p;

		req.result = 0;
		list_for_each_entry(p, &v->pinned, node)
			req.result++;
		break;
	}
	default:
		mutex_unlock(&v->lock);
		return -EINVAL;
	}
	mutex_unlock(&v->lock);
	if (copy_to_user((void __user *)arg, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

static void vpin_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);

	mutex_lock(&v->lock);
	vpin_unpin_range(v, iova, length);
	mutex_unlock(&v->lock);
}

static void vpin_close_device(struct vfio_device *vdev)
{
	vpin_dma_unmap(vdev, 0, U64_MAX);
}

static int vpin_init_dev(struct vfio_device *vdev)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);

	mutex_init(&v->lock);
	INIT_LIST_HEAD(&v->pinned);
	return 0;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
/* Until 6.2 the driver frees the device in its release callback. */
static void vpin_release_dev(struct vfio_device *vdev)
{
	vfio_free_device(vdev);
}
#endif

static const struct vfio_device_ops vpin_ops = {
	.name = VPIN_NAME,
	.init = vpin_init_dev,
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	.release = vpin_release_dev,
#else
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
#endif
	.close_device = vpin_close_device,
	.ioctl = vpin_ioctl,
	.dma_unmap = vpin_dma_unmap,
};

static int vpin_probe(struct mdev_device *mdev)
{
	struct vpin_device *v;
	int ret;

	v = vfio_alloc_device(vpin_device, vdev, &mdev->dev, &vpin_ops);
	if (IS_ERR(v))
		return PTR_ERR(v);
	ret = vfio_register_emulated_iommu_dev(&v->vdev);
	if (ret) {
		vfio_put_device(&v->vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, v);
	return 0;
}

static void vpin_remove(struct mdev_device *mdev)
{
	struct vpin_device *v = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&v->vdev);
	vfio_put_device(&v->vdev);
}

static struct mdev_type vpin_type = {
	.sysfs_name = "pin",
	.pretty_name = "vfiotrace pinning test device",
};

static struct mdev_type *vpin_types[] = { &vpin_type };

static struct mdev_driver vpin_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.max_instances = 4,
	.driver = {
		.name = "vfiotrace_pin",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = vpin_probe,
	.remove = vpin_remove,
};

static int __init vpin_init(void)
{
	int ret;

	ret = mdev_register_driver(&vpin_driver);
	if (ret)
		return ret;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
	vpin_class = class_create(THIS_MODULE, VPIN_NAME);
#else
	vpin_class = class_create(VPIN_NAME);
#endif
	if (IS_ERR(vpin_class)) {
		ret = PTR_ERR(vpin_class);
		goto out_driver;
	}
	vpin_parent_dev = device_create(vpin_class, NULL, MKDEV(0, 0), NULL, VPIN_NAME);
	if (IS_ERR(vpin_parent_dev)) {
		ret = PTR_ERR(vpin_parent_dev);
		goto out_class;
	}
	ret = mdev_register_parent(&vpin_parent, vpin_parent_dev, &vpin_driver, vpin_types,
				   ARRAY_SIZE(vpin_types));
	if (ret)
		goto out_device;
	return 0;

out_device:
	device_destroy(vpin_class, MKDEV(0, 0));
out_class:
	class_destroy(vpin_class);
out_driver:
	mdev_unregister_driver(&vpin_driver);
	return ret;
}

static void __exit vpin_exit(void)
{
	mdev_unregister_parent(&vpin_parent);
	device_destroy(vpin_class, MKDEV(0, 0));
	class_destroy(vpin_class);
	mdev_unregister_driver(&vpin_driver);
}

module_init(vpin_init);
module_exit(vpin_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfiotrace test device: pins, unpins and writes guest pages on request");
