// The container and group ioctls of an event (`EventBody`), each with
// its inputs as passed and its optional outcome.

// MARK: - Container ioctls

public struct GetAPIVersion: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var result: CallResult?
    public init(fd: Int32, result: CallResult? = nil) {
        self.fd = fd
        self.result = result
    }
}

/// `VFIO_CHECK_EXTENSION`: the argument is the extension id itself.
public struct CheckExtension: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var ext: UInt64
    public var result: CallResult?
    public init(fd: Int32, ext: UInt64, result: CallResult? = nil) {
        self.fd = fd
        self.ext = ext
        self.result = result
    }
}

/// `VFIO_SET_IOMMU`: TYPE1 (1) gives a v1 container, TYPE1v2 (3) a v2 one.
public struct SetIOMMU: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var iommuType: UInt64
    public var result: CallResult?
    public init(fd: Int32, iommuType: UInt64, result: CallResult? = nil) {
        self.fd = fd
        self.iommuType = iommuType
        self.result = result
    }
}

/// `VFIO_IOMMU_MAP_DMA`.
public struct MapDMA: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var argsz: UInt32
    public var flags: UInt32
    public var vaddr: UserPointer
    public var iova: UInt64
    public var size: UInt64
    public var result: CallResult?
    public init(fd: Int32, argsz: UInt32 = VFIOUAPI.dmaMapSize, flags: UInt32 = 3,
                vaddr: UserPointer = .valid, iova: UInt64, size: UInt64, result: CallResult? = nil) {
        self.fd = fd
        self.argsz = argsz
        self.flags = flags
        self.vaddr = vaddr
        self.iova = iova
        self.size = size
        self.result = result
    }
}

/// A `struct vfio_bitmap` argument: the caller's page size and buffer size,
/// the buffer pointer's class, and what the buffer held before the call
/// (nil when it was all zero, the usual case).
public struct BitmapArg: Equatable, Hashable, Sendable {
    public var pgsize: UInt64
    public var size: UInt64
    public var data: UserPointer
    public var prior: BitmapBytes?
    public init(pgsize: UInt64, size: UInt64, data: UserPointer = .valid, prior: BitmapBytes? = nil) {
        self.pgsize = pgsize
        self.size = size
        self.data = data
        self.prior = prior
    }
}

/// `VFIO_IOMMU_UNMAP_DMA`, with or without `GET_DIRTY_BITMAP`, `ALL`, `VADDR`.
public struct UnmapDMA: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var argsz: UInt32
    public var flags: UInt32
    public var iova: UInt64
    public var size: UInt64
    /// Present when the caller asked for the bitmap (the struct after the header).
    public var bitmap: BitmapArg?
    public var result: CallResult?
    /// `unmap.size` as written back (bytes unmapped); the kernel writes it only on success.
    public var sizeOut: UInt64?
    /// The bitmap buffer after the call.
    public var bitmapOut: BitmapBytes?
    public init(fd: Int32, argsz: UInt32 = VFIOUAPI.dmaUnmapMinSize, flags: UInt32 = 0, iova: UInt64,
                size: UInt64, bitmap: BitmapArg? = nil, result: CallResult? = nil,
                sizeOut: UInt64? = nil, bitmapOut: BitmapBytes? = nil) {
        self.fd = fd
        self.argsz = argsz
        self.flags = flags
        self.iova = iova
        self.size = size
        self.bitmap = bitmap
        self.result = result
        self.sizeOut = sizeOut
        self.bitmapOut = bitmapOut
    }
}

/// The `vfio_iommu_type1_dirty_bitmap_get` part of a GET_BITMAP call.
public struct DirtyRange: Equatable, Hashable, Sendable {
    public var iova: UInt64
    public var size: UInt64
    public var bitmap: BitmapArg
    public init(iova: UInt64, size: UInt64, bitmap: BitmapArg) {
        self.iova = iova
        self.size = size
        self.bitmap = bitmap
    }
}

/// `VFIO_IOMMU_DIRTY_PAGES`: START, STOP, GET_BITMAP, or any raw flags.
public struct DirtyPages: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var argsz: UInt32
    public var flags: UInt32
    /// Present when the caller supplied the GET_BITMAP payload.
    public var range: DirtyRange?
    public var result: CallResult?
    /// The bitmap buffer after the call.
    public var bitmapOut: BitmapBytes?
    public init(fd: Int32, argsz: UInt32 = VFIOUAPI.dirtyBitmapMinSize, flags: UInt32, range: DirtyRange? = nil,
                result: CallResult? = nil, bitmapOut: BitmapBytes? = nil) {
        self.fd = fd
        self.argsz = argsz
        self.flags = flags
        self.range = range
        self.result = result
        self.bitmapOut = bitmapOut
    }
}

// MARK: - Group ioctls

public struct GroupGetStatus: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var argsz: UInt32
    public var result: CallResult?
    public var flagsOut: UInt32?
    public init(fd: Int32, argsz: UInt32 = 8, result: CallResult? = nil, flagsOut: UInt32? = nil) {
        self.fd = fd
        self.argsz = argsz
        self.result = result
        self.flagsOut = flagsOut
    }
}

/// `VFIO_GROUP_SET_CONTAINER`, with the kind of group being attached.
public struct GroupSetContainer: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var container: Int32
    public var kind: GroupKind
    public var result: CallResult?
    public init(fd: Int32, container: Int32, kind: GroupKind, result: CallResult? = nil) {
        self.fd = fd
        self.container = container
        self.kind = kind
        self.result = result
    }
}

public struct GroupUnsetContainer: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var result: CallResult?
    public init(fd: Int32, result: CallResult? = nil) {
        self.fd = fd
        self.result = result
    }
}

public struct GroupGetDeviceFD: Equatable, Hashable, Sendable {
    public var fd: Int32
    /// The device name: a PCI address or an mdev UUID.
    public var name: String
    public var result: CallResult?
    public init(fd: Int32, name: String, result: CallResult? = nil) {
        self.fd = fd
        self.name = name
        self.result = result
    }
}
