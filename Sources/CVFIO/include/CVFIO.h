#ifndef CVFIO_H
#define CVFIO_H
/*
 * The kernel's VFIO uapi as Swift sees it.  Function-like macros such as
 * _IO() do not import into Swift, so every request number and struct size
 * vfiotrace relies on is re-exported here as a plain constant taken from the
 * real header; tests compare vfiotrace's own tables against these.
 */
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>
#include "vfiotrace_pin.h"

/* Request numbers (all _IO(';', 100 + n): no size or direction bits). */
static const unsigned long cvfio_GET_API_VERSION = VFIO_GET_API_VERSION;
static const unsigned long cvfio_CHECK_EXTENSION = VFIO_CHECK_EXTENSION;
static const unsigned long cvfio_SET_IOMMU = VFIO_SET_IOMMU;
static const unsigned long cvfio_GROUP_GET_STATUS = VFIO_GROUP_GET_STATUS;
static const unsigned long cvfio_GROUP_SET_CONTAINER = VFIO_GROUP_SET_CONTAINER;
static const unsigned long cvfio_GROUP_UNSET_CONTAINER = VFIO_GROUP_UNSET_CONTAINER;
static const unsigned long cvfio_GROUP_GET_DEVICE_FD = VFIO_GROUP_GET_DEVICE_FD;
static const unsigned long cvfio_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO;
static const unsigned long cvfio_IOMMU_GET_INFO = VFIO_IOMMU_GET_INFO;
static const unsigned long cvfio_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO;
static const unsigned long cvfio_DEVICE_GET_IRQ_INFO = VFIO_DEVICE_GET_IRQ_INFO;
static const unsigned long cvfio_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS;
static const unsigned long cvfio_DEVICE_RESET = VFIO_DEVICE_RESET;
static const unsigned long cvfio_DEVICE_GET_PCI_HOT_RESET_INFO = VFIO_DEVICE_GET_PCI_HOT_RESET_INFO;
static const unsigned long cvfio_DEVICE_PCI_HOT_RESET = VFIO_DEVICE_PCI_HOT_RESET;
static const unsigned long cvfio_DEVICE_QUERY_GFX_PLANE = VFIO_DEVICE_QUERY_GFX_PLANE;
static const unsigned long cvfio_DEVICE_IOEVENTFD = VFIO_DEVICE_IOEVENTFD;
static const unsigned long cvfio_DEVICE_FEATURE = VFIO_DEVICE_FEATURE;
/* 6.2 and later; 0 when the build's header is older. */
#ifdef VFIO_MIG_GET_PRECOPY_INFO
static const unsigned long cvfio_MIG_GET_PRECOPY_INFO = VFIO_MIG_GET_PRECOPY_INFO;
#else
static const unsigned long cvfio_MIG_GET_PRECOPY_INFO = 0;
#endif

static const unsigned long cvfio_IOMMU_MAP_DMA = VFIO_IOMMU_MAP_DMA;
static const unsigned long cvfio_IOMMU_UNMAP_DMA = VFIO_IOMMU_UNMAP_DMA;
static const unsigned long cvfio_IOMMU_DIRTY_PAGES = VFIO_IOMMU_DIRTY_PAGES;

/* Extension and IOMMU type ids. */
static const int cvfio_TYPE1_IOMMU = VFIO_TYPE1_IOMMU;
static const int cvfio_TYPE1v2_IOMMU = VFIO_TYPE1v2_IOMMU;
static const int cvfio_API_VERSION = VFIO_API_VERSION;

/* Flags. */
static const uint32_t cvfio_DMA_MAP_FLAG_READ = VFIO_DMA_MAP_FLAG_READ;
static const uint32_t cvfio_DMA_MAP_FLAG_WRITE = VFIO_DMA_MAP_FLAG_WRITE;
static const uint32_t cvfio_DMA_MAP_FLAG_VADDR = VFIO_DMA_MAP_FLAG_VADDR;
static const uint32_t cvfio_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
static const uint32_t cvfio_DMA_UNMAP_FLAG_ALL = VFIO_DMA_UNMAP_FLAG_ALL;
static const uint32_t cvfio_DMA_UNMAP_FLAG_VADDR = VFIO_DMA_UNMAP_FLAG_VADDR;
static const uint32_t cvfio_DIRTY_PAGES_FLAG_START = VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
static const uint32_t cvfio_DIRTY_PAGES_FLAG_STOP = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
static const uint32_t cvfio_DIRTY_PAGES_FLAG_GET_BITMAP = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
static const uint32_t cvfio_IOMMU_INFO_PGSIZES = VFIO_IOMMU_INFO_PGSIZES;
static const uint32_t cvfio_IOMMU_INFO_CAPS = VFIO_IOMMU_INFO_CAPS;
static const uint16_t cvfio_CAP_IOVA_RANGE = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
static const uint16_t cvfio_CAP_MIGRATION = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
static const uint16_t cvfio_CAP_DMA_AVAIL = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
static const uint32_t cvfio_GROUP_FLAGS_VIABLE = VFIO_GROUP_FLAGS_VIABLE;
static const uint32_t cvfio_GROUP_FLAGS_CONTAINER_SET = VFIO_GROUP_FLAGS_CONTAINER_SET;

