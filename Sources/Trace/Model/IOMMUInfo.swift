// MARK: - GET_INFO

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
