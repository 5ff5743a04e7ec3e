import Trace

/// What a VMM did with the dirty-tracking interface, read from a recorded
/// trace in one pass: for every container its mappings over time, its
/// START / STOP, its dirty queries grouped into syncs, its UNMAPs while
/// tracking; for every device fd the migration states it was set to. The
/// client rules (``ClientRules``) judge this, not the kernel: they say
/// whether the program used the interface as a live migration needs.
///
/// Only calls that succeeded change the picture (a refused MAP maps
/// nothing); a trace's claims are taken as they are: it is a record of
/// what the program asked and was told.
public struct ClientSession: Sendable {
    /// One GET_BITMAP, with what was mapped at the time.
    public struct Query: Sendable {
        public let seq: UInt64
        public let container: Int32
        public let iova: UInt64, size: UInt64, pgsize: UInt64, bitmapSize: UInt64
        public let succeeded: Bool
        /// Pages reported dirty (nil when the call failed or no bitmap came back).
        public let dirtyPages: UInt64?
        /// The bits set, as page indexes from `iova`.
        public let dirtyRuns: [Range<UInt64>]
        /// Tracking was on (a START succeeded and no STOP since).
        public let tracking: Bool
        /// The mappings live when it was issued: iova → size.
        public let mapped: [(iova: UInt64, size: UInt64)]
        /// The devices' migration states when it was issued (device fd → state).
        public let deviceStates: [Int32: MigrationState]
    }

    /// A dirty sync: the queries of one pass over memory (QEMU queries
    /// each RAM section in address order; a query at or below the
    /// previous one's IOVA starts the next pass).
    public struct Sync: Sendable {
        public let queries: [Query]
    }

    public struct DeviceState: Sendable {
        public let seq: UInt64
        public let device: Int32
        public let state: MigrationState
    }

    public struct Unmap: Sendable {
        public let seq: UInt64
        public let container: Int32
        public let iova: UInt64, size: UInt64
        public let withBitmap: Bool
        public let all: Bool
        /// The first writable mapping it removed (a device can dirty only
        /// those); nil when every mapping it removed was read-only.
        public let writable: (iova: UInt64, size: UInt64)?
    }

    public struct Tracking: Sendable {
        public let container: Int32
        public let start: UInt64
        /// nil: the trace ends, or the container closes, with tracking on.
        public let stop: UInt64?
        public let syncs: [Sync]
    }

    public private(set) var queries: [Query] = []
    public private(set) var states: [DeviceState] = []
    public private(set) var unmapsWhileTracking: [Unmap] = []
    public private(set) var trackings: [Tracking] = []
    /// The smallest IOMMU page size each container reported (GET_INFO's
    /// migration capability, else its page sizes).
    public private(set) var smallestPageSize: [Int32: UInt64] = [:]
    /// Device fd → container fd (through the device's group).
    public private(set) var containerOfDevice: [Int32: Int32] = [:]

