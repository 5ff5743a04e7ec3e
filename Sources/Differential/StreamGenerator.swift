import Trace

/// A seeded, reproducible source of mostly-valid random event streams over
/// the surface the engine models: container and group life cycle,
/// MAP/UNMAP, DIRTY_PAGES, pins and `dma_rw` through the test device, and
/// the odd value at every boundary. "Mostly valid": the generator keeps a
/// rough picture of what it set up (fds, mappings, tracking, pins) and aims
/// most calls at it, so streams get deep; a share of every kind is aimed
/// just off it (an unaligned IOVA, a range across a hole, a page size the
/// IOMMU lacks, a bitmap a word short, a NULL or read-only buffer), where
/// kernels and the engine tend to part. Outcomes are left unstated: the
/// reference backend (a kernel, or a profile) states them.
///
/// The same seed and configuration give the same stream on every machine
/// (SplitMix64, no Foundation randomness).
public struct StreamGenerator {
    public struct Configuration: Sendable {
        /// Events per stream (the set-up counts).
        public var events = 200
        public var weights = FuzzWeights()
        /// The trace group numbers: an emulated (mdev) one, and an
        /// IOMMU-backed one (bound to the lab's test device and `edu`).
        public var emulatedGroup: UInt32 = 20
        public var iommuGroup: UInt32 = 21
        /// Use the IOMMU-backed group at all (a lab with only the test device: no).
        public var iommuBacked = true
        /// The device name GET_DEVICE_FD asks for (a real backend uses the
        /// group's own device).
        public var deviceName = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
        /// Largest mapping made while an IOMMU-backed group is attached
        /// (the kernel pins it all: real memory in the lab guest).
        public var maxPinnedMapping: UInt64 = 4 << 20
        /// Largest mapping otherwise.
        public var maxMapping: UInt64 = 1 << 30
        /// All mappings together while an IOMMU-backed group is attached
        /// (the lab guest has 768 MiB; the kernel pins every mapped page).
        public var maxPinnedTotal: UInt64 = 64 << 20
        public init() {}
    }

    public let seed: UInt64
    public let configuration: Configuration
    private var rng: SplitMix64

    // What the generator believes it set up (its calls may have failed).
    private var nextFD: Int32 = 3
    private var container: Int32?
    private var groupFD: [UInt32: Int32] = [:]
    private var attached: Set<UInt32> = []
    private var device: Int32?
    private var iommuSet = false
    private var mappings: [(iova: UInt64, size: UInt64)] = []
    private var tracking = false
    private var pinned: [UInt64] = []

    public init(seed: UInt64, configuration: Configuration = Configuration()) {
        self.seed = seed
        self.configuration = configuration
        rng = SplitMix64(seed: seed)
    }

    /// The whole stream: a usual set-up (container, the emulated group, its
    /// device, TYPE1v2) with a chance of doing it oddly, then random events.
    public mutating func stream() -> [Event] {
        var out: [EventBody] = []
        out += setUp()
        while out.count < configuration.events { out += step() }
        return out.prefix(configuration.events).enumerated().map { Event(seq: UInt64($0.offset), $0.element) }
    }

    // MARK: Choices

