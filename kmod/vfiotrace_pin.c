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
 * A second mdev type, "mig", is the same device made migratable for a real
 * VMM: it answers QEMU's vfio-pci as a PCI device (device info, nine
 * regions of which only an emulated 256-byte config space is non-empty,
 * IRQ info with no interrupts), implements VFIO migration v2 (STOP_COPY,
 * P2P, and PRE_COPY with precopy info and MIG_DATA_SIZE from 6.2), and
 * carries its state -- its workload settings and the pages it holds pinned
 * -- in the migration data so a destination instance resumes it.
 *
 * Either type can run a workload on its own (the "vfiotrace" attributes of
 * the instance in sysfs): every period_ms, while its fd is open and the
 * device is running (RUNNING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P), it keeps
 * the "hold" pages pinned, pins the "cycle" pages on odd ticks and unpins
 * them on even ones, and writes 8 bytes into every "write" page through
 * vfio_dma_rw().  It stops in STOP and STOP_COPY (the transition waits for
 * a tick in progress), so a migration's dirty syncs see pinned pages
 * reappear in every pre-copy iteration and the device's writes once each.
 *
 * It taints the kernel (out of tree, unsigned).  Load it only in a test VM
 * or on a host you are testing on.  Builds against 5.10, 6.1 and 6.12
 * headers.  On 5.10 (the first mdev API, below) only the "pin" type exists:
 * migration v2 came in 5.18.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/device.h>
#include <linux/uuid.h>	/* 5.10's mdev.h uses guid_t without it */
#include <linux/mdev.h>
#include <linux/vfio.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/iommu.h>
#include <linux/version.h>
#include <linux/workqueue.h>
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/pci_regs.h>
#include <vfiotrace_pin.h>

/*
 * 5.10's mdev API (bullseye; the one before 5.11 reworked it): the parent
 * registers mdev_parent_ops whose callbacks take the mdev_device (there is
 * no vfio_device for the driver), vfio_pin_pages() and vfio_unpin_pages()
 * take arrays of page frame numbers, vfio_dma_rw() takes the device's
 * vfio_group, and unmaps reach the driver through a VFIO_IOMMU_NOTIFY
 * notifier instead of a dma_unmap callback.  The kernels between are not
 * supported.
 */
#define VPIN_MDEV_V1 (LINUX_VERSION_CODE < KERNEL_VERSION(5, 11, 0))
#if !VPIN_MDEV_V1 && LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "vfiotrace_pin builds against 5.10, or 6.1 and later"
#endif

#if VPIN_MDEV_V1
typedef int vpin_state_t;		/* no migration states: always running */
#define VPIN_STATE_RUNNING 0
#else
typedef enum vfio_device_mig_state vpin_state_t;
#define VPIN_STATE_RUNNING VFIO_DEVICE_STATE_RUNNING
#endif

#define VPIN_NAME "vfiotrace-pin"
#define VPIN_MAX_INSTANCES 4	/* the parent offers at most this many */
#define VPIN_RW_MAX (16UL << 20)

/* PRE_COPY, its precopy info ioctl and MIG_DATA_SIZE came in 6.2. */
#ifdef VFIO_MIGRATION_PRE_COPY
#define VPIN_HAS_PRE_COPY 1
#else
#define VPIN_HAS_PRE_COPY 0
#endif

/* The workload's page sets: each up to VPIN_RANGES ranges of pages. */
enum { VPIN_SET_HOLD, VPIN_SET_CYCLE, VPIN_SET_WRITE, VPIN_SETS };
#define VPIN_RANGES 8
#define VPIN_SET_PAGES 512	/* pages in one set, all ranges together */
static const char *const vpin_set_names[VPIN_SETS] = { "hold", "cycle", "write" };

struct vpin_range {
	__le64 iova;
	__le32 pages;
	__le32 reserved;
};

/* The workload's settings, exactly as they travel in the migration data. */
struct vpin_settings {
	__le32 period_ms;	/* 0: no workload */
	__le32 nranges[VPIN_SETS];
	struct vpin_range ranges[VPIN_SETS][VPIN_RANGES];
};

/*
 * The migration data: records of (kind, length, payload), little-endian.
 * The first is the magic, then the settings (sent in PRE_COPY already),
 * then, in STOP_COPY, the IOVAs of the pages the device holds pinned.
 */
enum { VPIN_REC_MAGIC = 1, VPIN_REC_SETTINGS = 2, VPIN_REC_PINNED = 3 };
#define VPIN_MAGIC "vfiotrace-pin-mig-1"
#define VPIN_MIG_MAX (64UL << 10)	/* any stream this device writes fits */

struct vpin_rec {
	__le32 kind;
	__le32 length;
};

struct vpin_page {
	struct list_head node;
	u64 iova;
	unsigned int refs;
};

struct vpin_device;

/* One migration data fd: saving (read by userspace) or resuming (written). */
struct vpin_mig_file {
	struct file *filp;
	struct mutex lock;
	struct vpin_device *dev;	/* NULL once the device let go of it */
	u8 *buf;
	size_t len, pos;		/* bytes held; bytes read so far (saving) */
	bool final;			/* saving: the stream is complete (STOP_COPY) */
};

struct vpin_device {
#if VPIN_MDEV_V1
	struct mdev_device *mdev;
	struct vfio_group *group;	/* while open: vfio_dma_rw() takes it */
	struct notifier_block unmap_nb;	/* VFIO_IOMMU_NOTIFY_DMA_UNMAP */
#else
	struct vfio_device vdev;
#endif
	struct mutex lock;		/* everything below, and the migration state */
	struct list_head pinned;	/* struct vpin_page, one per page */
	bool migratable;		/* the "mig" type */
	bool open;
	u8 config[PCI_CFG_SPACE_SIZE];	/* the emulated config space ("mig") */
	vpin_state_t state;
	struct vpin_mig_file *saving, *resuming;
	struct vpin_settings settings;
	struct delayed_work work;
	u64 ticks, pins, unpins, writes, errors;
	long last_error;
};

static struct class *vpin_class;
static struct device *vpin_parent_dev;
#if !VPIN_MDEV_V1
static struct mdev_parent vpin_parent;
static struct mdev_type vpin_type, vpin_mig_type;
#endif

