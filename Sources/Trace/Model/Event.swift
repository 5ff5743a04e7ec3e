/// One thing that happened on the VFIO interface: an ioctl a program made,
/// or a kernel-side page-pin event, with its inputs as the caller passed them
/// and, when known, its outcome.
///
/// Inputs are recorded exactly as given (argsz, raw flags, pgsize, bitmap
/// size, pointer classes) because conformance is about bad inputs as much as
/// good ones. Outcomes are optional: a recorded trace always has them, a
/// hand-written scenario may leave them out (replay then only computes them)
/// or state only part of them as an expectation.
public struct Event: Equatable, Hashable, Sendable {
    /// Position in the trace's stream, normally consecutive from 0.
    public var seq: UInt64
    /// Monotonic timestamp in nanoseconds (CLOCK_MONOTONIC on the recording host).
    public var time: UInt64
    /// Thread that made the call (kernel events: the thread that triggered them).
    public var tid: UInt32
    public var body: EventBody

    public init(seq: UInt64 = 0, time: UInt64 = 0, tid: UInt32 = 0, _ body: EventBody) {
        self.seq = seq
        self.time = time
        self.tid = tid
        self.body = body
    }
}

/// The kind of file a descriptor refers to; decoding keys on it because VFIO
/// request numbers collide across fd kinds.
public enum FDKind: UInt8, Sendable, CaseIterable {
    case other = 0
    /// `/dev/vfio/vfio`.
    case container = 1
    /// `/dev/vfio/N`.
    case group = 2
    /// A device fd from `VFIO_GROUP_GET_DEVICE_FD`.
    case device = 3

    public var name: String {
        switch self {
        case .other: "other"
        case .container: "container"
        case .group: "group"
        case .device: "device"
        }
    }

    public init?(name: String) {
        guard let k = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }
}

/// How a group reaches memory, which decides the container's dirty scope
/// (`docs/kernel-rules.md#dirty-scope`).
public enum GroupKind: UInt8, Sendable, CaseIterable {
    case unknown = 0
    /// Backed by a real IOMMU domain (vfio-pci): never pins, so every mapped
    /// page is reported dirty while such a group is attached.
    case iommu = 1
    /// Emulated IOMMU (mdev): pins pages through `vfio_pin_pages()`.
    case emulated = 2

    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .iommu: "iommu"
        case .emulated: "emulated"
        }
    }

    public init?(name: String) {
        guard let k = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }
}

public enum EventBody: Equatable, Hashable, Sendable {
    case open(Open)
    case close(Close)
    case getAPIVersion(GetAPIVersion)
    case checkExtension(CheckExtension)
    case setIOMMU(SetIOMMU)
    case getInfo(GetInfo)
    case mapDMA(MapDMA)
    case unmapDMA(UnmapDMA)
    case dirtyPages(DirtyPages)
    case groupGetStatus(GroupGetStatus)
    case groupSetContainer(GroupSetContainer)
    case groupUnsetContainer(GroupUnsetContainer)
    case groupGetDeviceFD(GroupGetDeviceFD)
    case pin(Pin)
    case unpin(Unpin)
    case dmaRW(DMARW)
    case rawIoctl(RawIoctl)
    case marker(Marker)
    case loss(Loss)
}

// MARK: - File descriptors

/// `open()` of a VFIO node: `/dev/vfio/vfio` or `/dev/vfio/N`.
public struct Open: Equatable, Hashable, Sendable {
    public var path: String
    /// `.ok(fd)` or the errno.
    public var result: CallResult?
    public init(path: String, result: CallResult? = nil) {
        self.path = path
        self.result = result
    }

    /// The kind of fd this path yields.
    public var kind: FDKind {
        if path == "/dev/vfio/vfio" { return .container }
        if groupNumber != nil { return .group }
        return .other
    }

    /// N for `/dev/vfio/N`.
    public var groupNumber: UInt32? {
        guard path.hasPrefix("/dev/vfio/") else { return nil }
        return UInt32(path.dropFirst("/dev/vfio/".count))
    }
}

public struct Close: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var result: CallResult?
    public init(fd: Int32, result: CallResult? = nil) {
        self.fd = fd
        self.result = result
    }
}

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

