/// One little-endian field of a uapi struct: where it sits and which
/// property of the Swift value holds it.
public struct UAPIField<S> {
    public let offset: Int
    let read: (inout S, [UInt8], Int) -> Void
    let write: (S, inout [UInt8], Int) -> Void

    public static func u32(_ key: WritableKeyPath<S, UInt32>, at offset: Int) -> Self {
        Self(offset: offset, read: { s, b, base in s[keyPath: key] = b.le32(at: base + offset) },
             write: { s, b, base in b.putLE32(s[keyPath: key], at: base + offset) })
    }

    public static func u64(_ key: WritableKeyPath<S, UInt64>, at offset: Int) -> Self {
        Self(offset: offset, read: { s, b, base in s[keyPath: key] = b.le64(at: base + offset) },
             write: { s, b, base in b.putLE64(s[keyPath: key], at: base + offset) })
    }
}

/// A fixed-layout uapi struct: its size and its fields are the whole codec;
/// decoding and encoding are the same for every struct.
public protocol UAPIStruct: Equatable, Sendable {
    /// All fields zero.
    init()
    /// Bytes of the encoding (the fixed part, without a flexible `data[]`).
    static var size: Int { get }
    static var fields: [UAPIField<Self>] { get }
}

extension UAPIStruct {
    /// The fields at `base` of `b`; bytes past the end read as 0.
    public init(decoding b: [UInt8], at base: Int = 0) {
        self.init()
        for f in Self.fields { f.read(&self, b, base) }
    }

    public func encode(into b: inout [UInt8], at base: Int = 0) {
        for f in Self.fields { f.write(self, &b, base) }
    }

    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        encode(into: &b)
        return b
    }
}

/// The byte layouts of the VFIO uapi structs vfiotrace reads and writes
/// (`include/uapi/linux/vfio.h`, LP64), each with its size, field offsets
/// and fields. The recorder decodes what a program passed, the real-VFIO
/// backend encodes what it passes to the kernel; both go through these, and
/// `Tests/TraceTests/UAPITests.swift` checks every size and offset against
/// the header. See `docs/kernel-rules.md#uapi`.
public enum UAPI {
    /// `struct vfio_iommu_type1_dma_map`: MAP_DMA's argument.
    public struct DMAMap: UAPIStruct {
        public static let size = 32
        public enum Offset {
            public static let argsz = 0, flags = 4, vaddr = 8, iova = 16, size = 24
        }
        public static var fields: [UAPIField<Self>] {
            [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags), .u64(\.vaddr, at: Offset.vaddr),
             .u64(\.iova, at: Offset.iova), .u64(\.size, at: Offset.size)]
        }
        public var argsz: UInt32 = 0, flags: UInt32 = 0
        public var vaddr: UInt64 = 0, iova: UInt64 = 0, size: UInt64 = 0