/*
 * What the module has allocated and not freed: page records (one per page
 * pinned) and migration data files. Both are 0 whenever no device fd and
 * no data fd is open; the lab reads them (parameter live_objects, "PAGES
 * FILES") after each run to catch a leak in any path.
 */
static atomic_t vpin_live_pages = ATOMIC_INIT(0);
static atomic_t vpin_live_files = ATOMIC_INIT(0);

static int vpin_live_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d %d\n", atomic_read(&vpin_live_pages), atomic_read(&vpin_live_files));
}

static const struct kernel_param_ops vpin_live_ops = { .get = vpin_live_get };
module_param_cb(live_objects, &vpin_live_ops, NULL, 0444);
MODULE_PARM_DESC(live_objects, "page records and migration data files allocated and not yet freed");

/* ---- The VFIO calls, in either API ----------------------------------- */

#if VPIN_MDEV_V1
/* vfio_pin_pages(): npage frames from iova's.  The core refuses 0 and more
 * than VFIO_PIN_PAGES_MAX_ENTRIES before it reads the arrays. */
static int vpin_core_pin(struct vpin_device *v, u64 iova, int npage, int prot)
{
	unsigned long one_user = 0, one_phys = 0, *user, *phys;
	int i, ret;

	if (npage <= 0 || npage > VFIO_PIN_PAGES_MAX_ENTRIES)
		return vfio_pin_pages(mdev_dev(v->mdev), &one_user, npage, prot, &one_phys);
	user = kcalloc(npage, sizeof(*user), GFP_KERNEL);
	phys = kcalloc(npage, sizeof(*phys), GFP_KERNEL);
	ret = -ENOMEM;
	if (user && phys) {
		for (i = 0; i < npage; i++)
			user[i] = (iova >> PAGE_SHIFT) + i;
		ret = vfio_pin_pages(mdev_dev(v->mdev), user, npage, prot, phys);
	}
	kfree(user);
	kfree(phys);
	return ret;
}

static void vpin_core_unpin_page(struct vpin_device *v, u64 iova)
{
	unsigned long pfn = iova >> PAGE_SHIFT;

	vfio_unpin_pages(mdev_dev(v->mdev), &pfn, 1);
}

