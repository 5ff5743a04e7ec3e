import CVFIO
import Testing
import Trace

/// vfiotrace's own tables must agree with the kernel's <linux/vfio.h>.
@Suite("uapi numbers match <linux/vfio.h>")
struct UAPITests {
    @Test("request numbers")
    func requests() {
        #expect(VFIOUAPI.getAPIVersion == UInt64(cvfio_GET_API_VERSION))
        #expect(VFIOUAPI.checkExtension == UInt64(cvfio_CHECK_EXTENSION))
        #expect(VFIOUAPI.setIOMMU == UInt64(cvfio_SET_IOMMU))
        #expect(VFIOUAPI.groupGetStatus == UInt64(cvfio_GROUP_GET_STATUS))
        #expect(VFIOUAPI.groupSetContainer == UInt64(cvfio_GROUP_SET_CONTAINER))
        #expect(VFIOUAPI.groupUnsetContainer == UInt64(cvfio_GROUP_UNSET_CONTAINER))
        #expect(VFIOUAPI.groupGetDeviceFD == UInt64(cvfio_GROUP_GET_DEVICE_FD))
        #expect(VFIOUAPI.iommuGetInfo == UInt64(cvfio_IOMMU_GET_INFO))
        #expect(VFIOUAPI.iommuMapDMA == UInt64(cvfio_IOMMU_MAP_DMA))
        #expect(VFIOUAPI.iommuUnmapDMA == UInt64(cvfio_IOMMU_UNMAP_DMA))
        #expect(VFIOUAPI.iommuDirtyPages == UInt64(cvfio_IOMMU_DIRTY_PAGES))
        #expect(VFIOUAPI.iommuDirtyPages == 0x3B75)
    }

    @Test("struct sizes and offsets")
    func sizes() {
        #expect(Int(VFIOUAPI.dmaMapSize) == cvfio_sizeof_dma_map)
        #expect(Int(VFIOUAPI.dmaUnmapMinSize) == cvfio_sizeof_dma_unmap)
        #expect(Int(VFIOUAPI.bitmapSize) == cvfio_sizeof_bitmap)
        #expect(Int(VFIOUAPI.dirtyBitmapMinSize) == cvfio_sizeof_dirty_bitmap)
        #expect(Int(VFIOUAPI.dirtyBitmapGetSize) == cvfio_sizeof_dirty_bitmap_get)
        #expect(Int(VFIOUAPI.iommuInfoSize) == cvfio_sizeof_iommu_info)
        #expect(cvfio_sizeof_cap_migration == 32)
        #expect(cvfio_offsetof_cap_migration_pgsize_bitmap == 16)
        #expect(cvfio_offsetof_dirty_get_bitmap == 16)
        #expect(cvfio_sizeof_group_status == 8)
    }

    @Test("flag and capability values")
    func flags() {
        #expect(VFIOUAPI.unmapFlagGetDirtyBitmap == cvfio_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
        #expect(VFIOUAPI.unmapFlagAll == cvfio_DMA_UNMAP_FLAG_ALL)
        #expect(VFIOUAPI.unmapFlagVAddr == cvfio_DMA_UNMAP_FLAG_VADDR)
        #expect(VFIOUAPI.dirtyFlagStart == cvfio_DIRTY_PAGES_FLAG_START)
        #expect(VFIOUAPI.dirtyFlagStop == cvfio_DIRTY_PAGES_FLAG_STOP)
        #expect(VFIOUAPI.dirtyFlagGetBitmap == cvfio_DIRTY_PAGES_FLAG_GET_BITMAP)
        #expect(VFIOUAPI.capIOVARange == cvfio_CAP_IOVA_RANGE)
        #expect(VFIOUAPI.capMigration == cvfio_CAP_MIGRATION)
        #expect(VFIOUAPI.capDMAAvail == cvfio_CAP_DMA_AVAIL)
        #expect(VFIOUAPI.mapFlags.map(\.0) == [cvfio_DMA_MAP_FLAG_READ, cvfio_DMA_MAP_FLAG_WRITE, cvfio_DMA_MAP_FLAG_VADDR])
        #expect(VFIOUAPI.extensionNames.first { $0.1 == "TYPE1v2" }?.0 == UInt64(cvfio_TYPE1v2_IOMMU))
    }
}
