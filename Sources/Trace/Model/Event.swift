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

/// The cases whose payloads are large (over 40 bytes: queries, unmaps,
/// maps, GET_INFO, raw ioctls) are `indirect`, boxed once when built, so
/// that an event, copied at every stage of decoding and replay, stays small
/// (64 bytes, not 168) for the common kernel events, which are not.
public enum EventBody: Equatable, Hashable, Sendable {
    case open(Open)
    case close(Close)
    case getAPIVersion(GetAPIVersion)
    case checkExtension(CheckExtension)
    case setIOMMU(SetIOMMU)
    indirect case getInfo(GetInfo)
    indirect case mapDMA(MapDMA)
    indirect case unmapDMA(UnmapDMA)
    indirect case dirtyPages(DirtyPages)
    case groupGetStatus(GroupGetStatus)
    case groupSetContainer(GroupSetContainer)
    case groupUnsetContainer(GroupUnsetContainer)
    case groupGetDeviceFD(GroupGetDeviceFD)
    case pin(Pin)
    case unpin(Unpin)
    case dmaRW(DMARW)
    indirect case rawIoctl(RawIoctl)
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