static int vpin_core_rw(struct vpin_device *v, u64 iova, void *data, size_t len, bool write)
{
	if (!v->group)
		return -EINVAL;
	return vfio_dma_rw(v->group, iova, data, len, write);
}
#else
static int vpin_core_pin(struct vpin_device *v, u64 iova, int npage, int prot)
{
	struct page **pages, *dummy[1];
	int ret;

	/* The core refuses 0 and more than VFIO_PIN_PAGES_MAX_ENTRIES pages
	 * itself; let it, with an array it will not use. */
	if (npage <= 0 || npage > PAGE_SIZE / sizeof(unsigned long))
		return vfio_pin_pages(&v->vdev, iova, npage, prot, dummy);
	pages = kcalloc(npage, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	ret = vfio_pin_pages(&v->vdev, iova, npage, prot, pages);
	kfree(pages);
	return ret;
}

static void vpin_core_unpin_page(struct vpin_device *v, u64 iova)
{
	vfio_unpin_pages(&v->vdev, iova, 1);
}

static int vpin_core_rw(struct vpin_device *v, u64 iova, void *data, size_t len, bool write)
{
	return vfio_dma_rw(&v->vdev, iova, data, len, write);
}
#endif

/* ---- Pinned pages ---------------------------------------------------- */

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
	vpin_core_unpin_page(v, p->iova);
	if (--p->refs == 0) {
		list_del(&p->node);
		kfree(p);
		atomic_dec(&vpin_live_pages);
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
	u64 n = req->length, i;
	int ret;

	ret = vpin_core_pin(v, req->iova, n > INT_MAX ? INT_MAX : (int)n, req->prot);
	if (ret > 0) {
		for (i = 0; i < (u64)ret; i++) {
			u64 iova = req->iova + i * PAGE_SIZE;
			struct vpin_page *p = vpin_find(v, iova);

			if (!p) {
				p = kzalloc(sizeof(*p), GFP_KERNEL);
				if (!p) {
					/* Cannot remember it: give it back. */
					vpin_core_unpin_page(v, iova);
					continue;
				}
				p->iova = iova;
				list_add_tail(&p->node, &v->pinned);
				atomic_inc(&vpin_live_pages);
			}
			p->refs++;
		}
	}
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
		return vpin_core_rw(v, req->iova, NULL, 0, req->prot & 1);
	buf = kvzalloc(req->length, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0x5a, req->length);
	ret = vpin_core_rw(v, req->iova, buf, req->length, req->prot & 1);
	kvfree(buf);
	return ret;
}

static unsigned int vpin_pinned_count(struct vpin_device *v)
{
	struct vpin_page *p;
	unsigned int n = 0;

	list_for_each_entry(p, &v->pinned, node)
		n++;
	return n;
}

/* ---- The workload ---------------------------------------------------- */

/* The states in which the device runs (and so does its workload). */
static bool vpin_running(vpin_state_t s)
{
#if VPIN_MDEV_V1
	return true;
#else
	return s == VFIO_DEVICE_STATE_RUNNING || s == VFIO_DEVICE_STATE_RUNNING_P2P
#if VPIN_HAS_PRE_COPY
	       || s == VFIO_DEVICE_STATE_PRE_COPY || s == VFIO_DEVICE_STATE_PRE_COPY_P2P
#endif
		;
#endif
}

static void vpin_note(struct vpin_device *v, long ret)
{
	if (ret < 0) {
		v->errors++;
		v->last_error = ret;
	}
}

/* Pins one page unless this device holds it already. */
static void vpin_hold_page(struct vpin_device *v, u64 iova)
{
	struct vfiotrace_pin_req req = { .prot = IOMMU_READ | IOMMU_WRITE, .iova = iova, .length = 1 };
	int ret;

	if (vpin_find(v, iova))
		return;
	ret = vpin_pin(v, &req);
	if (ret > 0)
		v->pins++;
	vpin_note(v, ret);
}

/* Iterates over every page (iova) of one of the workload's sets. */
#define vpin_for_each_page(v, set, iova, r, i)					\
	for (r = 0; r < le32_to_cpu((v)->settings.nranges[set]); r++)		\
		for (i = 0, iova = le64_to_cpu((v)->settings.ranges[set][r].iova); \
		     i < le32_to_cpu((v)->settings.ranges[set][r].pages);	\
		     i++, iova += PAGE_SIZE)

static void vpin_tick(struct vpin_device *v)
{
	u64 iova, stamp;
	u32 r, i;

	v->ticks++;
	vpin_for_each_page(v, VPIN_SET_HOLD, iova, r, i)
		vpin_hold_page(v, iova);
	vpin_for_each_page(v, VPIN_SET_CYCLE, iova, r, i) {
		struct vpin_page *p = vpin_find(v, iova);

		if (v->ticks & 1) {
			vpin_hold_page(v, iova);
		} else if (p) {
			vpin_unpin_one(v, p);
			v->unpins++;
		}
	}
	stamp = cpu_to_le64(v->ticks);
	vpin_for_each_page(v, VPIN_SET_WRITE, iova, r, i) {
		int ret = vpin_core_rw(v, iova, &stamp, sizeof(stamp), true);

		if (ret == 0)
			v->writes++;
		vpin_note(v, ret);
	}
}

static void vpin_schedule(struct vpin_device *v)
{
	u32 period = le32_to_cpu(v->settings.period_ms);

	if (v->open && period && vpin_running(v->state))
		schedule_delayed_work(&v->work, msecs_to_jiffies(period));
}

static void vpin_work(struct work_struct *work)
{
	struct vpin_device *v = container_of(to_delayed_work(work), struct vpin_device, work);

	mutex_lock(&v->lock);
	if (v->open && le32_to_cpu(v->settings.period_ms) && vpin_running(v->state)) {
		vpin_tick(v);
		vpin_schedule(v);
	}
	mutex_unlock(&v->lock);
}

/* ---- The workload's sysfs attributes ---------------------------------- */

static struct vpin_device *vpin_from_dev(struct device *dev)
{
#if VPIN_MDEV_V1
	/* The device's own drvdata is vfio_mdev's. */
	return mdev_get_drvdata(mdev_from_dev(dev));
#else
	return dev_get_drvdata(dev);
#endif
}

/* Parses "IOVA+PAGES,IOVA+PAGES,..." (hex or decimal; empty clears). */
static int vpin_parse_set(const char *buf, struct vpin_settings *s, int set)
{
	char *copy, *cur, *tok;
	u32 n = 0, total = 0;
	int ret = 0;

	copy = kstrdup(buf, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cur = strim(copy);
	while ((tok = strsep(&cur, ",")) != NULL) {
		char *plus = strchr(tok, '+');
		u64 iova;
		u32 pages;

		tok = strim(tok);
		if (!*tok)
			continue;
		if (!plus || n == VPIN_RANGES) {
			ret = -EINVAL;
			break;
		}
		*plus = '\0';
		if (kstrtou64(tok, 0, &iova) || kstrtou32(plus + 1, 0, &pages) || !pages ||
		    (iova & ~PAGE_MASK) || pages > VPIN_SET_PAGES - total) {
			ret = -EINVAL;
			break;
		}
		total += pages;
		s->ranges[set][n].iova = cpu_to_le64(iova);
		s->ranges[set][n].pages = cpu_to_le32(pages);
		n++;
	}
	if (!ret) {
		s->nranges[set] = cpu_to_le32(n);
		memset(&s->ranges[set][n], 0, sizeof(s->ranges[set][0]) * (VPIN_RANGES - n));
	}
	kfree(copy);
	return ret;
}

static ssize_t vpin_show_set(struct device *dev, char *buf, int set)
{
	struct vpin_device *v = vpin_from_dev(dev);
	ssize_t len = 0;
	u32 r;

	mutex_lock(&v->lock);
	for (r = 0; r < le32_to_cpu(v->settings.nranges[set]); r++)
		len += sysfs_emit_at(buf, len, "%s0x%llx+%u", r ? "," : "",
				     le64_to_cpu(v->settings.ranges[set][r].iova),
				     le32_to_cpu(v->settings.ranges[set][r].pages));
	len += sysfs_emit_at(buf, len, "\n");
	mutex_unlock(&v->lock);
	return len;
}

static ssize_t vpin_store_set(struct device *dev, const char *buf, size_t count, int set)
{
	struct vpin_device *v = vpin_from_dev(dev);
	int ret;

	mutex_lock(&v->lock);
	ret = vpin_parse_set(buf, &v->settings, set);
	mutex_unlock(&v->lock);
	return ret ? ret : count;
}

#define VPIN_SET_ATTR(name, set)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *a, char *buf) \
{ return vpin_show_set(dev, buf, set); }					\
static ssize_t name##_store(struct device *dev, struct device_attribute *a,	\
			    const char *buf, size_t count)			\
{ return vpin_store_set(dev, buf, count, set); }				\
static DEVICE_ATTR_RW(name)

VPIN_SET_ATTR(hold, VPIN_SET_HOLD);
VPIN_SET_ATTR(cycle, VPIN_SET_CYCLE);
VPIN_SET_ATTR(write, VPIN_SET_WRITE);

static ssize_t period_ms_show(struct device *dev, struct device_attribute *a, char *buf)
{
	struct vpin_device *v = vpin_from_dev(dev);

	return sysfs_emit(buf, "%u\n", le32_to_cpu(READ_ONCE(v->settings.period_ms)));
}

static ssize_t period_ms_store(struct device *dev, struct device_attribute *a,
			       const char *buf, size_t count)
{
	struct vpin_device *v = vpin_from_dev(dev);
	u32 period;

	if (kstrtou32(buf, 0, &period) || period > 60000)
		return -EINVAL;
	mutex_lock(&v->lock);
	v->settings.period_ms = cpu_to_le32(period);
	vpin_schedule(v);
	mutex_unlock(&v->lock);
	return count;
}
static DEVICE_ATTR_RW(period_ms);

static const char *vpin_state_name(vpin_state_t s)
{
#if VPIN_MDEV_V1
	return "running";
#else
	switch (s) {
	case VFIO_DEVICE_STATE_ERROR: return "error";
	case VFIO_DEVICE_STATE_STOP: return "stop";
	case VFIO_DEVICE_STATE_RUNNING: return "running";
	case VFIO_DEVICE_STATE_STOP_COPY: return "stop_copy";
	case VFIO_DEVICE_STATE_RESUMING: return "resuming";
	case VFIO_DEVICE_STATE_RUNNING_P2P: return "running_p2p";
#if VPIN_HAS_PRE_COPY
	case VFIO_DEVICE_STATE_PRE_COPY: return "pre_copy";
	case VFIO_DEVICE_STATE_PRE_COPY_P2P: return "pre_copy_p2p";
#endif
	default: break;
	}
	return "?";
#endif
}

/* One line a test can parse: what the workload did, and where it stands. */
static ssize_t stats_show(struct device *dev, struct device_attribute *a, char *buf)
{
	struct vpin_device *v = vpin_from_dev(dev);
	ssize_t len;

	mutex_lock(&v->lock);
	len = sysfs_emit(buf, "state %s open %d ticks %llu pins %llu unpins %llu writes %llu errors %llu last_error %ld pinned %u\n",
			 vpin_state_name(v->state), v->open, v->ticks, v->pins, v->unpins,
			 v->writes, v->errors, v->last_error, vpin_pinned_count(v));
	mutex_unlock(&v->lock);
	return len;
}
static DEVICE_ATTR_RO(stats);

static struct attribute *vpin_attrs[] = {
	&dev_attr_hold.attr, &dev_attr_cycle.attr, &dev_attr_write.attr,
	&dev_attr_period_ms.attr, &dev_attr_stats.attr, NULL,
};
static const struct attribute_group vpin_attr_group = { .name = "vfiotrace", .attrs = vpin_attrs };
static const struct attribute_group *vpin_attr_groups[] = { &vpin_attr_group, NULL };

#if !VPIN_MDEV_V1
/* ---- The PCI surface ("mig") ---------------------------------------- */

#define VPIN_REGION_SHIFT 40
#define VPIN_VENDOR 0x1234	/* QEMU's test vendor id, as edu; no quirks */
#define VPIN_DEVICE 0x7670

static void vpin_config_init(struct vpin_device *v)
{
	u8 *c = v->config;

	memset(c, 0, sizeof(v->config));
	*(__le16 *)&c[PCI_VENDOR_ID] = cpu_to_le16(VPIN_VENDOR);
	*(__le16 *)&c[PCI_DEVICE_ID] = cpu_to_le16(VPIN_DEVICE);
	c[PCI_REVISION_ID] = 1;
	c[PCI_CLASS_DEVICE + 1] = 0xff;	/* class ff: "unassigned" */
	*(__le16 *)&c[PCI_SUBSYSTEM_VENDOR_ID] = cpu_to_le16(VPIN_VENDOR);
	*(__le16 *)&c[PCI_SUBSYSTEM_ID] = cpu_to_le16(1);
	/* No BARs, no capabilities, interrupt pin 0: nothing to set up. */
}

static ssize_t vpin_config_rw(struct vpin_device *v, char __user *ubuf, const char __user *wbuf,
			      size_t count, loff_t *ppos)
{
	u64 index = (u64)*ppos >> VPIN_REGION_SHIFT;
	u64 off = (u64)*ppos & ((1ULL << VPIN_REGION_SHIFT) - 1);
	u8 tmp[PCI_CFG_SPACE_SIZE];
	size_t i;

	if (!v->migratable)
		return -EINVAL;
	if (index != VFIO_PCI_CONFIG_REGION_INDEX || off >= sizeof(v->config) ||
	    count > sizeof(v->config) - off)
		return -EINVAL;
	mutex_lock(&v->lock);
	if (ubuf) {
		memcpy(tmp, v->config + off, count);
		mutex_unlock(&v->lock);
		if (copy_to_user(ubuf, tmp, count))
			return -EFAULT;
	} else {
		mutex_unlock(&v->lock);
		if (copy_from_user(tmp, wbuf, count))
			return -EFAULT;
		mutex_lock(&v->lock);
		/* Writable: command, cache line size, latency timer, interrupt
		 * line. Everything else reads back as it was (read-only). */
		for (i = 0; i < count; i++) {
			u64 at = off + i;

			if (at == PCI_COMMAND || at == PCI_COMMAND + 1 || at == PCI_CACHE_LINE_SIZE ||
			    at == PCI_LATENCY_TIMER || at == PCI_INTERRUPT_LINE)
				v->config[at] = tmp[i];
		}
		mutex_unlock(&v->lock);
	}
	*ppos += count;
	return count;
}

static ssize_t vpin_read(struct vfio_device *vdev, char __user *buf, size_t count, loff_t *ppos)
{
	return vpin_config_rw(container_of(vdev, struct vpin_device, vdev), buf, NULL, count, ppos);
}

static ssize_t vpin_write(struct vfio_device *vdev, const char __user *buf, size_t count, loff_t *ppos)
{
	return vpin_config_rw(container_of(vdev, struct vpin_device, vdev), NULL, buf, count, ppos);
}

static long vpin_pci_ioctl(struct vpin_device *v, unsigned int cmd, void __user *arg)
{
	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;
		unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);

		if (copy_from_user(&info, arg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI;
		info.num_regions = VFIO_PCI_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		struct vfio_region_info info;
		unsigned long minsz = offsetofend(struct vfio_region_info, offset);

		if (copy_from_user(&info, arg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_REGIONS)
			return -EINVAL;
		info.offset = (u64)info.index << VPIN_REGION_SHIFT;
		info.cap_offset = 0;
		if (info.index == VFIO_PCI_CONFIG_REGION_INDEX) {
			info.size = PCI_CFG_SPACE_SIZE;
			info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		} else {
			info.size = 0;
			info.flags = 0;
		}
		return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;
		unsigned long minsz = offsetofend(struct vfio_irq_info, count);

		if (copy_from_user(&info, arg, minsz))
			return -EFAULT;
		/* INTx, MSI and MSI-X exist with no vectors; no error or
		 * request interrupts (QEMU then sets up neither). */
		if (info.argsz < minsz || info.index > VFIO_PCI_MSIX_IRQ_INDEX)
			return -EINVAL;
		info.flags = 0;
		info.count = 0;
		return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return -EINVAL;
	}
	return -ENOTTY;
}

/* ---- Migration data fds --------------------------------------------- */

static void vpin_put_record(u8 *buf, size_t *len, u32 kind, const void *data, u32 bytes)
{
	struct vpin_rec rec = { .kind = cpu_to_le32(kind), .length = cpu_to_le32(bytes) };

	memcpy(buf + *len, &rec, sizeof(rec));
	memcpy(buf + *len + sizeof(rec), data, bytes);
	*len += sizeof(rec) + bytes;
}

/* The bytes the device sends in STOP_COPY after the settings. */
static size_t vpin_pinned_record_size(struct vpin_device *v)
{
	return sizeof(struct vpin_rec) + vpin_pinned_count(v) * sizeof(__le64);
}

#if VPIN_HAS_PRE_COPY
/* MIG_DATA_SIZE's answer: the whole stream, were it sent now. */
static size_t vpin_stream_size(struct vpin_device *v)
{
	return 2 * sizeof(struct vpin_rec) + sizeof(VPIN_MAGIC) + sizeof(v->settings) +
	       vpin_pinned_record_size(v);
}
#endif

/* Appends the record of the pages held pinned: the stream's end. */
static int vpin_save_pinned(struct vpin_device *v, struct vpin_mig_file *f)
{
	struct vpin_page *p;
	struct vpin_rec rec;
	size_t n = 0;
	__le64 *iovas;

	if (f->len + vpin_pinned_record_size(v) > VPIN_MIG_MAX)
		return -E2BIG;
	iovas = (__le64 *)(f->buf + f->len + sizeof(rec));
	list_for_each_entry(p, &v->pinned, node)
		iovas[n++] = cpu_to_le64(p->iova);
	rec.kind = cpu_to_le32(VPIN_REC_PINNED);
	rec.length = cpu_to_le32(n * sizeof(__le64));
	memcpy(f->buf + f->len, &rec, sizeof(rec));
	f->len += sizeof(rec) + n * sizeof(__le64);
	f->final = true;
	return 0;
}

static ssize_t vpin_save_read(struct file *filp, char __user *buf, size_t count, loff_t *ppos)
{
	struct vpin_mig_file *f = filp->private_data;
	ssize_t ret;

	if (ppos)
		return -ESPIPE;
	mutex_lock(&f->lock);
	if (!f->dev) {
		ret = -ENODEV;
	} else if (f->pos < f->len) {
		ret = min(count, f->len - f->pos);
		if (copy_to_user(buf, f->buf + f->pos, ret))
			ret = -EFAULT;
		else
			f->pos += ret;
	} else {
		/* PRE_COPY: nothing more for now; STOP_COPY: the end. */
		ret = f->final ? 0 : -ENOMSG;
	}
	mutex_unlock(&f->lock);
	return ret;
}

static long vpin_save_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
#if VPIN_HAS_PRE_COPY
	struct vpin_mig_file *f = filp->private_data;
	struct vfio_precopy_info info;
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	long ret = 0;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	mutex_lock(&f->lock);
	if (!f->dev) {
		ret = -ENODEV;
	} else if (f->final) {
		/* Only meaningful in PRE_COPY and PRE_COPY_P2P. */
		ret = -EINVAL;
	} else {
		info.initial_bytes = f->len - f->pos;
		info.dirty_bytes = 0;	/* the pinned pages are sent in STOP_COPY */
		info.flags = 0;
	}
	mutex_unlock(&f->lock);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
#else
	return -ENOTTY;
#endif
}

static ssize_t vpin_resume_write(struct file *filp, const char __user *buf, size_t count, loff_t *ppos)
{
	struct vpin_mig_file *f = filp->private_data;
	ssize_t ret;

	if (ppos)
		return -ESPIPE;
	mutex_lock(&f->lock);
	if (!f->dev)
		ret = -ENODEV;
	else if (count > VPIN_MIG_MAX - f->len)
		ret = -ENOSPC;
	else if (copy_from_user(f->buf + f->len, buf, count))
		ret = -EFAULT;
	else {
		f->len += count;
		ret = count;
	}
	mutex_unlock(&f->lock);
	return ret;
}

static int vpin_mig_release(struct inode *inode, struct file *filp)
{
	struct vpin_mig_file *f = filp->private_data;

	mutex_destroy(&f->lock);
	kvfree(f->buf);
	kfree(f);
	atomic_dec(&vpin_live_files);
	return 0;
}

static const struct file_operations vpin_save_fops = {
	.owner = THIS_MODULE,
	.read = vpin_save_read,
	.unlocked_ioctl = vpin_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = vpin_mig_release,
};

static const struct file_operations vpin_resume_fops = {
	.owner = THIS_MODULE,
	.write = vpin_resume_write,
	.release = vpin_mig_release,
};

static struct vpin_mig_file *vpin_mig_file_new(struct vpin_device *v, bool saving)
{
	struct vpin_mig_file *f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);

	if (!f)
		return ERR_PTR(-ENOMEM);
	f->buf = kvzalloc(VPIN_MIG_MAX, GFP_KERNEL_ACCOUNT);
	if (!f->buf) {
		kfree(f);
		return ERR_PTR(-ENOMEM);
	}
	f->filp = anon_inode_getfile("vfiotrace_pin_mig", saving ? &vpin_save_fops : &vpin_resume_fops,
				     f, saving ? O_RDONLY : O_WRONLY);
	if (IS_ERR(f->filp)) {
		struct file *err = f->filp;

		kvfree(f->buf);
		kfree(f);
		return ERR_CAST(err);
	}
	stream_open(f->filp->f_inode, f->filp);
	mutex_init(&f->lock);
	f->dev = v;
	atomic_inc(&vpin_live_files);
	if (saving) {
		vpin_put_record(f->buf, &f->len, VPIN_REC_MAGIC, VPIN_MAGIC, sizeof(VPIN_MAGIC));
		vpin_put_record(f->buf, &f->len, VPIN_REC_SETTINGS, &v->settings, sizeof(v->settings));
	}
	return f;
}

