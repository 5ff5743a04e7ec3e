/// The device fd's ioctls and the migration data fd's, from the kernel's
/// `include/uapi/linux/vfio.h`: numbers, and a decoding of the argument
/// bytes a recorder keeps for them (``RawIoctl``'s `argIn` / `argOut`,
/// `argsz` bytes each, exactly as the tracee passed them). The trace stays
/// exact; this only names what the bytes say, for the text form's comments
/// and for the client rules (a VMM's device state changes between dirty
/// queries). Request numbers are those of ``VFIOUAPI``: `_IO(';', 100 + n)`,
/// and 117 is `VFIO_DEVICE_FEATURE` here, DIRTY_PAGES on a container.
public enum VFIODeviceUAPI {
    public static let getInfo = VFIOUAPI.request(7)
    public static let getRegionInfo = VFIOUAPI.request(8)
    public static let getIRQInfo = VFIOUAPI.request(9)
    public static let setIRQs = VFIOUAPI.request(10)
    public static let reset = VFIOUAPI.request(11)
    public static let getPCIHotResetInfo = VFIOUAPI.request(12)
    public static let pciHotReset = VFIOUAPI.request(13)
    public static let queryGfxPlane = VFIOUAPI.request(14)
    public static let ioeventfd = VFIOUAPI.request(16)
    public static let feature = VFIOUAPI.request(17)
    /// On a migration data fd (`vfio_precopy_info`), 6.2 and later.
    public static let migGetPrecopyInfo = VFIOUAPI.request(21)

    /// Device-fd requests whose argument is a struct that starts with its
    /// `argsz`: a recorder keeps `argsz` bytes of it before and after.
    /// (`VFIO_DEVICE_RESET` takes no argument; `GET_GFX_DMABUF` a plain u32.)
    public static let argszRequests: Set<UInt64> = [
        getInfo, getRegionInfo, getIRQInfo, setIRQs, getPCIHotResetInfo, pciHotReset, queryGfxPlane, ioeventfd, feature,
    ]
    /// The same for a migration data fd.
    public static let dataFDArgszRequests: Set<UInt64> = [migGetPrecopyInfo]
    /// The most argument bytes kept (the kernel's structs here are far smaller;
    /// SET_IRQS and hot-reset carry arrays).
    public static let maxArgBytes = 4096

    public static let requestNames: [UInt64: String] = [
        getInfo: "GET_INFO", getRegionInfo: "GET_REGION_INFO", getIRQInfo: "GET_IRQ_INFO", setIRQs: "SET_IRQS",
        reset: "RESET", getPCIHotResetInfo: "GET_PCI_HOT_RESET_INFO", pciHotReset: "PCI_HOT_RESET",
        queryGfxPlane: "QUERY_GFX_PLANE", ioeventfd: "IOEVENTFD", feature: "DEVICE_FEATURE",
    ]

    public static let deviceFlags: [(UInt32, String)] = [
        (1, "RESET"), (2, "PCI"), (4, "PLATFORM"), (8, "AMBA"), (16, "CCW"), (32, "AP"), (64, "FSL_MC"), (128, "CAPS"),
        (256, "CDX"),
    ]
    public static let regionFlags: [(UInt32, String)] = [(1, "READ"), (2, "WRITE"), (4, "MMAP"), (8, "CAPS")]
    public static let irqFlags: [(UInt32, String)] = [(1, "EVENTFD"), (2, "MASKABLE"), (4, "AUTOMASKED"), (8, "NORESIZE")]

    // VFIO_DEVICE_FEATURE: flags = feature index | GET / SET / PROBE.
    public static let featureMask = UAPI.DeviceFeature.featureMask
    public static let featureGet: UInt32 = 1 << 16
    public static let featureSet: UInt32 = 1 << 17
    public static let featureProbe: UInt32 = 1 << 18
    public static let featureMigration: UInt32 = 1
    public static let featureMigDeviceState: UInt32 = 2
    public static let featureMigDataSize: UInt32 = 9
    public static let featureNames: [UInt32: String] = [
        0: "PCI_VF_TOKEN", 1: "MIGRATION", 2: "MIG_DEVICE_STATE", 3: "LOW_POWER_ENTRY",
        4: "LOW_POWER_ENTRY_WITH_WAKEUP", 5: "LOW_POWER_EXIT", 6: "DMA_LOGGING_START", 7: "DMA_LOGGING_STOP",
        8: "DMA_LOGGING_REPORT", 9: "MIG_DATA_SIZE", 10: "BUS_MASTER",
    ]
    /// `vfio_device_feature_migration.flags`.
    public static let migrationFlags: [(UInt32, String)] = [(1, "STOP_COPY"), (2, "P2P"), (4, "PRE_COPY")]
}

