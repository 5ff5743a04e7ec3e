import CVFIO
import TestSupport
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
        #expect(VFIOUAPI.mapFlagRead == cvfio_DMA_MAP_FLAG_READ)
        #expect(VFIOUAPI.mapFlagWrite == cvfio_DMA_MAP_FLAG_WRITE)
        #expect(VFIOUAPI.mapFlagVAddr == cvfio_DMA_MAP_FLAG_VADDR)
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

    /// Moved from RealVFIOBackendTests.layouts (the backend's own offset
    /// table is gone): every offset the recorder reads and the backend
    /// writes, now one codec's.
    @Test("every struct's size and field offsets in the codec match <linux/vfio.h>")
    func codecLayouts() {
        #expect(UAPI.DMAMap.size == cvfio_sizeof_dma_map)
        #expect(UAPI.DMAMap.Offset.vaddr == cvfio_offsetof_dma_map_vaddr)
        #expect(UAPI.DMAMap.Offset.iova == cvfio_offsetof_dma_map_iova)
        #expect(UAPI.DMAMap.Offset.size == cvfio_offsetof_dma_map_size)
        #expect(UAPI.DMAUnmap.size == cvfio_sizeof_dma_unmap)
        #expect(UAPI.DMAUnmap.Offset.iova == cvfio_offsetof_dma_unmap_iova)
        #expect(UAPI.DMAUnmap.Offset.size == cvfio_offsetof_dma_unmap_size)
        #expect(UAPI.DMAUnmap.Offset.bitmap == cvfio_offsetof_dma_unmap_data)
        #expect(UAPI.DMAUnmap.sizeWithBitmap == 48)
        #expect(UAPI.Bitmap.size == cvfio_sizeof_bitmap)
        #expect(UAPI.Bitmap.Offset.pgsize == cvfio_offsetof_bitmap_pgsize)
        #expect(UAPI.Bitmap.Offset.size == cvfio_offsetof_bitmap_size)
        #expect(UAPI.Bitmap.Offset.data == cvfio_offsetof_bitmap_data)
        #expect(UAPI.DirtyBitmap.size == cvfio_sizeof_dirty_bitmap)
        #expect(UAPI.DirtyBitmap.Offset.data == cvfio_offsetof_dirty_bitmap_data)
        #expect(UAPI.DirtyBitmap.Range.size == cvfio_sizeof_dirty_bitmap_get)
        #expect(UAPI.DirtyBitmap.Range.Offset.iova == cvfio_offsetof_dirty_get_iova)
        #expect(UAPI.DirtyBitmap.Range.Offset.size == cvfio_offsetof_dirty_get_size)
        #expect(UAPI.DirtyBitmap.Range.Offset.bitmap == cvfio_offsetof_dirty_get_bitmap)
        #expect(UAPI.DirtyBitmap.sizeWithRange == 48)
        #expect(UAPI.GroupStatus.size == cvfio_sizeof_group_status)
        #expect(UAPI.GroupStatus.Offset.flags == cvfio_offsetof_group_status_flags)
        typealias L = UAPI.IOMMUInfoLayout
        #expect(L.size == cvfio_sizeof_iommu_info)
        #expect(L.flags == cvfio_offsetof_info_flags)
        #expect(L.iovaPgsizes == cvfio_offsetof_info_iova_pgsizes)
        #expect(L.capOffset == cvfio_offsetof_info_cap_offset)
        #expect(L.capHeaderSize == cvfio_sizeof_cap_header)
        #expect(L.migrationCapSize == cvfio_sizeof_cap_migration)
        #expect(L.migrationFlags == cvfio_offsetof_cap_migration_flags)
        #expect(L.migrationPgsizeBitmap == cvfio_offsetof_cap_migration_pgsize_bitmap)
        #expect(L.migrationMaxDirtyBitmapSize == cvfio_offsetof_cap_migration_max_dirty)
        #expect(L.iovaRangeCount == cvfio_offsetof_cap_iova_range_nr)
        #expect(L.iovaRanges == cvfio_offsetof_cap_iova_range_ranges)
        #expect(L.iovaRangeSize == cvfio_sizeof_iova_range)
        #expect(L.dmaAvail == cvfio_offsetof_dma_avail_avail)
        #expect(L.dmaAvail + 4 == cvfio_sizeof_dma_avail)
        // 20 in headers before 6.6, 24 with the explicit pad after.
        #expect([UAPI.DeviceInfo.size, UAPI.DeviceInfo.sizeWithPad].contains(cvfio_sizeof_device_info))
        #expect(UAPI.DeviceInfo.Offset.numRegions == cvfio_offsetof_device_info_num_regions)
        #expect(UAPI.DeviceInfo.Offset.numIRQs == cvfio_offsetof_device_info_num_irqs)
        #expect(UAPI.DeviceInfo.Offset.capOffset == cvfio_offsetof_device_info_cap_offset)
        #expect(UAPI.RegionInfo.size == cvfio_sizeof_region_info)
        #expect(UAPI.RegionInfo.Offset.index == cvfio_offsetof_region_info_index)
        #expect(UAPI.RegionInfo.Offset.capOffset == cvfio_offsetof_region_info_cap_offset)
        #expect(UAPI.RegionInfo.Offset.size == cvfio_offsetof_region_info_size)
        #expect(UAPI.RegionInfo.Offset.offset == cvfio_offsetof_region_info_offset)
        #expect(UAPI.IRQInfo.size == cvfio_sizeof_irq_info)
        #expect(UAPI.IRQInfo.Offset.index == cvfio_offsetof_irq_info_index)
        #expect(UAPI.IRQInfo.Offset.count == cvfio_offsetof_irq_info_count)
        #expect(UAPI.DeviceFeature.size == cvfio_sizeof_device_feature)
        #expect(UAPI.DeviceFeature.Offset.flags == cvfio_offsetof_device_feature_flags)
        #expect(UAPI.DeviceFeature.Offset.data == cvfio_offsetof_device_feature_data)
        #expect(UAPI.DeviceFeature.featureMask == cvfio_DEVICE_FEATURE_MASK)
    }

    @Test("every struct survives encode then decode, and the encoding puts each field where the header says")
    func codecRoundTrips() {
        var g = SplitMix(seed: 7)
        for _ in 0..<200 {
            let bm = UAPI.Bitmap(pgsize: g.next(), size: g.next(), data: g.next())
            let map = UAPI.DMAMap(argsz: UInt32(truncatingIfNeeded: g.next()), flags: UInt32(truncatingIfNeeded: g.next()),
                                  vaddr: g.next(), iova: g.next(), size: g.next())
            #expect(UAPI.DMAMap(decoding: map.bytes) == map)
            #expect(map.bytes.le64(at: cvfio_offsetof_dma_map_iova) == map.iova)
            let unmap = UAPI.DMAUnmap(argsz: 48, flags: 1, iova: g.next(), size: g.next(), bitmap: bm)
            #expect(UAPI.DMAUnmap(decoding: unmap.bytes) == unmap)
            #expect(unmap.bytes.le64(at: cvfio_offsetof_dma_unmap_data + cvfio_offsetof_bitmap_data) == bm.data)
            #expect(UAPI.DMAUnmap(decoding: Array(unmap.bytes.prefix(24))).bitmap == nil)
            let dirty = UAPI.DirtyBitmap(argsz: 48, flags: 4, range: .init(iova: g.next(), size: g.next(), bitmap: bm))
            #expect(UAPI.DirtyBitmap(decoding: dirty.bytes) == dirty)
            #expect(dirty.bytes.le64(at: cvfio_offsetof_dirty_bitmap_data + cvfio_offsetof_dirty_get_size) == dirty.range?.size)
            let status = UAPI.GroupStatus(argsz: 8, flags: UInt32(truncatingIfNeeded: g.next()))
            #expect(UAPI.GroupStatus(decoding: status.bytes) == status)
            let dev = UAPI.DeviceInfo(argsz: 24, flags: 3, numRegions: UInt32(truncatingIfNeeded: g.next()),
                                      numIRQs: UInt32(truncatingIfNeeded: g.next()), capOffset: 0)
            #expect(UAPI.DeviceInfo(decoding: dev.bytes) == dev)
            let region = UAPI.RegionInfo(argsz: 32, flags: 7, index: 2, capOffset: 0, size: g.next(), offset: g.next())
            #expect(UAPI.RegionInfo(decoding: region.bytes) == region)
            let irq = UAPI.IRQInfo(argsz: 16, flags: 1, index: 3, count: UInt32(truncatingIfNeeded: g.next()))
            #expect(UAPI.IRQInfo(decoding: irq.bytes) == irq)
            let feature = UAPI.DeviceFeature(argsz: 16, flags: 0x2_0002, data: [1, 2, 3, 4, 5, 6, 7, 8])
            #expect(UAPI.DeviceFeature(decoding: feature.bytes) == feature && feature.feature == 2)
        }
    }
}