/* The device lets go of its data fds: later reads and writes get ENODEV. */
static void vpin_mig_files_drop(struct vpin_device *v)
{
	struct vpin_mig_file **slots[] = { &v->saving, &v->resuming };
	int i;

	for (i = 0; i < ARRAY_SIZE(slots); i++) {
		struct vpin_mig_file *f = *slots[i];

		if (!f)
			continue;
		mutex_lock(&f->lock);
		f->dev = NULL;
		mutex_unlock(&f->lock);
		fput(f->filp);
		*slots[i] = NULL;
	}
}

/* RESUMING -> STOP: checks the stream it was given and takes its state:
 * the settings, and a pin of every page the source held. */
static int vpin_load(struct vpin_device *v)
{
	struct vpin_mig_file *f = v->resuming;
	struct vpin_settings settings;
	bool seen[4] = { false };
	size_t at = 0;
	u8 *pinned = NULL;
	u32 npinned = 0, i;

	if (!f)
		return -EINVAL;
	mutex_lock(&f->lock);
	while (at < f->len) {
		struct vpin_rec rec;
		u32 kind, bytes;

		if (f->len - at < sizeof(rec))
			goto bad;
		memcpy(&rec, f->buf + at, sizeof(rec));
		kind = le32_to_cpu(rec.kind);
		bytes = le32_to_cpu(rec.length);
		at += sizeof(rec);
		if (bytes > f->len - at || kind < VPIN_REC_MAGIC || kind > VPIN_REC_PINNED || seen[kind])
			goto bad;
		/* In order: magic, settings, pinned pages. */
		if (kind != VPIN_REC_MAGIC && !seen[kind - 1])
			goto bad;
		seen[kind] = true;
		if (kind == VPIN_REC_MAGIC &&
		    (bytes != sizeof(VPIN_MAGIC) || memcmp(f->buf + at, VPIN_MAGIC, bytes)))
			goto bad;
		if (kind == VPIN_REC_SETTINGS) {
			if (bytes != sizeof(settings))
				goto bad;
			memcpy(&settings, f->buf + at, bytes);
		}
		if (kind == VPIN_REC_PINNED) {
			if (bytes % sizeof(__le64))
				goto bad;
			pinned = f->buf + at;
			npinned = bytes / sizeof(__le64);
		}
		at += bytes;
	}
	if (!seen[VPIN_REC_PINNED])
		goto bad;
	for (i = 0; i < VPIN_SETS; i++) {
		u32 r, total = 0;

		if (le32_to_cpu(settings.nranges[i]) > VPIN_RANGES)
			goto bad;
		for (r = 0; r < le32_to_cpu(settings.nranges[i]); r++) {
			u32 pages = le32_to_cpu(settings.ranges[i][r].pages);

			if (!pages || pages > VPIN_SET_PAGES - total ||
			    (le64_to_cpu(settings.ranges[i][r].iova) & ~PAGE_MASK))
				goto bad;
			total += pages;
		}
	}
	v->settings = settings;
	for (i = 0; i < npinned; i++) {
		__le64 iova;

		memcpy(&iova, pinned + i * sizeof(iova), sizeof(iova));
		vpin_hold_page(v, le64_to_cpu(iova));
	}
	mutex_unlock(&f->lock);
	return 0;
bad:
	mutex_unlock(&f->lock);
	return -EINVAL;
}