    private mutating func chance(_ percent: UInt64) -> Bool { rng.below(100) < percent }
    private mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.below(UInt64(xs.count)))] }
    private mutating func pages(_ max: UInt64) -> UInt64 { 1 + rng.below(max) }
    private static let page: UInt64 = 4096

    /// A page count skewed small, now and then large.
    private var mappedBytes: UInt64 { mappings.reduce(0) { $0 &+ $1.size } }

    private mutating func mappingPages() -> UInt64 {
        let pinning = attached.contains(configuration.iommuGroup)
        let room = configuration.maxPinnedTotal > mappedBytes ? configuration.maxPinnedTotal - mappedBytes : 0
        let limit = (pinning ? min(configuration.maxPinnedMapping, room) : configuration.maxMapping) / Self.page
        let n: UInt64 = chance(80) ? pages(64) : chance(80) ? pages(4096) : pages(max(limit, 1))
        return min(n, max(limit, 1))
    }

    private mutating func openFD() -> Int32 {
        defer { nextFD += 1 }
        return nextFD
    }

    // MARK: Set-up and life cycle

    private mutating func setUp() -> [EventBody] {
        var out: [EventBody] = []
        out.append(openContainer())
        out.append(openGroup(configuration.emulatedGroup))
        out.append(setContainer(configuration.emulatedGroup))
        let type: UInt64 = chance(90) ? 3 : pick([1, 3, 6, 8, 0, 2, 42])
        out.append(setIOMMU(type: type))
        // An odd type the kernel refuses leaves no IOMMU, and without one no
        // device and no pins: ask again for TYPE1v2 (EINVAL if the first held).
        if type != 3 { out.append(setIOMMU(type: 3)) }
        out.append(getDevice())
        if configuration.iommuBacked && chance(30) {
            out.append(openGroup(configuration.iommuGroup))
            out.append(setContainer(configuration.iommuGroup))
        }
        return out
    }

    private mutating func openContainer() -> EventBody {
        let fd = openFD()
        container = fd
        return .open(Open(path: "/dev/vfio/vfio", result: .ok(Int64(fd))))
    }

    private mutating func openGroup(_ g: UInt32) -> EventBody {
        let fd = openFD()
        groupFD[g] = fd
        return .open(Open(path: "/dev/vfio/\(g)", result: .ok(Int64(fd))))
    }

    private mutating func setContainer(_ g: UInt32) -> EventBody {
        attached.insert(g)
        return .groupSetContainer(GroupSetContainer(fd: groupFD[g] ?? 99, container: container ?? 99,
                                                    kind: g == configuration.emulatedGroup ? .emulated : .iommu))
    }

    private mutating func setIOMMU(type: UInt64) -> EventBody {
        if type == 3 || type == 1 { iommuSet = true }
        return .setIOMMU(SetIOMMU(fd: container ?? 99, iommuType: type))
    }

    private mutating func getDevice() -> EventBody {
        let fd = openFD()
        device = fd
        return .groupGetDeviceFD(GroupGetDeviceFD(fd: groupFD[configuration.emulatedGroup] ?? 99,
                                                  name: configuration.deviceName, result: .ok(Int64(fd))))
    }

    private mutating func lifecycle() -> [EventBody] {
        let c = container ?? 99
        switch rng.below(9) {
        case 0: return [.checkExtension(CheckExtension(fd: c, ext: rng.below(14)))]
        case 1: return [.getAPIVersion(GetAPIVersion(fd: c))]
        case 2: return [.getInfo(GetInfo(fd: c, argsz: pick([VFIOUAPI.iommuInfoSize, 16, 24, 40, 72, 4096, 8])))]
        case 3:
            let g = configuration.emulatedGroup
            return [.groupGetStatus(GroupGetStatus(fd: groupFD[g] ?? 99))]
        case 4 where configuration.iommuBacked:
            // The IOMMU-backed group in or out (the scope changes while tracking).
            let g = configuration.iommuGroup
            if attached.contains(g) {
                attached.remove(g)
                return [.groupUnsetContainer(GroupUnsetContainer(fd: groupFD[g] ?? 99))]
            }
            var out: [EventBody] = []
            if groupFD[g] == nil { out.append(openGroup(g)) }
            // Pinning the existing mappings: keep them small.
            if mappings.allSatisfy({ $0.size <= configuration.maxPinnedMapping }) && mappedBytes <= configuration.maxPinnedTotal {
                out.append(setContainer(g))
            }
            return out
        case 5:
            // The device closed with pages pinned (its driver unpins), or opened again.
            if let d = device {
                device = nil
                pinned = []
                return [.close(Close(fd: d))]
            }
            return [getDevice()]
        case 6:
            return [.setIOMMU(SetIOMMU(fd: c, iommuType: pick([1, 3, 6, 8, 0, 9])))]
        default:
            return [.checkExtension(CheckExtension(fd: c, ext: pick([1, 3, 4, 9, 10, 11, 0, 200])))]
        }
    }

    // MARK: Mappings

    /// An IOVA: mostly free space after the mappings, sometimes inside one,
    /// adjacent, unaligned, or near the top of the address space.
    private mutating func freshIOVA() -> UInt64 {
        let top = mappings.map { $0.iova &+ $0.size }.max() ?? 0
        switch rng.below(10) {
        case 0: return mappings.isEmpty ? 0 : pick(mappings).iova                 // overlap
        case 1: return top                                                         // adjacent
        case 2: return top &+ Self.page * pages(4) &+ 0x800                        // unaligned
        case 3: return (1 << 39) - Self.page * pages(4)                            // near the aperture's end
        default: return top &+ Self.page * rng.below(16)                           // a hole or none
        }
    }

    private mutating func map() -> [EventBody] {
        let size = Self.page * mappingPages()
        let iova = freshIOVA()
        var flags: UInt32 = 3
        if chance(5) { flags = pick([1, 2, 0, 7, 0x100]) }
        let offset: UInt64 = chance(5) ? 0x10 : 0
        let x = MapDMA(fd: container ?? 99, flags: flags, vaddr: UserPointer(.valid, pageOffset: offset), iova: iova,
                       size: chance(3) ? size + 0x10 : size)
        if flags & 3 != 0 && flags & 4 == 0 && iova % Self.page == 0 && offset == 0
            && !mappings.contains(where: { iova < $0.iova &+ $0.size && $0.iova < iova &+ size }) {
            mappings.append((iova, size))
            mappings.sort { $0.iova < $1.iova }
        }
        return [.mapDMA(x)]
    }

    /// A range: one mapping, several, part of one, or across a hole.
    private mutating func range() -> (iova: UInt64, size: UInt64) {
        guard !mappings.isEmpty else { return (0, Self.page * pages(16)) }
        let i = Int(rng.below(UInt64(mappings.count)))
        let m = mappings[i]
        switch rng.below(10) {
        case 0: // several mappings, with whatever holes lie between
            let j = min(mappings.count - 1, i + Int(rng.below(3)))
            return (m.iova, mappings[j].iova &+ mappings[j].size &- m.iova)
        case 1: return (m.iova, max(Self.page, m.size / 2))                      // part of one
        case 2: return (m.iova &+ Self.page, m.size)                              // shifted by a page
        case 3: return (0, mappings.last!.iova &+ mappings.last!.size)             // everything from 0
        default: return m
        }
    }

    /// A bitmap argument for `pages` pages: usually right, sometimes a word
    /// short or long, another page size, an odd pointer or prior bits.
    private mutating func bitmap(pages: UInt64) -> BitmapArg {
        var pgsize = Self.page
        if chance(8) { pgsize = pick([8192, 2 << 20, 2048, 0, 3 * 4096, 1 << 30]) }
        let npages = pgsize == 0 ? pages : pages * Self.page / max(pgsize, 1)
        var size = (npages + 63) / 64 * 8
        // A word short or long, a byte over, empty, twice the size. (The
        // 256 MiB bound itself is the catalogue's: a buffer that large costs
        // the real backend that much memory, more than a lab guest has to
        // spare per stream.)
        if chance(8) { size = pick([0, max(size, 8) - 8, size + 8, size + 1, size * 2]) }
        var data = UserPointer.valid
        if chance(8) {
            data = pick([UserPointer.null, UserPointer(.readOnly), UserPointer(.unmapped), UserPointer(.kernel),
                         UserPointer(.valid, accessibleBytes: size / 2), UserPointer(.valid, pageOffset: 4)])
        }
        var prior: BitmapBytes? = nil
        if chance(10) && size > 0 && size <= 4096 && data.pointerClass == .valid {
            prior = BitmapBytes(byteCount: size, setBits: [rng.below(size * 8)..<(size * 8)])
        }
        return BitmapArg(pgsize: pgsize, size: size, data: data, prior: prior)
    }

    private mutating func unmap() -> [EventBody] {
        let c = container ?? 99
        if chance(5) {
            mappings = []
            return [.unmapDMA(UnmapDMA(fd: c, flags: VFIOUAPI.unmapFlagAll, iova: 0, size: 0))]
        }
        let r = range()
        var x = UnmapDMA(fd: c, flags: 0, iova: r.iova, size: r.size)
        if chance(tracking ? 60 : 15) {
            x.flags |= VFIOUAPI.unmapFlagGetDirtyBitmap
            x.argsz = VFIOUAPI.dmaUnmapMinSize + VFIOUAPI.bitmapSize
            x.bitmap = bitmap(pages: r.size / Self.page)
        }
        if chance(3) { x.flags |= pick([VFIOUAPI.unmapFlagVAddr, 8, VFIOUAPI.unmapFlagAll]) }
        // Forget only what surely goes: an UNMAP that may fail (odd flags, a
        // bitmap that is not plain or not tracking, a range cutting a mapping
        // that v2 refuses to split) leaves the mappings in the picture, so
        // that the memory the kernel may still pin is never underrated.
        let inside = { (m: (iova: UInt64, size: UInt64)) in m.iova >= r.iova && m.iova &+ m.size <= r.iova &+ r.size }
        let cut = mappings.contains { $0.iova < r.iova &+ r.size && r.iova < $0.iova &+ $0.size && !inside($0) }
        let plainBitmap = x.bitmap.map { tracking && $0.pgsize == Self.page && $0.data == .valid && $0.size == (r.size / Self.page + 63) / 64 * 8 } ?? true
        if x.flags & ~VFIOUAPI.unmapFlagGetDirtyBitmap == 0 && plainBitmap && !cut {
            mappings.removeAll(where: inside)
        }
        pinned.removeAll { $0 >= r.iova && $0 < r.iova &+ r.size }
        return [.unmapDMA(x)]
    }

    // MARK: Dirty tracking

    private mutating func dirty() -> [EventBody] {
        let c = container ?? 99
        switch rng.below(10) {
        case 0, 1:
            tracking = true
            return [.dirtyPages(DirtyPages(fd: c, flags: VFIOUAPI.dirtyFlagStart))]
        case 2:
            tracking = false
            return [.dirtyPages(DirtyPages(fd: c, flags: VFIOUAPI.dirtyFlagStop))]
        case 3:
            // Odd flags and argsz.
            return [.dirtyPages(DirtyPages(fd: c, argsz: pick([4, 8, 12, VFIOUAPI.dirtyBitmapMinSize]),
                                           flags: pick([0, 3, 5, 6, 7, 8])))]
        default:
            let r = range()
            var x = DirtyPages(fd: c, argsz: VFIOUAPI.dirtyBitmapMinSize + VFIOUAPI.dirtyBitmapGetSize,
                               flags: VFIOUAPI.dirtyFlagGetBitmap,
                               range: DirtyRange(iova: r.iova, size: r.size, bitmap: bitmap(pages: r.size / Self.page)))
            if chance(3) { x.argsz = pick([VFIOUAPI.dirtyBitmapMinSize, x.argsz - 1]) }
            return [.dirtyPages(x)]
        }
    }

    // MARK: Pins

    private mutating func pin() -> [EventBody] {
        // Pins, unpins and dma_rw come from an open device (rule D11): a
        // closed one is opened again first.
        guard device != nil else { return [getDevice()] }
        let g = configuration.emulatedGroup
        let inside: UInt64
        if !mappings.isEmpty {
            let m = pick(mappings)
            inside = m.iova + Self.page * rng.below(max(1, m.size / Self.page))
        } else {
            inside = 0
        }
        switch rng.below(10) {
        case 0, 1, 2, 3:
            let n = UInt32(chance(85) ? 1 : pages(chance(90) ? 8 : 600))
            let iova = chance(5) ? inside + 0x100 : inside
            pinned.append(iova)
            return [.pin(Pin(group: g, iova: iova, npage: n, prot: chance(90) ? 3 : pick([1, 2, 0])))]
        case 4, 5:
            let iova = pinned.isEmpty || chance(10) ? inside : pinned.removeLast()
            return [.unpin(Unpin(group: g, iova: iova, npage: 1))]
        default:
            let len: UInt64 = chance(70) ? pages(2) * 8 : pick([1, 4096, 4097, 3 * 4096 + 5, 0] as [UInt64])
            return [.dmaRW(DMARW(group: g, iova: inside + (chance(50) ? 0 : rng.below(Self.page)), length: len, write: chance(80)))]
        }
    }

    /// One step: a kind by weight, then its events.
    private mutating func step() -> [EventBody] {
        let w = configuration.weights
        let kinds: [(UInt64, Int)] = [(w.lifecycle, 0), (w.map, 1), (w.unmap, 2), (w.dirty, 3), (w.pin, 4)]
        let total = kinds.reduce(0) { $0 + $1.0 }
        guard total > 0 else { return lifecycle() }
        var x = rng.below(total)
        for (weight, kind) in kinds {
            if x < weight {
                switch kind {
                case 1: return map()
                case 2: return unmap()
                case 3: return dirty()
                case 4: return pin()
                default: return lifecycle()
                }
            }
            x -= weight
        }
        return lifecycle()
    }
}

/// How often each kind of step comes (relative weights).
public struct FuzzWeights: Sendable, Equatable {
    public var lifecycle: UInt64 = 2
    public var map: UInt64 = 4
    public var unmap: UInt64 = 2
    public var dirty: UInt64 = 5
    public var pin: UInt64 = 4

    public init() {}

    static let names = ["lifecycle", "map", "unmap", "dirty", "pin"]

    /// `map=5,pin=0`: the named weights changed, the others kept.
    public init(parsing s: String) throws(FuzzError) {
        self.init()
        for part in s.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = UInt64(kv[1]), v <= 1000 else {
                throw FuzzError("--weights \(s): give NAME=N pairs (N 0..1000), e.g. map=5,pin=0; names: \(Self.names.joined(separator: ", "))")
            }
            switch kv[0] {
            case "lifecycle": lifecycle = v
            case "map": map = v
            case "unmap": unmap = v
            case "dirty": dirty = v
            case "pin": pin = v
            default: throw FuzzError("--weights: no kind '\(kv[0])' (kinds: \(Self.names.joined(separator: ", ")))")
            }
        }
    }
}

public struct FuzzError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// SplitMix64, as the tests use: small, fast and the same everywhere.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
}