/// `enum vfio_device_mig_state`.
public enum MigrationState: UInt32, Sendable, CaseIterable {
    case error = 0, stop = 1, running = 2, stopCopy = 3, resuming = 4, runningP2P = 5, preCopy = 6, preCopyP2P = 7

    public var name: String {
        switch self {
        case .error: "ERROR"
        case .stop: "STOP"
        case .running: "RUNNING"
        case .stopCopy: "STOP_COPY"
        case .resuming: "RESUMING"
        case .runningP2P: "RUNNING_P2P"
        case .preCopy: "PRE_COPY"
        case .preCopyP2P: "PRE_COPY_P2P"
        }
    }

    /// The device runs (and may DMA, and so dirty memory): RUNNING and
    /// PRE_COPY, with or without P2P.
    public var isRunning: Bool { self == .running || self == .runningP2P || self == .preCopy || self == .preCopyP2P }
}

/// What a device-fd or migration-data-fd ioctl said, decoded from its
/// kept argument bytes. Fields the kernel writes come from `argOut` and
/// are nil when the call failed or the bytes are missing.
public enum DeviceIoctl: Equatable, Sendable {
    case getInfo(flags: UInt32?, regions: UInt32?, irqs: UInt32?)
    case regionInfo(index: UInt32, flags: UInt32?, size: UInt64?, offset: UInt64?)
    case irqInfo(index: UInt32, flags: UInt32?, count: UInt32?)
    /// DEVICE_FEATURE MIGRATION (GET): the migration flags the device offers.
    case migrationFlags(UInt32?)
    /// DEVICE_FEATURE MIG_DEVICE_STATE SET: the state asked for, and the
    /// data fd the kernel returned (-1: none).
    case setState(MigrationState?, rawState: UInt32, dataFD: Int32?)
    /// DEVICE_FEATURE MIG_DEVICE_STATE GET: the current state.
    case getState(MigrationState?, rawState: UInt32?)
    /// DEVICE_FEATURE MIG_DATA_SIZE (GET): the STOP_COPY length estimate.
    case dataSize(UInt64?)
    /// Any other DEVICE_FEATURE (or a PROBE).
    case feature(index: UInt32, op: String)
    /// VFIO_MIG_GET_PRECOPY_INFO on a data fd.
    case precopyInfo(initialBytes: UInt64?, dirtyBytes: UInt64?)
    /// Another named device request whose bytes this does not decode.
    case other(String)