/* ---- Migration states ----------------------------------------------- */

/* One arc of the migration state machine (vfio_mig_get_next_state() only
 * asks for arcs it allows); returns the new data fd, NULL or an error. */
static struct file *vpin_step(struct vpin_device *v, enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = v->state;
	struct vpin_mig_file *f;
	int ret;

	if (next == VFIO_DEVICE_STATE_STOP_COPY) {
		/* From STOP (a new fd) or from PRE_COPY_P2P (the same fd goes on). */
		if (cur == VFIO_DEVICE_STATE_STOP) {
			f = vpin_mig_file_new(v, true);
			if (IS_ERR(f))
				return ERR_CAST(f);
			v->saving = f;
			mutex_lock(&f->lock);
			ret = vpin_save_pinned(v, f);
			mutex_unlock(&f->lock);
			if (ret) {
				vpin_mig_files_drop(v);
				return ERR_PTR(ret);
			}
			get_file(f->filp);
			return f->filp;
		}
		if (!v->saving)
			return ERR_PTR(-EINVAL);
		mutex_lock(&v->saving->lock);
		ret = vpin_save_pinned(v, v->saving);
		mutex_unlock(&v->saving->lock);
		return ret ? ERR_PTR(ret) : NULL;
	}
#if VPIN_HAS_PRE_COPY
	if ((next == VFIO_DEVICE_STATE_PRE_COPY && cur == VFIO_DEVICE_STATE_RUNNING) ||
	    (next == VFIO_DEVICE_STATE_PRE_COPY_P2P && cur == VFIO_DEVICE_STATE_RUNNING_P2P)) {
		f = vpin_mig_file_new(v, true);
		if (IS_ERR(f))
			return ERR_CAST(f);
		v->saving = f;
		get_file(f->filp);
		return f->filp;
	}
#endif
	if (next == VFIO_DEVICE_STATE_RESUMING) {
		f = vpin_mig_file_new(v, false);
		if (IS_ERR(f))
			return ERR_CAST(f);
		v->resuming = f;
		get_file(f->filp);
		return f->filp;
	}
	if (cur == VFIO_DEVICE_STATE_RESUMING && next == VFIO_DEVICE_STATE_STOP) {
		ret = vpin_load(v);
		vpin_mig_files_drop(v);
		return ret ? ERR_PTR(ret) : NULL;
	}
	/* Leaving a saving state for a non-saving one ends the stream. */
	if (cur == VFIO_DEVICE_STATE_STOP_COPY
#if VPIN_HAS_PRE_COPY
	    || cur == VFIO_DEVICE_STATE_PRE_COPY || cur == VFIO_DEVICE_STATE_PRE_COPY_P2P
#endif
	   ) {
#if VPIN_HAS_PRE_COPY
		if (!((cur == VFIO_DEVICE_STATE_PRE_COPY && next == VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
		      (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P && next == VFIO_DEVICE_STATE_PRE_COPY)))
#endif
			vpin_mig_files_drop(v);
	}
	/* RUNNING <-> RUNNING_P2P, RUNNING_P2P <-> STOP and the P2P arcs of
	 * PRE_COPY: the device does no P2P DMA, so only the workload's
	 * running or not changes (vpin_set_state reschedules it). */
	return NULL;
}

static struct file *vpin_set_state(struct vfio_device *vdev, enum vfio_device_mig_state want)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);
	struct file *ret = NULL;

	mutex_lock(&v->lock);
	/* vfio_mig_get_next_state() WARNs when asked for a path from ERROR
	 * (seen on 6.1 and 6.12 by scripts/lab/mig-arcs): refuse here with
	 * the EINVAL it would return. */
	if (v->state == VFIO_DEVICE_STATE_ERROR && want != VFIO_DEVICE_STATE_ERROR) {
		mutex_unlock(&v->lock);
		return ERR_PTR(-EINVAL);
	}
	while (v->state != want) {
		enum vfio_device_mig_state next;
		int err = vfio_mig_get_next_state(vdev, v->state, want, &next);

		if (err) {
			ret = ERR_PTR(err);
			break;
		}
		ret = vpin_step(v, next);
		if (IS_ERR(ret)) {
			/* A stream it cannot take leaves the device in ERROR:
			 * every arc is then refused until the fd is closed (the
			 * device offers no reset). */
			if (v->state == VFIO_DEVICE_STATE_RESUMING && next == VFIO_DEVICE_STATE_STOP)
				v->state = VFIO_DEVICE_STATE_ERROR;
			break;
		}
		v->state = next;
		/* Only the last arc may open a data fd. */
		if (WARN_ON(ret && next != want)) {
			fput(ret);
			ret = ERR_PTR(-EINVAL);
			break;
		}
	}
	vpin_schedule(v);
	mutex_unlock(&v->lock);
	return ret;
}