/* VFIO_DEVICE_FEATURE and device migration (MIG_DATA_SIZE and PRE_COPY
 * are 6.2 and later: 0 when the build's header is older). */
static const uint32_t cvfio_DEVICE_FEATURE_GET = VFIO_DEVICE_FEATURE_GET;
static const uint32_t cvfio_DEVICE_FEATURE_SET = VFIO_DEVICE_FEATURE_SET;
static const uint32_t cvfio_DEVICE_FEATURE_PROBE = VFIO_DEVICE_FEATURE_PROBE;
static const uint32_t cvfio_DEVICE_FEATURE_MIGRATION = VFIO_DEVICE_FEATURE_MIGRATION;
static const uint32_t cvfio_DEVICE_FEATURE_MIG_DEVICE_STATE = VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
#ifdef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
static const uint32_t cvfio_DEVICE_FEATURE_MIG_DATA_SIZE = VFIO_DEVICE_FEATURE_MIG_DATA_SIZE;
#else
static const uint32_t cvfio_DEVICE_FEATURE_MIG_DATA_SIZE = 0;
#endif
static const uint32_t cvfio_MIGRATION_STOP_COPY = VFIO_MIGRATION_STOP_COPY;
static const uint32_t cvfio_MIGRATION_P2P = VFIO_MIGRATION_P2P;
static const uint32_t cvfio_DEVICE_STATE_STOP = VFIO_DEVICE_STATE_STOP;
static const uint32_t cvfio_DEVICE_STATE_RUNNING = VFIO_DEVICE_STATE_RUNNING;
static const uint32_t cvfio_DEVICE_STATE_STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY;
static const uint32_t cvfio_DEVICE_STATE_RESUMING = VFIO_DEVICE_STATE_RESUMING;
static const uint32_t cvfio_DEVICE_STATE_RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P;
static const uint32_t cvfio_DEVICE_FLAGS_PCI = VFIO_DEVICE_FLAGS_PCI;
static const uint32_t cvfio_REGION_INFO_FLAG_MMAP = VFIO_REGION_INFO_FLAG_MMAP;
static const uint32_t cvfio_IRQ_INFO_NORESIZE = VFIO_IRQ_INFO_NORESIZE;
static const size_t cvfio_sizeof_mig_state = sizeof(struct vfio_device_feature_mig_state);
static const size_t cvfio_offsetof_mig_state_data_fd = offsetof(struct vfio_device_feature_mig_state, data_fd);

/* Struct sizes (LP64). */
static const size_t cvfio_sizeof_dma_map = sizeof(struct vfio_iommu_type1_dma_map);
static const size_t cvfio_sizeof_dma_unmap = sizeof(struct vfio_iommu_type1_dma_unmap);
static const size_t cvfio_sizeof_bitmap = sizeof(struct vfio_bitmap);
static const size_t cvfio_sizeof_dirty_bitmap = sizeof(struct vfio_iommu_type1_dirty_bitmap);
static const size_t cvfio_sizeof_dirty_bitmap_get = sizeof(struct vfio_iommu_type1_dirty_bitmap_get);
static const size_t cvfio_sizeof_iommu_info = sizeof(struct vfio_iommu_type1_info);
static const size_t cvfio_sizeof_cap_header = sizeof(struct vfio_info_cap_header);
static const size_t cvfio_sizeof_cap_migration = sizeof(struct vfio_iommu_type1_info_cap_migration);
static const size_t cvfio_sizeof_group_status = sizeof(struct vfio_group_status);
static const size_t cvfio_sizeof_device_info = sizeof(struct vfio_device_info);
static const size_t cvfio_sizeof_region_info = sizeof(struct vfio_region_info);
static const size_t cvfio_sizeof_irq_info = sizeof(struct vfio_irq_info);
static const size_t cvfio_sizeof_device_feature = sizeof(struct vfio_device_feature);
static const size_t cvfio_sizeof_cap_iova_range = sizeof(struct vfio_iommu_type1_info_cap_iova_range);
static const size_t cvfio_sizeof_iova_range = sizeof(struct vfio_iova_range);
static const size_t cvfio_sizeof_dma_avail = sizeof(struct vfio_iommu_type1_info_dma_avail);