/// `VFIO_IOMMU_GET_INFO` with the caller's `argsz`; the outcome is the
/// written-back struct and its capability chain (`docs/kernel-rules.md#uapi-get-info`).
public struct GetInfo: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var argsz: UInt32
    public var result: CallResult?
    public var info: IOMMUInfo?
    public init(fd: Int32, argsz: UInt32, result: CallResult? = nil, info: IOMMUInfo? = nil) {
        self.fd = fd
        self.argsz = argsz
        self.result = result
        self.info = info
    }
}

public struct IOMMUInfo: Equatable, Hashable, Sendable {
    /// The argsz the kernel wrote back (the size it needs for all capabilities).
    public var argsz: UInt32
    public var flags: UInt32
    public var iovaPgsizes: UInt64
    public var capOffset: UInt32
    public var caps: [InfoCapability]
    public init(argsz: UInt32, flags: UInt32, iovaPgsizes: UInt64, capOffset: UInt32, caps: [InfoCapability]) {
        self.argsz = argsz
        self.flags = flags
        self.iovaPgsizes = iovaPgsizes
        self.capOffset = capOffset
        self.caps = caps
    }
}

/// One `vfio_info_cap_header` entry of the chain, where it sat, and its body.
public struct InfoCapability: Equatable, Hashable, Sendable {
    public var id: UInt16
    public var version: UInt16
    /// Offset of this capability from the start of the info struct.
    public var offset: UInt32
    /// The header's `next` field as the kernel wrote it.
    public var next: UInt32
    public var body: Body

    public enum Body: Equatable, Hashable, Sendable {
        /// `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`: inclusive [start, end] ranges.
        case iovaRanges([IOVARange])
        /// `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`. `hole` is bytes 12..15,
        /// uninitialised kernel stack before 6.6 (cd24e2a60af6,
        /// `docs/kernel-rules.md#delta-d8`).
        case migration(flags: UInt32, hole: UInt32, pgsizeBitmap: UInt64, maxDirtyBitmapSize: UInt64)
        /// `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL` (5.10+).
        case dmaAvail(UInt32)
        /// Anything else: the bytes after the 8-byte header.
        case raw([UInt8])
    }

    public init(id: UInt16, version: UInt16, offset: UInt32, next: UInt32, body: Body) {
        self.id = id
        self.version = version
        self.offset = offset
        self.next = next
        self.body = body
    }
}

public struct IOVARange: Equatable, Hashable, Sendable {
    public var start: UInt64
    /// Inclusive end.
    public var end: UInt64
    public init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
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

// MARK: - Kernel-side events

/// `vfio_pin_pages()` by a device of `group` (`docs/kernel-rules.md#pins-and-dma-rw`).
public struct Pin: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var npage: UInt32
    /// IOMMU_READ (1) | IOMMU_WRITE (2).
    public var prot: UInt32
    /// `.ok(pages pinned)` or the errno.
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, npage: UInt32, prot: UInt32 = 3, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.npage = npage
        self.prot = prot
        self.result = result
    }
}

/// `vfio_unpin_pages()`; it never clears dirty bits.
public struct Unpin: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var npage: UInt32
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, npage: UInt32, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.npage = npage
        self.result = result
    }
}

/// `vfio_dma_rw()`: a device read or write of guest memory through the IOMMU.
public struct DMARW: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var length: UInt64
    public var write: Bool
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, length: UInt64, write: Bool, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.length = length
        self.write = write
        self.result = result
    }
}

// MARK: - Everything else

/// An ioctl on a VFIO fd that vfiotrace does not decode, kept raw.
public struct RawIoctl: Equatable, Hashable, Sendable {
    public var fd: Int32
    public var fdKind: FDKind
    public var request: UInt64
    /// The argument bytes at entry (empty when the argument is not a pointer).
    public var argIn: [UInt8]
    public var result: CallResult?
    /// The argument bytes at exit, when they were captured.
    public var argOut: [UInt8]?
    public init(fd: Int32, fdKind: FDKind, request: UInt64, argIn: [UInt8] = [], result: CallResult? = nil,
                argOut: [UInt8]? = nil) {
        self.fd = fd
        self.fdKind = fdKind
        self.request = request
        self.argIn = argIn
        self.result = result
        self.argOut = argOut
    }
}

/// Free text placed in the stream (by a user, a scenario or the recorder).
public struct Marker: Equatable, Hashable, Sendable {
    public var text: String
    public init(_ text: String) { self.text = text }
}

/// Events known to be missing at this point of the stream.
public struct Loss: Equatable, Hashable, Sendable {
    public var count: UInt64
    public var reason: String
    public init(count: UInt64, reason: String) {
        self.count = count
        self.reason = reason
    }
}