static int vpin_get_state(struct vfio_device *vdev, enum vfio_device_mig_state *state)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);

	mutex_lock(&v->lock);
	*state = v->state;
	mutex_unlock(&v->lock);
	return 0;
}

#if VPIN_HAS_PRE_COPY
static int vpin_get_data_size(struct vfio_device *vdev, unsigned long *stop_copy_length)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);

	mutex_lock(&v->lock);
	*stop_copy_length = vpin_stream_size(v);
	mutex_unlock(&v->lock);
	return 0;
}
#endif

static const struct vfio_migration_ops vpin_mig_ops = {
	.migration_set_state = vpin_set_state,
	.migration_get_state = vpin_get_state,
#if VPIN_HAS_PRE_COPY
	.migration_get_data_size = vpin_get_data_size,
#endif
};

#endif /* !VPIN_MDEV_V1: the PCI surface and migration */

/* ---- The device, in either API ---------------------------------------- */

/* VFIOTRACE_PIN_IOCTL on the device fd. */
static long vpin_request(struct vpin_device *v, unsigned long arg)
{
	struct vfiotrace_pin_req req;

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
	case VFIOTRACE_PIN_OP_PINNED:
		req.result = vpin_pinned_count(v);
		break;
	default:
		mutex_unlock(&v->lock);
		return -EINVAL;
	}
	mutex_unlock(&v->lock);
	if (copy_to_user((void __user *)arg, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

/* An unmap of [iova, iova + length): the pages this device pinned there
 * are given back first, or the type1 driver's unmap retries end in BUG_ON. */
static void vpin_drop_range(struct vpin_device *v, u64 iova, u64 length)
{
	mutex_lock(&v->lock);
	vpin_unpin_range(v, iova, length);
	mutex_unlock(&v->lock);
}

static void vpin_opened(struct vpin_device *v)
{
	mutex_lock(&v->lock);
	v->open = true;
	v->state = VPIN_STATE_RUNNING;	/* every open starts RUNNING */
	vpin_schedule(v);
	mutex_unlock(&v->lock);
}

static void vpin_closed(struct vpin_device *v)
{
	mutex_lock(&v->lock);
	v->open = false;
#if !VPIN_MDEV_V1
	vpin_mig_files_drop(v);
#endif
	mutex_unlock(&v->lock);
	/* The work item takes the lock and sees !open; wait for one in flight. */
	cancel_delayed_work_sync(&v->work);
	vpin_drop_range(v, 0, U64_MAX);
}

static void vpin_setup(struct vpin_device *v)
{
	mutex_init(&v->lock);
	INIT_LIST_HEAD(&v->pinned);
	INIT_DELAYED_WORK(&v->work, vpin_work);
	v->state = VPIN_STATE_RUNNING;
}

#if VPIN_MDEV_V1
/* ---- 5.10: mdev_parent_ops -------------------------------------------- */

static atomic_t vpin_instances = ATOMIC_INIT(0);

static int vpin_unmap_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct vpin_device *v = container_of(nb, struct vpin_device, unmap_nb);
	struct vfio_iommu_type1_dma_unmap *unmap = data;

	if (action == VFIO_IOMMU_NOTIFY_DMA_UNMAP)
		vpin_drop_range(v, unmap->iova, unmap->size);
	return NOTIFY_OK;
}

static int vpin_v1_create(struct kobject *kobj, struct mdev_device *mdev)
{
	struct vpin_device *v;

	if (atomic_inc_return(&vpin_instances) > VPIN_MAX_INSTANCES) {
		atomic_dec(&vpin_instances);
		return -ENOSPC;
	}
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		atomic_dec(&vpin_instances);
		return -ENOMEM;
	}
	v->mdev = mdev;
	vpin_setup(v);
	mdev_set_drvdata(mdev, v);
	return 0;
}

