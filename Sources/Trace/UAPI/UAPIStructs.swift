/// The byte layouts of the VFIO uapi structs vfiotrace reads and writes
/// (`include/uapi/linux/vfio.h`, LP64), each with its size, field offsets,
/// a decoder and an encoder. The recorder decodes what a program passed,
/// the real-VFIO backend encodes what it passes to the kernel; both go
/// through these, and `Tests/TraceTests/UAPITests.swift` checks every size
/// and offset against the header. See `docs/kernel-rules.md#uapi`.
public enum UAPI {
    /// `struct vfio_iommu_type1_dma_map`: MAP_DMA's argument.
    public struct DMAMap: Equatable, Sendable {
        public static let size = 32
        public enum Offset {
            public static let argsz = 0, flags = 4, vaddr = 8, iova = 16, size = 24
        }
        public var argsz: UInt32
        public var flags: UInt32
        public var vaddr: UInt64
        public var iova: UInt64
        public var size: UInt64

        public init(argsz: UInt32, flags: UInt32, vaddr: UInt64, iova: UInt64, size: UInt64) {
            self.argsz = argsz
            self.flags = flags
            self.vaddr = vaddr
            self.iova = iova
            self.size = size
        }

        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), vaddr: b.le64(at: Offset.vaddr),
                      iova: b.le64(at: Offset.iova), size: b.le64(at: Offset.size))
        }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            b.putLE64(vaddr, at: Offset.vaddr)
            b.putLE64(iova, at: Offset.iova)
            b.putLE64(size, at: Offset.size)
            return b
        }
    }

    /// `struct vfio_bitmap`: the bitmap of UNMAP_DMA and GET_BITMAP.
    public struct Bitmap: Equatable, Sendable {
        public static let size = 24
        public enum Offset {
            public static let pgsize = 0, size = 8, data = 16
        }
        public var pgsize: UInt64
        /// The buffer's length in bytes.
        public var size: UInt64
        /// The user pointer to the buffer.
        public var data: UInt64

        public init(pgsize: UInt64, size: UInt64, data: UInt64) {
            self.pgsize = pgsize
            self.size = size
            self.data = data
        }

        public init(decoding b: [UInt8], at o: Int = 0) {
            self.init(pgsize: b.le64(at: o + Offset.pgsize), size: b.le64(at: o + Offset.size), data: b.le64(at: o + Offset.data))
        }

        public func encode(into b: inout [UInt8], at o: Int) {
            b.putLE64(pgsize, at: o + Offset.pgsize)
            b.putLE64(size, at: o + Offset.size)
            b.putLE64(data, at: o + Offset.data)
        }
    }

    /// `struct vfio_iommu_type1_dma_unmap`, with the `struct vfio_bitmap` in
    /// `data[]` when GET_DIRTY_BITMAP is set. The kernel writes the bytes
    /// it unmapped back into `size`.
    public struct DMAUnmap: Equatable, Sendable {
        /// Without `data[]`.
        public static let size = 24
        /// With the bitmap: what GET_DIRTY_BITMAP needs `argsz` to cover.
        public static let sizeWithBitmap = size + Bitmap.size
        public enum Offset {
            public static let argsz = 0, flags = 4, iova = 8, size = 16, bitmap = 24
        }
        public var argsz: UInt32
        public var flags: UInt32
        public var iova: UInt64
        public var size: UInt64
        public var bitmap: Bitmap?

        public init(argsz: UInt32, flags: UInt32, iova: UInt64, size: UInt64, bitmap: Bitmap? = nil) {
            self.argsz = argsz
            self.flags = flags
            self.iova = iova
            self.size = size
            self.bitmap = bitmap
        }

        /// The header; the bitmap is decoded when `b` holds it.
        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), iova: b.le64(at: Offset.iova),
                      size: b.le64(at: Offset.size),
                      bitmap: b.count >= Self.sizeWithBitmap ? Bitmap(decoding: b, at: Offset.bitmap) : nil)
        }

        /// The written-back `size` of an UNMAP's argument after the call.
        public static func sizeOut(_ b: [UInt8]) -> UInt64 { b.le64(at: Offset.size) }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithBitmap)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            b.putLE64(iova, at: Offset.iova)
            b.putLE64(size, at: Offset.size)
            bitmap?.encode(into: &b, at: Offset.bitmap)
            return b
        }
    }

    /// `struct vfio_iommu_type1_dirty_bitmap` (the DIRTY_PAGES header) and,
    /// for GET_BITMAP, the `struct vfio_iommu_type1_dirty_bitmap_get` in
    /// its `data[]`.
    public struct DirtyBitmap: Equatable, Sendable {
        /// The header alone (START, STOP).
        public static let size = 8
        /// Header and range: what GET_BITMAP needs `argsz` to cover.
        public static let sizeWithRange = size + Range.size
        public enum Offset {
            public static let argsz = 0, flags = 4, data = 8
        }

        /// `struct vfio_iommu_type1_dirty_bitmap_get`.
        public struct Range: Equatable, Sendable {
            public static let size = 40
            public enum Offset {
                public static let iova = 0, size = 8, bitmap = 16
            }
            public var iova: UInt64
            public var size: UInt64
            public var bitmap: Bitmap

            public init(iova: UInt64, size: UInt64, bitmap: Bitmap) {
                self.iova = iova
                self.size = size
                self.bitmap = bitmap
            }
        }

        public var argsz: UInt32
        public var flags: UInt32
        public var range: Range?

        public init(argsz: UInt32, flags: UInt32, range: Range? = nil) {
            self.argsz = argsz
            self.flags = flags
            self.range = range
        }

        /// The header; the range is decoded when `b` holds it.
        public init(decoding b: [UInt8]) {
            var range: Range? = nil
            if b.count >= Self.sizeWithRange {
                let o = Offset.data
                range = Range(iova: b.le64(at: o + Range.Offset.iova), size: b.le64(at: o + Range.Offset.size),
                              bitmap: Bitmap(decoding: b, at: o + Range.Offset.bitmap))
            }
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), range: range)
        }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithRange)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            if let range {
                b.putLE64(range.iova, at: Offset.data + Range.Offset.iova)
                b.putLE64(range.size, at: Offset.data + Range.Offset.size)
                range.bitmap.encode(into: &b, at: Offset.data + Range.Offset.bitmap)
            }
            return b
        }
    }

    /// `struct vfio_group_status`: GROUP_GET_STATUS.
    public struct GroupStatus: Equatable, Sendable {
        public static let size = 8
        public enum Offset {
            public static let argsz = 0, flags = 4
        }
        public var argsz: UInt32
        public var flags: UInt32

        public init(argsz: UInt32, flags: UInt32 = 0) {
            self.argsz = argsz
            self.flags = flags
        }

        public init(decoding b: [UInt8]) { self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags)) }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            return b
        }
    }

    /// `struct vfio_device_info`: DEVICE_GET_INFO. 20 bytes of fields; 6.6
    /// added an explicit pad to 24 (a881b496941f), so headers differ.
    public struct DeviceInfo: Equatable, Sendable {
        public static let size = 20
        public static let sizeWithPad = 24
        public enum Offset {
            public static let argsz = 0, flags = 4, numRegions = 8, numIRQs = 12, capOffset = 16
        }
        public var argsz: UInt32
        public var flags: UInt32
        public var numRegions: UInt32
        public var numIRQs: UInt32
        public var capOffset: UInt32

        public init(argsz: UInt32, flags: UInt32 = 0, numRegions: UInt32 = 0, numIRQs: UInt32 = 0, capOffset: UInt32 = 0) {
            self.argsz = argsz
            self.flags = flags
            self.numRegions = numRegions
            self.numIRQs = numIRQs
            self.capOffset = capOffset
        }

        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), numRegions: b.le32(at: Offset.numRegions),
                      numIRQs: b.le32(at: Offset.numIRQs), capOffset: b.le32(at: Offset.capOffset))
        }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithPad)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            b.putLE32(numRegions, at: Offset.numRegions)
            b.putLE32(numIRQs, at: Offset.numIRQs)
            b.putLE32(capOffset, at: Offset.capOffset)
            return b
        }
    }

    /// `struct vfio_region_info`: DEVICE_GET_REGION_INFO.
    public struct RegionInfo: Equatable, Sendable {
        public static let size = 32
        public enum Offset {
            public static let argsz = 0, flags = 4, index = 8, capOffset = 12, size = 16, offset = 24
        }
        public var argsz: UInt32
        public var flags: UInt32
        public var index: UInt32
        public var capOffset: UInt32
        public var size: UInt64
        public var offset: UInt64

        public init(argsz: UInt32, flags: UInt32 = 0, index: UInt32, capOffset: UInt32 = 0, size: UInt64 = 0, offset: UInt64 = 0) {
            self.argsz = argsz
            self.flags = flags
            self.index = index
            self.capOffset = capOffset
            self.size = size
            self.offset = offset
        }

        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), index: b.le32(at: Offset.index),
                      capOffset: b.le32(at: Offset.capOffset), size: b.le64(at: Offset.size), offset: b.le64(at: Offset.offset))
        }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            b.putLE32(index, at: Offset.index)
            b.putLE32(capOffset, at: Offset.capOffset)
            b.putLE64(size, at: Offset.size)
            b.putLE64(offset, at: Offset.offset)
            return b
        }
    }

    /// `struct vfio_irq_info`: DEVICE_GET_IRQ_INFO.
    public struct IRQInfo: Equatable, Sendable {
        public static let size = 16
        public enum Offset {
            public static let argsz = 0, flags = 4, index = 8, count = 12
        }
        public var argsz: UInt32
        public var flags: UInt32
        public var index: UInt32
        public var count: UInt32

        public init(argsz: UInt32, flags: UInt32 = 0, index: UInt32, count: UInt32 = 0) {
            self.argsz = argsz
            self.flags = flags
            self.index = index
            self.count = count
        }

        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags), index: b.le32(at: Offset.index),
                      count: b.le32(at: Offset.count))
        }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            b.putLE32(index, at: Offset.index)
            b.putLE32(count, at: Offset.count)
            return b
        }
    }

    /// `struct vfio_device_feature`: DEVICE_FEATURE's header; the feature's
    /// own struct follows in `data[]`. The low 16 bits of `flags` name the
    /// feature, the high bits say GET, SET or PROBE.
    public struct DeviceFeature: Equatable, Sendable {
        public static let size = 8
        public enum Offset {
            public static let argsz = 0, flags = 4, data = 8
        }
        public static let featureMask: UInt32 = 0xFFFF
        public var argsz: UInt32
        public var flags: UInt32
        public var data: [UInt8]

        public init(argsz: UInt32, flags: UInt32, data: [UInt8] = []) {
            self.argsz = argsz
            self.flags = flags
            self.data = data
        }

        public init(decoding b: [UInt8]) {
            self.init(argsz: b.le32(at: Offset.argsz), flags: b.le32(at: Offset.flags),
                      data: b.count > Offset.data ? Array(b[Offset.data...]) : [])
        }

        public var feature: UInt32 { flags & Self.featureMask }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            b.putLE32(argsz, at: Offset.argsz)
            b.putLE32(flags, at: Offset.flags)
            return b + data
        }
    }

    /// `struct vfio_iommu_type1_info` without its capabilities, and the
    /// offsets of the capabilities vfiotrace decodes (see ``IOMMUInfo``).
    public enum IOMMUInfoLayout {
        /// 24 bytes (`cap_offset` then the explicit pad since 6.6).
        public static let size = 24
        public static let argsz = 0, flags = 4, iovaPgsizes = 8, capOffset = 16
        /// `struct vfio_info_cap_header`: id (u16), version (u16), next (u32).
        public static let capHeaderSize = 8
        /// `struct vfio_iommu_type1_info_cap_migration`, 32 bytes.
        public static let migrationCapSize = 32
        public static let migrationFlags = 8, migrationPgsizeBitmap = 16, migrationMaxDirtyBitmapSize = 24
        /// `struct vfio_iommu_type1_info_cap_iova_range`: the range count at
        /// 8, then 16-byte ranges from 16.
        public static let iovaRangeCount = 8, iovaRanges = 16, iovaRangeSize = 16
        /// `struct vfio_iommu_type1_info_dma_avail`: `avail` at 8.
        public static let dmaAvail = 8
    }
}