    /// Decodes `x` when it is one of these ioctls (on a device fd, or on
    /// an fd of kind `other`: a migration data fd); nil otherwise.
    public init?(_ x: RawIoctl) {
        let ok: Bool = if case .ok? = x.result { true } else { false }
        let a = x.argIn, o = ok ? x.argOut : nil
        func out32(_ at: Int) -> UInt32? { o.flatMap { $0.count >= at + 4 ? $0.le32(at: at) : nil } }
        func out64(_ at: Int) -> UInt64? { o.flatMap { $0.count >= at + 8 ? $0.le64(at: at) : nil } }
        switch (x.fdKind, x.request) {
        case (.other, VFIODeviceUAPI.migGetPrecopyInfo):
            // struct vfio_precopy_info { argsz, flags; u64 initial_bytes, dirty_bytes }
            self = .precopyInfo(initialBytes: out64(8), dirtyBytes: out64(16))
        case (.device, VFIODeviceUAPI.getInfo):
            typealias O = UAPI.DeviceInfo.Offset
            self = .getInfo(flags: out32(O.flags), regions: out32(O.numRegions), irqs: out32(O.numIRQs))
        case (.device, VFIODeviceUAPI.getRegionInfo):
            typealias O = UAPI.RegionInfo.Offset
            guard a.count >= O.index + 4 else { self = .other("GET_REGION_INFO"); return }
            self = .regionInfo(index: a.le32(at: O.index), flags: out32(O.flags), size: out64(O.size), offset: out64(O.offset))
        case (.device, VFIODeviceUAPI.getIRQInfo):
            typealias O = UAPI.IRQInfo.Offset
            guard a.count >= O.index + 4 else { self = .other("GET_IRQ_INFO"); return }
            self = .irqInfo(index: a.le32(at: O.index), flags: out32(O.flags), count: out32(O.count))
        case (.device, VFIODeviceUAPI.feature):
            // data[] holds the feature's struct: vfio_device_feature_migration
            // { u64 flags }, _mig_state { u32 device_state; s32 data_fd },
            // _mig_data_size { u64 stop_copy_length }.
            let d = UAPI.DeviceFeature.Offset.data
            guard a.count >= d else { self = .other("DEVICE_FEATURE"); return }
            let flags = a.le32(at: UAPI.DeviceFeature.Offset.flags), index = flags & VFIODeviceUAPI.featureMask
            let get = flags & VFIODeviceUAPI.featureGet != 0, set = flags & VFIODeviceUAPI.featureSet != 0
            let probe = flags & VFIODeviceUAPI.featureProbe != 0
            switch index {
            case VFIODeviceUAPI.featureMigration where get && !probe:
                self = .migrationFlags(out64(d).map { UInt32(truncatingIfNeeded: $0) })
            case VFIODeviceUAPI.featureMigDeviceState where set && !probe && a.count >= d + 4:
                let raw = a.le32(at: d)
                self = .setState(MigrationState(rawValue: raw), rawState: raw, dataFD: out32(d + 4).map { Int32(bitPattern: $0) })
            case VFIODeviceUAPI.featureMigDeviceState where get && !probe:
                let raw = out32(d)
                self = .getState(raw.flatMap(MigrationState.init(rawValue:)), rawState: raw)
            case VFIODeviceUAPI.featureMigDataSize where get && !probe:
                self = .dataSize(out64(d))
            default:
                let op = [(probe, "PROBE"), (get, "GET"), (set, "SET")].filter(\.0).map(\.1).joined(separator: "|")
                self = .feature(index: index, op: op.isEmpty ? "0" : op)
            }
        case (.device, let r):
            guard let name = VFIODeviceUAPI.requestNames[r] else { return nil }
            self = .other(name)
        default:
            return nil
        }
    }

    /// One line for a reader: `DEVICE_FEATURE SET MIG_DEVICE_STATE STOP_COPY data_fd=14`.
    public var description: String {
        func opt<T>(_ v: T?, _ f: (T) -> String) -> String { v.map(f) ?? "?" }
        func flags(_ v: UInt32?, _ names: [(UInt32, String)]) -> String { opt(v) { TextSyntax.flags($0, names) } }
        switch self {
        case .getInfo(let f, let r, let i):
            return "GET_INFO flags=\(flags(f, VFIODeviceUAPI.deviceFlags)) regions=\(opt(r) { "\($0)" }) irqs=\(opt(i) { "\($0)" })"
        case .regionInfo(let index, let f, let size, let offset):
            return "GET_REGION_INFO index=\(index) flags=\(flags(f, VFIODeviceUAPI.regionFlags)) size=\(opt(size, TextSyntax.hex)) offset=\(opt(offset, TextSyntax.hex))"
        case .irqInfo(let index, let f, let count):
            return "GET_IRQ_INFO index=\(index) flags=\(flags(f, VFIODeviceUAPI.irqFlags)) count=\(opt(count) { "\($0)" })"
        case .migrationFlags(let f):
            return "DEVICE_FEATURE GET MIGRATION flags=\(flags(f, VFIODeviceUAPI.migrationFlags))"
        case .setState(let s, let raw, let fd):
            let data = fd.map { $0 >= 0 ? " data_fd=\($0)" : "" } ?? ""
            return "DEVICE_FEATURE SET MIG_DEVICE_STATE \(s?.name ?? "state \(raw)")" + data
        case .getState(let s, let raw):
            return "DEVICE_FEATURE GET MIG_DEVICE_STATE -> \(s?.name ?? raw.map { "state \($0)" } ?? "?")"
        case .dataSize(let n):
            return "DEVICE_FEATURE GET MIG_DATA_SIZE stop_copy_length=\(opt(n) { "\($0)" })"
        case .feature(let index, let op):
            return "DEVICE_FEATURE \(op) \(VFIODeviceUAPI.featureNames[index] ?? "feature \(index)")"
        case .precopyInfo(let initial, let dirty):
            return "MIG_GET_PRECOPY_INFO initial_bytes=\(opt(initial) { "\($0)" }) dirty_bytes=\(opt(dirty) { "\($0)" })"
        case .other(let name):
            return name
        }
    }
}