static int vpin_v1_remove(struct mdev_device *mdev)
{
	struct vpin_device *v = mdev_get_drvdata(mdev);

	if (v->open)
		return -EBUSY;
	mdev_set_drvdata(mdev, NULL);
	kfree(v);
	atomic_dec(&vpin_instances);
	return 0;
}

/* The device fd opens: pins need the unmap notifier registered (type1
 * refuses them without one), vfio_dma_rw() the group. */
static int vpin_v1_open(struct mdev_device *mdev)
{
	struct vpin_device *v = mdev_get_drvdata(mdev);
	unsigned long events = VFIO_IOMMU_NOTIFY_DMA_UNMAP;
	struct vfio_group *group;
	int ret;

	v->unmap_nb.notifier_call = vpin_unmap_notify;
	ret = vfio_register_notifier(mdev_dev(mdev), VFIO_IOMMU_NOTIFY, &events, &v->unmap_nb);
	if (ret)
		return ret;
	group = vfio_group_get_external_user_from_dev(mdev_dev(mdev));
	if (IS_ERR(group)) {
		vfio_unregister_notifier(mdev_dev(mdev), VFIO_IOMMU_NOTIFY, &v->unmap_nb);
		return PTR_ERR(group);
	}
	v->group = group;
	vpin_opened(v);
	return 0;
}