    public init<S: Sequence>(_ events: S) where S.Element == Event {
        var mappings: [Int32: [UInt64: UInt64]] = [:]
        var writable: [Int32: Set<UInt64>] = [:]
        var trackingSince: [Int32: UInt64] = [:]
        var queriesOf: [Int32: [Query]] = [:]
        var containerOfGroup: [Int32: Int32] = [:]
        var groupOfDevice: [Int32: Int32] = [:]
        var current: [Int32: MigrationState] = [:]

        func endTracking(_ c: Int32, at seq: UInt64?) {
            guard let start = trackingSince.removeValue(forKey: c) else { return }
            trackings.append(Tracking(container: c, start: start, stop: seq, syncs: Self.syncs(queriesOf.removeValue(forKey: c) ?? [])))
        }
        func ok(_ r: CallResult?) -> Bool { if case .ok? = r { return true }; return false }

        for e in events {
            switch e.body {
            case .getInfo(let x):
                guard ok(x.result), let info = x.info else { break }
                var sizes = info.iovaPgsizes
                for cap in info.caps { if case .migration(_, _, let p, _) = cap.body, p != 0 { sizes = p } }
                if sizes != 0 { smallestPageSize[x.fd] = sizes & (~sizes &+ 1) }
            case .mapDMA(let x) where ok(x.result) && x.flags & VFIOUAPI.mapFlagVAddr == 0:
                mappings[x.fd, default: [:]][x.iova] = x.size
                if x.flags & VFIOUAPI.mapFlagWrite != 0 { writable[x.fd, default: []].insert(x.iova) }
            case .unmapDMA(let x) where ok(x.result):
                let all = x.flags & VFIOUAPI.unmapFlagAll != 0
                if x.flags & VFIOUAPI.unmapFlagVAddr != 0 { break }
                let end = x.iova &+ x.size
                let removed = (mappings[x.fd] ?? [:]).filter { all || ($0.key >= x.iova && $0.key < end) }
                if trackingSince[x.fd] != nil {
                    let w = removed.filter { writable[x.fd]?.contains($0.key) == true }.min { $0.key < $1.key }
                    unmapsWhileTracking.append(Unmap(seq: e.seq, container: x.fd, iova: x.iova, size: x.size,
                                                     withBitmap: x.flags & VFIOUAPI.unmapFlagGetDirtyBitmap != 0, all: all,
                                                     writable: w.map { ($0.key, $0.value) }))
                }
                for k in removed.keys { mappings[x.fd]?[k] = nil; writable[x.fd]?.remove(k) }
            case .dirtyPages(let x):
                if x.flags & VFIOUAPI.dirtyFlagStart != 0, ok(x.result), trackingSince[x.fd] == nil {
                    trackingSince[x.fd] = e.seq
                } else if x.flags & VFIOUAPI.dirtyFlagStop != 0, ok(x.result) {
                    endTracking(x.fd, at: e.seq)
                } else if x.flags & VFIOUAPI.dirtyFlagGetBitmap != 0, let r = x.range {
                    let good = ok(x.result)
                    let runs = good ? x.bitmapOut?.setBitRuns(limit: 1 << 16) ?? [] : []
                    let q = Query(seq: e.seq, container: x.fd, iova: r.iova, size: r.size, pgsize: r.bitmap.pgsize,
                                  bitmapSize: r.bitmap.size, succeeded: good, dirtyPages: good ? x.bitmapOut?.popcount : nil,
                                  dirtyRuns: runs, tracking: trackingSince[x.fd] != nil,
                                  mapped: (mappings[x.fd] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                  deviceStates: current.filter { containerOfDevice[$0.key] == x.fd })
                    queries.append(q)
                    if q.tracking { queriesOf[x.fd, default: []].append(q) }
                }
            case .groupSetContainer(let x) where ok(x.result):
                containerOfGroup[x.fd] = x.container
            case .groupUnsetContainer(let x) where ok(x.result):
                containerOfGroup[x.fd] = nil
            case .groupGetDeviceFD(let x):
                if case .ok(let d)? = x.result, let dev = Int32(exactly: d) {
                    groupOfDevice[dev] = x.fd
                    if let c = containerOfGroup[x.fd] { containerOfDevice[dev] = c }
                }
            case .rawIoctl(let x):
                if case .setState(let s?, _, _)? = DeviceIoctl(x), ok(x.result) {
                    current[x.fd] = s
                    states.append(DeviceState(seq: e.seq, device: x.fd, state: s))
                    if containerOfDevice[x.fd] == nil, let g = groupOfDevice[x.fd], let c = containerOfGroup[g] {
                        containerOfDevice[x.fd] = c
                    }
                }
            case .close(let x) where ok(x.result):
                endTracking(x.fd, at: nil)
                mappings[x.fd] = nil
                current[x.fd] = nil
            default:
                break
            }
        }
        for c in trackingSince.keys.sorted() { endTracking(c, at: nil) }
        trackings.sort { $0.start < $1.start }
    }

    /// Splits one tracking period's queries into syncs.
    static func syncs(_ qs: [Query]) -> [Sync] {
        var out: [Sync] = [], cur: [Query] = []
        for q in qs {
            if let last = cur.last, q.iova <= last.iova {
                out.append(Sync(queries: cur))
                cur = []
            }
            cur.append(q)
        }
        if !cur.isEmpty { out.append(Sync(queries: cur)) }
        return out
    }

    /// The devices whose migration state the trace sets, for a container.
    public func devices(of container: Int32) -> Set<Int32> {
        Set(states.map(\.device).filter { containerOfDevice[$0] == container })
    }
}