        public init() {}
        public init(argsz: UInt32, flags: UInt32, vaddr: UInt64, iova: UInt64, size: UInt64) {
            (self.argsz, self.flags, self.vaddr, self.iova, self.size) = (argsz, flags, vaddr, iova, size)
        }
    }

    /// `struct vfio_bitmap`: the bitmap of UNMAP_DMA and GET_BITMAP.
    public struct Bitmap: UAPIStruct {
        public static let size = 24
        public enum Offset {
            public static let pgsize = 0, size = 8, data = 16
        }
        public static var fields: [UAPIField<Self>] {
            [.u64(\.pgsize, at: Offset.pgsize), .u64(\.size, at: Offset.size), .u64(\.data, at: Offset.data)]
        }
        public var pgsize: UInt64 = 0
        /// The buffer's length in bytes.
        public var size: UInt64 = 0
        /// The user pointer to the buffer.
        public var data: UInt64 = 0

        public init() {}
        public init(pgsize: UInt64, size: UInt64, data: UInt64) {
            (self.pgsize, self.size, self.data) = (pgsize, size, data)
        }
    }

    /// `struct vfio_iommu_type1_dma_unmap`, with the `struct vfio_bitmap` in
    /// `data[]` when GET_DIRTY_BITMAP is set. The kernel writes the bytes
    /// it unmapped back into `size`.
    public struct DMAUnmap: UAPIStruct {
        /// Without `data[]`.
        public static let size = 24
        /// With the bitmap: what GET_DIRTY_BITMAP needs `argsz` to cover.
        public static let sizeWithBitmap = size + Bitmap.size
        public enum Offset {
            public static let argsz = 0, flags = 4, iova = 8, size = 16, bitmap = 24
        }
        public static var fields: [UAPIField<Self>] {
            [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags), .u64(\.iova, at: Offset.iova),
             .u64(\.size, at: Offset.size)]
        }
        public var argsz: UInt32 = 0, flags: UInt32 = 0
        public var iova: UInt64 = 0, size: UInt64 = 0
        public var bitmap: Bitmap?

        public init() {}
        public init(argsz: UInt32, flags: UInt32, iova: UInt64, size: UInt64, bitmap: Bitmap? = nil) {
            (self.argsz, self.flags, self.iova, self.size, self.bitmap) = (argsz, flags, iova, size, bitmap)
        }

        /// The header; the bitmap too when `b` holds it.
        public init(decoding b: [UInt8]) {
            self.init(decoding: b, at: 0)
            if b.count >= Self.sizeWithBitmap { bitmap = Bitmap(decoding: b, at: Offset.bitmap) }
        }

        /// The written-back `size` of an UNMAP's argument after the call.
        public static func sizeOut(_ b: [UInt8]) -> UInt64 { b.le64(at: Offset.size) }

        /// Always with the bitmap's room: the kernel reads what argsz says.
        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithBitmap)
            encode(into: &b)
            bitmap?.encode(into: &b, at: Offset.bitmap)
            return b
        }
    }

    /// `struct vfio_iommu_type1_dirty_bitmap` (the DIRTY_PAGES header) and,
    /// for GET_BITMAP, the `struct vfio_iommu_type1_dirty_bitmap_get` in
    /// its `data[]`.
    public struct DirtyBitmap: UAPIStruct {
        /// The header alone (START, STOP).
        public static let size = 8
        /// Header and range: what GET_BITMAP needs `argsz` to cover.
        public static let sizeWithRange = size + Range.size
        public enum Offset {
            public static let argsz = 0, flags = 4, data = 8
        }
        public static var fields: [UAPIField<Self>] { [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags)] }

        /// `struct vfio_iommu_type1_dirty_bitmap_get`.
        public struct Range: UAPIStruct {
            public static let size = 40
            public enum Offset {
                public static let iova = 0, size = 8, bitmap = 16
            }
            public static var fields: [UAPIField<Self>] {
                [.u64(\.iova, at: Offset.iova), .u64(\.size, at: Offset.size),
                 .u64(\.bitmap.pgsize, at: Offset.bitmap + Bitmap.Offset.pgsize),
                 .u64(\.bitmap.size, at: Offset.bitmap + Bitmap.Offset.size),
                 .u64(\.bitmap.data, at: Offset.bitmap + Bitmap.Offset.data)]
            }
            public var iova: UInt64 = 0, size: UInt64 = 0
            public var bitmap = Bitmap()

            public init() {}
            public init(iova: UInt64, size: UInt64, bitmap: Bitmap) {
                (self.iova, self.size, self.bitmap) = (iova, size, bitmap)
            }
        }

        public var argsz: UInt32 = 0, flags: UInt32 = 0
        public var range: Range?

        public init() {}
        public init(argsz: UInt32, flags: UInt32, range: Range? = nil) {
            (self.argsz, self.flags, self.range) = (argsz, flags, range)
        }

        /// The header; the range too when `b` holds it.
        public init(decoding b: [UInt8]) {
            self.init(decoding: b, at: 0)
            if b.count >= Self.sizeWithRange { range = Range(decoding: b, at: Offset.data) }
        }

        /// Always with the range's room: the kernel reads what argsz says.
        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithRange)
            encode(into: &b)
            range?.encode(into: &b, at: Offset.data)
            return b
        }
    }

    /// `struct vfio_group_status`: GROUP_GET_STATUS.
    public struct GroupStatus: UAPIStruct {
        public static let size = 8
        public enum Offset {
            public static let argsz = 0, flags = 4
        }
        public static var fields: [UAPIField<Self>] { [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags)] }
        public var argsz: UInt32 = 0, flags: UInt32 = 0

        public init() {}
        public init(argsz: UInt32, flags: UInt32 = 0) { (self.argsz, self.flags) = (argsz, flags) }
    }

    /// `struct vfio_device_info`: DEVICE_GET_INFO. 20 bytes of fields; 6.6
    /// added an explicit pad to 24 (a881b496941f), so headers differ.
    public struct DeviceInfo: UAPIStruct {
        public static let size = 20
        public static let sizeWithPad = 24
        public enum Offset {
            public static let argsz = 0, flags = 4, numRegions = 8, numIRQs = 12, capOffset = 16
        }
        public static var fields: [UAPIField<Self>] {
            [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags), .u32(\.numRegions, at: Offset.numRegions),
             .u32(\.numIRQs, at: Offset.numIRQs), .u32(\.capOffset, at: Offset.capOffset)]
        }
        public var argsz: UInt32 = 0, flags: UInt32 = 0, numRegions: UInt32 = 0, numIRQs: UInt32 = 0, capOffset: UInt32 = 0

        public init() {}
        public init(argsz: UInt32, flags: UInt32 = 0, numRegions: UInt32 = 0, numIRQs: UInt32 = 0, capOffset: UInt32 = 0) {
            (self.argsz, self.flags, self.numRegions, self.numIRQs, self.capOffset) = (argsz, flags, numRegions, numIRQs, capOffset)
        }

        /// With the pad: a 6.6+ kernel writes 24 bytes when argsz says so.
        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.sizeWithPad)
            encode(into: &b)
            return b
        }
    }

    /// `struct vfio_region_info`: DEVICE_GET_REGION_INFO.
    public struct RegionInfo: UAPIStruct {
        public static let size = 32
        public enum Offset {
            public static let argsz = 0, flags = 4, index = 8, capOffset = 12, size = 16, offset = 24
        }
        public static var fields: [UAPIField<Self>] {
            [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags), .u32(\.index, at: Offset.index),
             .u32(\.capOffset, at: Offset.capOffset), .u64(\.size, at: Offset.size), .u64(\.offset, at: Offset.offset)]
        }
        public var argsz: UInt32 = 0, flags: UInt32 = 0, index: UInt32 = 0, capOffset: UInt32 = 0
        public var size: UInt64 = 0, offset: UInt64 = 0

        public init() {}
        public init(argsz: UInt32, flags: UInt32 = 0, index: UInt32, capOffset: UInt32 = 0, size: UInt64 = 0, offset: UInt64 = 0) {
            (self.argsz, self.flags, self.index, self.capOffset, self.size, self.offset) = (argsz, flags, index, capOffset, size, offset)
        }
    }

    /// `struct vfio_irq_info`: DEVICE_GET_IRQ_INFO.
    public struct IRQInfo: UAPIStruct {
        public static let size = 16
        public enum Offset {
            public static let argsz = 0, flags = 4, index = 8, count = 12
        }
        public static var fields: [UAPIField<Self>] {
            [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags), .u32(\.index, at: Offset.index),
             .u32(\.count, at: Offset.count)]
        }
        public var argsz: UInt32 = 0, flags: UInt32 = 0, index: UInt32 = 0, count: UInt32 = 0

        public init() {}
        public init(argsz: UInt32, flags: UInt32 = 0, index: UInt32, count: UInt32 = 0) {
            (self.argsz, self.flags, self.index, self.count) = (argsz, flags, index, count)
        }
    }

    /// `struct vfio_device_feature`: DEVICE_FEATURE's header; the feature's
    /// own struct follows in `data[]`. The low 16 bits of `flags` name the
    /// feature, the high bits say GET, SET or PROBE.
    public struct DeviceFeature: UAPIStruct {
        public static let size = 8
        public enum Offset {
            public static let argsz = 0, flags = 4, data = 8
        }
        public static let featureMask: UInt32 = 0xFFFF
        public static var fields: [UAPIField<Self>] { [.u32(\.argsz, at: Offset.argsz), .u32(\.flags, at: Offset.flags)] }
        public var argsz: UInt32 = 0, flags: UInt32 = 0
        public var data: [UInt8] = []

        public init() {}
        public init(argsz: UInt32, flags: UInt32, data: [UInt8] = []) { (self.argsz, self.flags, self.data) = (argsz, flags, data) }

        /// The header and everything after it as `data`.
        public init(decoding b: [UInt8]) {
            self.init(decoding: b, at: 0)
            data = b.count > Offset.data ? Array(b[Offset.data...]) : []
        }

        public var feature: UInt32 { flags & Self.featureMask }

        public var bytes: [UInt8] {
            var b = [UInt8](repeating: 0, count: Self.size)
            encode(into: &b)
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