static void vpin_v1_release(struct mdev_device *mdev)
{
	struct vpin_device *v = mdev_get_drvdata(mdev);

	vpin_closed(v);
	vfio_group_put_external_user(v->group);
	v->group = NULL;
	vfio_unregister_notifier(mdev_dev(mdev), VFIO_IOMMU_NOTIFY, &v->unmap_nb);
}

static long vpin_v1_ioctl(struct mdev_device *mdev, unsigned int cmd, unsigned long arg)
{
	if (cmd != VFIOTRACE_PIN_IOCTL)
		return -ENOTTY;
	return vpin_request(mdev_get_drvdata(mdev), arg);
}

static ssize_t name_show(struct kobject *kobj, struct device *dev, char *buf)
{
	return sysfs_emit(buf, "vfiotrace pinning test device\n");
}
static MDEV_TYPE_ATTR_RO(name);

static ssize_t device_api_show(struct kobject *kobj, struct device *dev, char *buf)
{
	return sysfs_emit(buf, "%s\n", VFIO_DEVICE_API_PCI_STRING);
}
static MDEV_TYPE_ATTR_RO(device_api);

static ssize_t available_instances_show(struct kobject *kobj, struct device *dev, char *buf)
{
	return sysfs_emit(buf, "%d\n", VPIN_MAX_INSTANCES - atomic_read(&vpin_instances));
}
static MDEV_TYPE_ATTR_RO(available_instances);

static struct attribute *vpin_v1_type_attrs[] = {
	&mdev_type_attr_name.attr, &mdev_type_attr_device_api.attr,
	&mdev_type_attr_available_instances.attr, NULL,
};
/* The type's directory is "<parent's class>-pin", as 6.x names it. */
static struct attribute_group vpin_v1_type = { .name = "pin", .attrs = vpin_v1_type_attrs };
static struct attribute_group *vpin_v1_types[] = { &vpin_v1_type, NULL };

static const struct mdev_parent_ops vpin_v1_ops = {
	.owner = THIS_MODULE,
	.mdev_attr_groups = vpin_attr_groups,
	.supported_type_groups = vpin_v1_types,
	.create = vpin_v1_create,
	.remove = vpin_v1_remove,
	.open = vpin_v1_open,
	.release = vpin_v1_release,
	.ioctl = vpin_v1_ioctl,
};

static int vpin_register(void)
{
	return mdev_register_device(vpin_parent_dev, &vpin_v1_ops);
}

static void vpin_unregister(void)
{
	mdev_unregister_device(vpin_parent_dev);
}
#else
/* ---- 6.1+: a vfio_device driven by an mdev_driver --------------------- */

static long vpin_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);

	if (cmd != VFIOTRACE_PIN_IOCTL)
		return v->migratable ? vpin_pci_ioctl(v, cmd, (void __user *)arg) : -ENOTTY;
	return vpin_request(v, arg);
}

static void vpin_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	vpin_drop_range(container_of(vdev, struct vpin_device, vdev), iova, length);
}

static int vpin_open_device(struct vfio_device *vdev)
{
	vpin_opened(container_of(vdev, struct vpin_device, vdev));
	return 0;
}

static void vpin_close_device(struct vfio_device *vdev)
{
	vpin_closed(container_of(vdev, struct vpin_device, vdev));
}

static int vpin_init_dev(struct vfio_device *vdev)
{
	struct vpin_device *v = container_of(vdev, struct vpin_device, vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);

	vpin_setup(v);
	v->migratable = mdev->type == &vpin_mig_type;
	if (v->migratable) {
		vpin_config_init(v);
		vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
#if VPIN_HAS_PRE_COPY
		vdev->migration_flags |= VFIO_MIGRATION_PRE_COPY;
#endif
		vdev->mig_ops = &vpin_mig_ops;
	}
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
	.open_device = vpin_open_device,
	.close_device = vpin_close_device,
	.read = vpin_read,
	.write = vpin_write,
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

static struct mdev_type vpin_mig_type = {
	.sysfs_name = "mig",
	.pretty_name = "vfiotrace pinning test device, migratable (PCI, VFIO migration v2)",
};

static struct mdev_type *vpin_types[] = { &vpin_type, &vpin_mig_type };

static struct mdev_driver vpin_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.max_instances = VPIN_MAX_INSTANCES,
	.driver = {
		.name = "vfiotrace_pin",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = vpin_attr_groups,
	},
	.probe = vpin_probe,
	.remove = vpin_remove,
};

static int vpin_register(void)
{
	int ret = mdev_register_driver(&vpin_driver);

	if (ret)
		return ret;
	ret = mdev_register_parent(&vpin_parent, vpin_parent_dev, &vpin_driver, vpin_types,
				   ARRAY_SIZE(vpin_types));
	if (ret)
		mdev_unregister_driver(&vpin_driver);
	return ret;
}

static void vpin_unregister(void)
{
	mdev_unregister_parent(&vpin_parent);
	mdev_unregister_driver(&vpin_driver);
}
#endif /* 6.1+ */

static int __init vpin_init(void)
{
	int ret;

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
	vpin_class = class_create(THIS_MODULE, VPIN_NAME);
#else
	vpin_class = class_create(VPIN_NAME);
#endif
	if (IS_ERR(vpin_class))
		return PTR_ERR(vpin_class);
	vpin_parent_dev = device_create(vpin_class, NULL, MKDEV(0, 0), NULL, VPIN_NAME);
	if (IS_ERR(vpin_parent_dev)) {
		ret = PTR_ERR(vpin_parent_dev);
		goto out_class;
	}
	ret = vpin_register();
	if (ret)
		goto out_device;
	return 0;

out_device:
	device_destroy(vpin_class, MKDEV(0, 0));
out_class:
	class_destroy(vpin_class);
	return ret;
}

static void __exit vpin_exit(void)
{
	vpin_unregister();
	device_destroy(vpin_class, MKDEV(0, 0));
	class_destroy(vpin_class);
}

module_init(vpin_init);
module_exit(vpin_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfiotrace test device: pins, unpins and writes guest pages on request or on its own; migratable");
