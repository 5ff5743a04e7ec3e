/// Record type numbers of the binary format (one byte). Event types are
/// 0x01–0x3F; 0x40–0x7F are control records; a reader skips and counts any
/// type it does not know, so new event kinds are a minor-version change.
public enum RecordType: UInt8, Sendable, CaseIterable {
    case open = 0x01
    case close = 0x02
    case getAPIVersion = 0x03
    case checkExtension = 0x04
    case setIOMMU = 0x05
    case getInfo = 0x06
    case mapDMA = 0x07
    case unmapDMA = 0x08
    case dirtyPages = 0x09
    case groupGetStatus = 0x0A
    case groupSetContainer = 0x0B
    case groupUnsetContainer = 0x0C
    case groupGetDeviceFD = 0x0D
    case pin = 0x10
    case unpin = 0x11
    case dmaRW = 0x12
    case rawIoctl = 0x20
    case marker = 0x21
    case loss = 0x22
    /// Last record of every frame: record count and CRC32C of the frame's records.
    case frameEnd = 0x7F

    /// The name `info` prints in its per-type counts.
    public var name: String {
        switch self {
        case .open: "open"
        case .close: "close"
        case .getAPIVersion: "get_api_version"
        case .checkExtension: "check_extension"
        case .setIOMMU: "set_iommu"
        case .getInfo: "get_info"
        case .mapDMA: "map_dma"
        case .unmapDMA: "unmap_dma"
        case .dirtyPages: "dirty_pages"
        case .groupGetStatus: "group_get_status"
        case .groupSetContainer: "group_set_container"
        case .groupUnsetContainer: "group_unset_container"
        case .groupGetDeviceFD: "group_get_device_fd"
        case .pin: "pin"
        case .unpin: "unpin"
        case .dmaRW: "dma_rw"
        case .rawIoctl: "ioctl"
        case .marker: "marker"
        case .loss: "loss"
        case .frameEnd: "frame_end"
        }
    }
}

extension EventBody {
    public var recordType: RecordType {
        switch self {
        case .open: .open
        case .close: .close
        case .getAPIVersion: .getAPIVersion
        case .checkExtension: .checkExtension
        case .setIOMMU: .setIOMMU
        case .getInfo: .getInfo
        case .mapDMA: .mapDMA
        case .unmapDMA: .unmapDMA
        case .dirtyPages: .dirtyPages
        case .groupGetStatus: .groupGetStatus
        case .groupSetContainer: .groupSetContainer
        case .groupUnsetContainer: .groupUnsetContainer
        case .groupGetDeviceFD: .groupGetDeviceFD
        case .pin: .pin
        case .unpin: .unpin
        case .dmaRW: .dmaRW
        case .rawIoctl: .rawIoctl
        case .marker: .marker
        case .loss: .loss
        }
    }
}

/// A set of event record types (all below 64), for readers that want only
/// some: the others are stepped over without decoding their bodies.
public struct RecordTypeSet: Sendable, Equatable {
    let mask: UInt64

    public init(_ types: [RecordType]) {
        mask = types.reduce(0) { $1.rawValue < 64 ? $0 | (1 << UInt64($1.rawValue)) : $0 }
    }

    public static let all = RecordTypeSet(mask: ~0)
    private init(mask: UInt64) { self.mask = mask }

    func contains(rawType t: UInt8) -> Bool { t < 64 && mask & (1 << UInt64(t)) != 0 }
}