/* Field offsets the decoders depend on. */
static const size_t cvfio_offsetof_dirty_get_bitmap = offsetof(struct vfio_iommu_type1_dirty_bitmap_get, bitmap);
static const size_t cvfio_offsetof_cap_migration_pgsize_bitmap = offsetof(struct vfio_iommu_type1_info_cap_migration, pgsize_bitmap);
static const size_t cvfio_offsetof_info_cap_offset = offsetof(struct vfio_iommu_type1_info, cap_offset);

/* Field offsets the real-VFIO backend writes arguments at. */
static const size_t cvfio_offsetof_dma_map_vaddr = offsetof(struct vfio_iommu_type1_dma_map, vaddr);
static const size_t cvfio_offsetof_dma_map_iova = offsetof(struct vfio_iommu_type1_dma_map, iova);
static const size_t cvfio_offsetof_dma_map_size = offsetof(struct vfio_iommu_type1_dma_map, size);
static const size_t cvfio_offsetof_dma_unmap_iova = offsetof(struct vfio_iommu_type1_dma_unmap, iova);
static const size_t cvfio_offsetof_dma_unmap_size = offsetof(struct vfio_iommu_type1_dma_unmap, size);
static const size_t cvfio_offsetof_dma_unmap_data = offsetof(struct vfio_iommu_type1_dma_unmap, data);
static const size_t cvfio_offsetof_bitmap_pgsize = offsetof(struct vfio_bitmap, pgsize);
static const size_t cvfio_offsetof_bitmap_size = offsetof(struct vfio_bitmap, size);
static const size_t cvfio_offsetof_bitmap_data = offsetof(struct vfio_bitmap, data);
static const size_t cvfio_offsetof_dirty_bitmap_data = offsetof(struct vfio_iommu_type1_dirty_bitmap, data);
static const size_t cvfio_offsetof_dirty_get_iova = offsetof(struct vfio_iommu_type1_dirty_bitmap_get, iova);
static const size_t cvfio_offsetof_dirty_get_size = offsetof(struct vfio_iommu_type1_dirty_bitmap_get, size);
static const size_t cvfio_offsetof_info_iova_pgsizes = offsetof(struct vfio_iommu_type1_info, iova_pgsizes);
static const size_t cvfio_offsetof_group_status_flags = offsetof(struct vfio_group_status, flags);
static const size_t cvfio_offsetof_info_flags = offsetof(struct vfio_iommu_type1_info, flags);
static const size_t cvfio_offsetof_cap_migration_flags = offsetof(struct vfio_iommu_type1_info_cap_migration, flags);
static const size_t cvfio_offsetof_cap_migration_max_dirty = offsetof(struct vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size);
static const size_t cvfio_offsetof_cap_iova_range_nr = offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas);
static const size_t cvfio_offsetof_cap_iova_range_ranges = offsetof(struct vfio_iommu_type1_info_cap_iova_range, iova_ranges);
static const size_t cvfio_offsetof_dma_avail_avail = offsetof(struct vfio_iommu_type1_info_dma_avail, avail);
static const size_t cvfio_offsetof_device_info_num_regions = offsetof(struct vfio_device_info, num_regions);
static const size_t cvfio_offsetof_device_info_num_irqs = offsetof(struct vfio_device_info, num_irqs);
static const size_t cvfio_offsetof_device_info_cap_offset = offsetof(struct vfio_device_info, cap_offset);
static const size_t cvfio_offsetof_region_info_index = offsetof(struct vfio_region_info, index);
static const size_t cvfio_offsetof_region_info_cap_offset = offsetof(struct vfio_region_info, cap_offset);
static const size_t cvfio_offsetof_region_info_size = offsetof(struct vfio_region_info, size);
static const size_t cvfio_offsetof_region_info_offset = offsetof(struct vfio_region_info, offset);
static const size_t cvfio_offsetof_irq_info_index = offsetof(struct vfio_irq_info, index);
static const size_t cvfio_offsetof_irq_info_count = offsetof(struct vfio_irq_info, count);
static const size_t cvfio_offsetof_device_feature_flags = offsetof(struct vfio_device_feature, flags);
static const size_t cvfio_offsetof_device_feature_data = offsetof(struct vfio_device_feature, data);
static const uint32_t cvfio_DEVICE_FEATURE_MASK = VFIO_DEVICE_FEATURE_MASK;

/* The vfiotrace_pin test device's control ioctl (kmod/). */
static const unsigned long cvfio_PIN_IOCTL = VFIOTRACE_PIN_IOCTL;

/* ioctl(2) with a fixed signature.  Returns the raw result; errno is left as
 * the kernel set it and is also returned through *err (0 on success). */
int cvfio_ioctl(int fd, unsigned long request, void *arg, int *err);

#endif
