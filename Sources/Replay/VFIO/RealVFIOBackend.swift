import CVFIO
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Replays events against the running kernel's VFIO: real `/dev/vfio`
/// nodes, real ioctls, the kernel's own outcomes.
///
/// It opens only what it was told to: `/dev/vfio/vfio` and the groups
/// given in ``groups`` (a trace's group numbers are bound to them in the
/// order the trace opens them, unless bound explicitly). Every argument goes
/// to the kernel as recorded — argsz, flags, page sizes, sizes — and every
/// pointer is recreated by class: its own anonymous memory for a MAP's
/// vaddr and for bitmap buffers (with the recorded prior contents), NULL, a
/// PROT_NONE hole, read-only pages, a kernel address, a buffer that faults
/// after N bytes. Kernel-side events (pins, `dma_rw`) need a pinning device
/// and are reported as not replayed. Everything it opened or mapped is
/// released by ``close()`` and when the process ends.
public final class RealVFIOBackend: Backend {
    /// Real group nodes to use, in order (`/dev/vfio/N`).
    public let groups: [String]
    /// Explicit bindings: trace group number → real group node.
    private var bound: [UInt32: String]
    /// The kind of each trace group (from its SET_CONTAINER), so that an
    /// emulated trace group binds to a real mdev group and an IOMMU-backed
    /// one to a PCI group.
    private let traceKinds: [UInt32: GroupKind]
    private var fds: [Int32: Int32] = [:]
    /// Trace group fd → trace group number.
    private var groupOfFD: [Int32: UInt32] = [:]
    /// Trace group number → the real device fd opened in it (the pinning
    /// device of an emulated group).
    private var deviceOfGroup: [UInt32: Int32] = [:]
    /// Memory behind each live mapping, by container fd and IOVA.
    private(set) var mappings: [Int32: [UInt64: (size: UInt64, region: UserRegion)]] = [:]
    public var kernelRelease: String { host.kernelRelease }
    /// Where the system calls go.
    let host: VFIOHost
    /// At most this many bytes of this process's memory pinned by the
    /// kernel for mappings of containers with an IOMMU domain (see
    /// ``pinBudgetRefusal(_:)``).
    public let pinBudget: UInt64
    /// Trace container fds with an IOMMU set (SET_IOMMU succeeded).
    private var iommuSet: Set<Int32> = []
    /// Trace group fd → the trace container fd it is attached to.
    private var containerOfGroup: [Int32: Int32] = [:]
    /// Trace group fd → the kind of the real group it was opened as (read
    /// from sysfs once, at the open).
    private var kindOfFD: [Int32: GroupKind] = [:]
    /// Pages a pinning device holds at an unaligned IOVA, each with its
    /// trace group: kept from a successful pin until the device unpins it,
    /// is closed, or an UNMAP over the IOVA makes its dma_unmap release it
    /// (see ``lostPinRefusal(_:)``).
    private var unalignedPins: [UInt64: UInt32] = [:]

    public var name: String { "vfio:\(kernelRelease)" }

    /// Half of this machine's memory (MemTotal), the default ``pinBudget``.
    public static var defaultPinBudget: UInt64 {
        let meminfo = Posix.readSmallFile("/proc/meminfo") ?? ""
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            if let kb = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }) { return kb * 1024 / 2 }
        }
        return 1 << 30
    }

    public init(groups: [String], bindings: [UInt32: String] = [:], traceKinds: [UInt32: GroupKind] = [:],
                host: VFIOHost = LinuxVFIOHost(), pinBudget: UInt64 = RealVFIOBackend.defaultPinBudget) {
        self.groups = groups
        bound = bindings
        self.traceKinds = traceKinds
        self.host = host
        self.pinBudget = pinBudget
    }

    deinit { close() }

    /// Closes every fd and frees every buffer (the kernel then drops the
    /// mappings and tracking state with the container). Newest fd first
    /// (devices, then groups, then containers, as a VMM tears down), and
    /// always in the same order, so that recordings of a replay repeat.
    public func close() {
        for real in fds.values.sorted(by: >) { _ = host.close(real) }
        fds = [:]
        mappings = [:]
        iommuSet = []
        containerOfGroup = [:]
        kindOfFD = [:]
        unalignedPins = [:]
    }

    /// Whether the container behind trace fd `c` has an IOMMU domain: an
    /// IOMMU set and an IOMMU-backed group attached. Its mappings are then
    /// pinned whole by the kernel (`vfio_pin_map_dma`).
    private func hasDomain(_ c: Int32) -> Bool {
        iommuSet.contains(c) && containerOfGroup.contains { $0.value == c && kindOfFD[$0.key] == .iommu }
    }

    private func mappedBytes(_ c: Int32) -> UInt64 {
        mappings[c]?.values.reduce(0) { $0 &+ $1.size } ?? 0
    }

    /// Why an event is not sent to the kernel: it would make the kernel pin
    /// more of this process's memory than ``pinBudget`` allows. As root
    /// (CAP_IPC_LOCK) the kernel's own memlock limit does not apply, so a
    /// trace that maps a few GiB and attaches an IOMMU-backed group would
    /// otherwise pin that much and end in the OOM killer. Counted: a MAP_DMA
    /// into a container with a domain (every page pinned), and the first
    /// IOMMU-backed group joining a container with mappings
    /// (`vfio_iommu_replay` pins them all). Pins through the test device are
    /// at most 512 pages a call and are not counted.
    private func pinBudgetRefusal(_ event: Event) -> String? {
        let (container, adding): (Int32, UInt64)
        switch event.body {
        case .mapDMA(let x) where hasDomain(x.fd) && x.flags & VFIOUAPI.mapFlagVAddr == 0:
            (container, adding) = (x.fd, x.size)
        case .groupSetContainer(let x) where iommuSet.contains(x.container) && !hasDomain(x.container):
            guard kindOfFD[x.fd] == .iommu else { return nil }
            (container, adding) = (x.container, 0)
        default:
            return nil
        }
        let total = mappedBytes(container).addingReportingOverflow(adding)
        guard total.overflow || total.partialValue > pinBudget else { return nil }
        return "the kernel would pin \(TextSyntax.size(total.overflow ? .max : total.partialValue)) of this process's memory for container fd \(container) (an IOMMU-backed group attached), over the replay's budget of \(TextSyntax.size(pinBudget))"
    }

    /// Why a pin is not sent to the kernel: one of its pages, at an
    /// unaligned IOVA, would reach into a mapping that starts above the
    /// page (`vfio_find_dma` matches the overlap). The kernel then pins the
    /// user page below that mapping and crashes later: an out-of-bounds
    /// bitmap write while tracking, and BUG_ON in vfio_dma_do_unmap when
    /// the mapping goes (6.1 and 6.12; README, "A kernel bug"). Every live
    /// mapping this replay made is checked, whichever container.
    private func pinBelowMappingRefusal(_ x: Pin) -> String? {
        let page: UInt64 = 4096
        guard x.iova % page != 0, x.npage <= 512 else { return nil }
        for i in 0..<UInt64(x.npage) {
            let iova = x.iova &+ i * page
            for m in mappings.values {
                if let start = m.keys.first(where: { $0 > iova && $0 - iova < page }) {
                    return "pin at 0x\(String(iova, radix: 16)): its page reaches the mapping at 0x\(String(start, radix: 16)) from below, which crashes the kernel (a page pinned below a mapping; README, \"A kernel bug\")"
                }
            }
        }
        return nil
    }

    /// Why a MAP_DMA is not sent to the kernel: it would start inside the
    /// page of a pin the device holds at an unaligned IOVA, in the mapping
    /// that ends in that page. That page then overlaps two mappings, and
    /// when the device unpins it, vfio_unpin_pages looks for it again with
    /// vfio_find_dma(iova, PAGE_SIZE), may meet the new mapping (whichever
    /// the rb-tree walk reaches first), and unpins nothing: the first
    /// mapping keeps the page forever, reports it on every query, warns in
    /// vfio_remove_dma at the container's release and crashes in
    /// vfio_dma_do_unmap's BUG_ON when unmapped (6.1 and 6.12;
    /// scripts/lab/pin-lost-to-later-mapping; README, "A kernel bug"). A
    /// MAP the kernel refuses anyway (it overlaps a live mapping of its
    /// container: EEXIST) is sent.
    private func lostPinRefusal(_ x: MapDMA) -> String? {
        let page: UInt64 = 4096
        guard !unalignedPins.isEmpty, x.flags & VFIOUAPI.mapFlagVAddr == 0, x.size > 0 else { return nil }
        let end = x.iova.addingReportingOverflow(x.size)
        let last = end.overflow ? UInt64.max : end.partialValue &- 1
        if let live = mappings[x.fd], live.contains(where: { $0.key <= last && x.iova <= $0.key &+ ($0.value.size &- 1) }) { return nil }
        guard let (pin, group) = unalignedPins.first(where: { x.iova > $0.key && x.iova - $0.key < page }) else { return nil }
        return "map at 0x\(String(x.iova, radix: 16)) starts inside the page of the pin at 0x\(String(pin, radix: 16)) that group \(group)'s device holds: its unpin would be lost, which crashes the kernel (a pin lost to a later mapping; README, \"A kernel bug\")"
    }

    /// Keeps ``unalignedPins`` in step with a pin request the device ran.
    private func notePins(_ group: UInt32, iova: UInt64, npage: UInt32, pinned: Bool) {
        let page: UInt64 = 4096
        guard iova % page != 0, npage <= 512 else { return }
        for i in 0..<UInt64(npage) {
            let (p, o) = iova.addingReportingOverflow(i * page)
            if o { break }
            if pinned { unalignedPins[p] = group } else { unalignedPins[p] = nil }
        }
    }

    /// The real node for trace group `n`: its binding, or the next unused
    /// group. Nil when none is left (the event is not replayed).
    private func realGroup(_ n: UInt32) -> String? {
        if let g = bound[n] { return g }
        let free = groups.filter { !bound.values.contains($0) }
        let wantEmulated = traceKinds[n] == .emulated
        guard let next = free.first(where: { (host.groupKind(ofNode: $0) == .emulated) == wantEmulated }) ?? (traceKinds[n] == nil ? free.first : nil)
        else { return nil }
        bound[n] = next
        return next
    }

    /// The kind each trace group is attached as, from the trace's opens
    /// (which fd is which group) and SET_CONTAINERs (the kind).
    public static func traceGroupKinds(_ events: some Sequence<Event>) -> [UInt32: GroupKind] {
        var groupOfFD: [Int32: UInt32] = [:]
        var kinds: [UInt32: GroupKind] = [:]
        for e in events {
            switch e.body {
            case .open(let o):
                if let n = o.groupNumber, let fd = o.result?.value.flatMap({ Int32(exactly: $0) }) { groupOfFD[fd] = n }
            case .groupSetContainer(let g):
                if let n = groupOfFD[g.fd], g.kind != .unknown { kinds[n] = g.kind }
            default: break
            }
        }
        return kinds
    }

    /// Whether a real group node holds mdev devices (emulated IOMMU) rather
    /// than PCI ones.
    public static func isEmulatedGroup(_ node: String) -> Bool { IOMMUGroups.kind(ofNode: node) == .emulated }

    public func perform(_ event: Event) -> Performed {
        var e = event
        var notes: [BackendNote] = []
        func notReplayed(_ why: String) { notes.append(.notReplayed(why)) }
        if case .pin(var x) = event.body, let why = pinBelowMappingRefusal(x) {
            x.result = nil
            e.body = .pin(x)
            return Performed(e, notes: [.notReplayed(why)])
        }
        if case .mapDMA(var x) = event.body, let why = lostPinRefusal(x) {
            x.result = nil
            e.body = .mapDMA(x)
            return Performed(e, notes: [.notReplayed(why)])
        }
        if let why = pinBudgetRefusal(event) {
            switch event.body {
            case .mapDMA(var x): x.result = nil; e.body = .mapDMA(x)
            case .groupSetContainer(var x): x.result = nil; e.body = .groupSetContainer(x)
            default: break
            }
            return Performed(e, notes: [.notReplayed(why)])
        }
        switch event.body {
        case .open(var x):
            let path: String?
            if x.path == "/dev/vfio/vfio" {
                path = x.path
            } else if let n = x.groupNumber {
                path = realGroup(n)
                if path == nil {
                    notReplayed(traceKinds[n] == .emulated
                        ? "group \(n) is emulated: it needs a pinning (mdev) device's group (--group)"
                        : "group \(n): no real group given for it (--group)")
                }
            } else {
                path = nil
                notes.append(.notModelled("open of \(x.path): not a VFIO node"))
            }
            if let path {
                switch host.open(path) {
                case .failure(let e):
                    x.result = .error(e.code)
                case .success(let real):
                    let traceFD = x.result?.value.flatMap { Int32(exactly: $0) } ?? real
                    fds[traceFD] = real
                    if let n = x.groupNumber { groupOfFD[traceFD] = n; kindOfFD[traceFD] = host.groupKind(ofNode: path) }
                    x.result = .ok(Int64(traceFD))
                }
            } else {
                x.result = nil
            }
            e.body = .open(x)
        case .close(var x):
            if let real = fds.removeValue(forKey: x.fd) {
                x.result = host.close(real).map { .error($0.code) } ?? .ok(0)
                // A pinning device's close_device unpins what it holds.
                if let group = deviceOfGroup.first(where: { $0.value == real })?.key {
                    deviceOfGroup[group] = nil
                    unalignedPins = unalignedPins.filter { $0.value != group }
                }
                mappings[x.fd] = nil
                if x.result == .ok(0) {
                    // A container's groups are detached with it; a group
                    // closed leaves its container, the last one with the IOMMU.
                    iommuSet.remove(x.fd)
                    containerOfGroup = containerOfGroup.filter { $0.value != x.fd }
                    if let c = containerOfGroup.removeValue(forKey: x.fd), !containerOfGroup.values.contains(c) {
                        iommuSet.remove(c)
                        mappings[c] = nil
                    }
                    kindOfFD[x.fd] = nil
                }
            } else {
                x.result = nil
                notReplayed("close of fd \(x.fd), which this replay did not open")
            }
            e.body = .close(x)
        case .getAPIVersion(var x):
            x.result = ioctl(x.fd, cvfio_GET_API_VERSION, nil, &notes)
            e.body = .getAPIVersion(x)
        case .checkExtension(var x):
            x.result = ioctl(x.fd, cvfio_CHECK_EXTENSION, UnsafeMutableRawPointer(bitPattern: UInt(x.ext)), &notes)
            e.body = .checkExtension(x)
        case .setIOMMU(var x):
            x.result = ioctl(x.fd, cvfio_SET_IOMMU, UnsafeMutableRawPointer(bitPattern: UInt(x.iommuType)), &notes)
            if x.result?.isSuccess == true { iommuSet.insert(x.fd) }
            e.body = .setIOMMU(x)
        case .getInfo(var x):
            // The caller's buffer is argsz long (at least the fixed part),
            // capped: the kernel writes no more than argsz.
            var buf = [UInt8](repeating: 0, count: min(max(Int(x.argsz), UAPI.IOMMUInfoLayout.size), 1 << 20))
            buf.putLE32(x.argsz, at: UAPI.IOMMUInfoLayout.argsz)
            x.result = buf.withUnsafeMutableBytes { ioctl(x.fd, cvfio_IOMMU_GET_INFO, $0.baseAddress, &notes) }
            x.info = x.result?.isSuccess == true ? IOMMUInfo(decoding: buf) : nil
            e.body = .getInfo(x)
        case .mapDMA(var x):
            x.result = map(x, &notes)
            e.body = .mapDMA(x)
        case .unmapDMA(var x):
            (x.result, x.sizeOut, x.bitmapOut) = unmap(x, &notes)
            e.body = .unmapDMA(x)
        case .dirtyPages(var x):
            (x.result, x.bitmapOut) = dirtyPages(x, &notes)
            e.body = .dirtyPages(x)
        case .groupGetStatus(var x):
            var buf = UAPI.GroupStatus(argsz: x.argsz).bytes
            x.result = buf.withUnsafeMutableBytes { ioctl(x.fd, cvfio_GROUP_GET_STATUS, $0.baseAddress, &notes) }
            x.flagsOut = x.result?.isSuccess == true ? UAPI.GroupStatus(decoding: buf).flags : nil
            e.body = .groupGetStatus(x)
        case .groupSetContainer(var x):
            if var container = fds[x.container] {
                if x.kind == .emulated, let real = fds[x.fd], let devices = host.devices(inGroupOfFD: real),
                   devices.contains(where: { $0.contains(":") && $0.contains(".") }) {
                    notes.append(.notReplayed("the trace's group is emulated (mdev) but the real group holds PCI device \(devices[0]): pins and dirty scope will differ"))
                }
                x.result = ioctl(x.fd, cvfio_GROUP_SET_CONTAINER, &container, &notes)
                if x.result?.isSuccess == true { containerOfGroup[x.fd] = x.container }
            } else {
                x.result = nil
                notReplayed("container fd \(x.container) was not opened by this replay")
            }
            e.body = .groupSetContainer(x)
        case .groupUnsetContainer(var x):
            x.result = ioctl(x.fd, cvfio_GROUP_UNSET_CONTAINER, nil, &notes)
            if x.result?.isSuccess == true {
                // The last group out takes the container's IOMMU with it.
                if let c = containerOfGroup.removeValue(forKey: x.fd), !containerOfGroup.values.contains(c) {
                    iommuSet.remove(c)
                    mappings[c] = nil
                }
            }
            e.body = .groupUnsetContainer(x)
        case .groupGetDeviceFD(var x):
            x.result = getDeviceFD(x, &notes)
            e.body = .groupGetDeviceFD(x)
        case .pin(var x):
            x.result = pinDevice(x.group, op: UInt32(VFIOTRACE_PIN_OP_PIN), iova: x.iova, length: UInt64(x.npage), prot: x.prot, &notes)
            if case .ok(let n)? = x.result, n > 0 { notePins(x.group, iova: x.iova, npage: x.npage, pinned: true) }
            e.body = .pin(x)
        case .unpin(var x):
            // vfio_unpin_pages returns nothing (6.0+); the device unpins
            // only pages it pinned.
            if pinDevice(x.group, op: UInt32(VFIOTRACE_PIN_OP_UNPIN), iova: x.iova, length: UInt64(x.npage), prot: 0, &notes) != nil {
                notePins(x.group, iova: x.iova, npage: x.npage, pinned: false)
            }
            x.result = nil
            e.body = .unpin(x)
        case .dmaRW(var x):
            let r = pinDevice(x.group, op: UInt32(VFIOTRACE_PIN_OP_RW), iova: x.iova, length: x.length, prot: x.write ? 1 : 0, &notes)
            x.result = r.map { if case .ok = $0 { return .ok(0) }; return $0 }
            e.body = .dmaRW(x)
        case .rawIoctl(var x):
            x.result = nil
            x.argOut = nil
            notes.append(.notModelled("undecoded ioctl"))
            e.body = .rawIoctl(x)
        case .marker, .loss:
            break
        }
        return Performed(e, notes: notes)
    }

    /// `ioctl` on the real fd behind trace fd `fd`; nil (not replayed) when
    /// this replay has no such fd.
    private func ioctl(_ fd: Int32, _ request: UInt, _ arg: UnsafeMutableRawPointer?, _ notes: inout [BackendNote]) -> CallResult? {
        guard let real = fds[fd] else {
            notes.append(.notReplayed("fd \(fd) was not opened by this replay"))
            return nil
        }
        switch host.ioctl(real, request, arg) {
        case .success(let r): return .ok(Int64(r))
        case .failure(let e): return .error(e.code)
        }
    }

    /// One request to the vfiotrace_pin device of trace group `group`: the
    /// kernel function's return as a result (a count or 0; -errno as the
    /// errno). Not replayed without an open pinning device in that group.
    private func pinDevice(_ group: UInt32, op: UInt32, iova: UInt64, length: UInt64, prot: UInt32,
                           _ notes: inout [BackendNote]) -> CallResult? {
        guard let dev = deviceOfGroup[group] else {
            notes.append(.notReplayed("group \(group) has no open pinning (vfiotrace_pin) device"))
            return nil
        }
        var req = vfiotrace_pin_req(op: op, prot: prot, iova: iova, length: length, result: 0)
        if case .failure(let e) = host.ioctl(dev, cvfio_PIN_IOCTL, &req) {
            notes.append(.notReplayed("the device in group \(group) is not a vfiotrace_pin device (\(ErrnoName.name(e.code)))"))
            return nil
        }
        return req.result < 0 ? .error(Int32(clamping: -req.result)) : .ok(req.result)
    }

    private func map(_ x: MapDMA, _ notes: inout [BackendNote]) -> CallResult? {
        // The vaddr: our own memory of the recorded class. A huge mapping
        // is reserved, not committed (the kernel pins what it needs).
        guard let region = UserRegion(x.vaddr, size: x.size) else {
            notes.append(.notReplayed("could not reserve \(x.size) bytes of address space for the vaddr"))
            return nil
        }
        var buf = UAPI.DMAMap(argsz: x.argsz, flags: x.flags, vaddr: region.address, iova: x.iova, size: x.size).bytes
        let r = buf.withUnsafeMutableBytes { ioctl(x.fd, cvfio_IOMMU_MAP_DMA, $0.baseAddress, &notes) }
        if r?.isSuccess == true && x.flags & VFIOUAPI.unmapFlagVAddr == 0 {
            mappings[x.fd, default: [:]][x.iova] = (x.size, region)
        }
        return r
    }

    /// A `struct vfio_bitmap` buffer of the recorded class and contents.
    private func bitmapRegion(_ b: BitmapArg) -> (UserRegion, BitmapBytes?)? {
        // Past 256 MiB the kernel refuses the size before touching memory;
        // a small stand-in keeps the pointer's class without the memory.
        let size = min(b.size, VFIOLimits.dirtyBitmapSizeMax + 8)
        guard let r = UserRegion(b.data, size: size, contents: b.prior) else { return nil }
        return (r, b.prior)
    }

    /// The buffer after the call, as the engine reports it: for readable
    /// classes, its bytes (the recorded prior where it cannot be read).
    private func contents(_ r: UserRegion, _ b: BitmapArg, prior: BitmapBytes?) -> BitmapBytes? {
        guard b.data.pointerClass == .valid || b.data.pointerClass == .readOnly, b.size <= VFIOLimits.dirtyBitmapSizeMax else { return nil }
        return r.contents(b.size, fallback: prior)
    }

    private func unmap(_ x: UnmapDMA, _ notes: inout [BackendNote]) -> (CallResult?, UInt64?, BitmapBytes?) {
        var arg = UAPI.DMAUnmap(argsz: x.argsz, flags: x.flags, iova: x.iova, size: x.size)
        var region: (UserRegion, BitmapBytes?)? = nil
        if let b = x.bitmap {
            region = bitmapRegion(b)
            guard let region else {
                notes.append(.notReplayed("could not allocate the bitmap buffer"))
                return (nil, nil, nil)
            }
            arg.bitmap = UAPI.Bitmap(pgsize: b.pgsize, size: b.size, data: region.0.address)
        }
        // Always the bitmap's room: the kernel reads only what argsz says.
        var buf = arg.bytes
        let r = buf.withUnsafeMutableBytes { ioctl(x.fd, cvfio_IOMMU_UNMAP_DMA, $0.baseAddress, &notes) }
        var sizeOut: UInt64? = nil
        if r?.isSuccess == true {
            sizeOut = UAPI.DMAUnmap.sizeOut(buf)
            if x.flags & VFIOUAPI.unmapFlagVAddr == 0 { releaseMappings(x) }
        }
        let out = region.flatMap { contents($0.0, x.bitmap!, prior: $0.1) }
        return (r, sizeOut, out)
    }

    /// Drops the memory of mappings an UNMAP removed (whole mappings that
    /// start in the range; ALL: every one), and the unaligned pins the
    /// devices' dma_unmap released with them (those in a removed mapping).
    private func releaseMappings(_ x: UnmapDMA) {
        guard var m = mappings[x.fd] else { return }
        let removed: [UInt64: (size: UInt64, region: UserRegion)]
        if x.flags & VFIOUAPI.unmapFlagAll != 0 {
            (removed, m) = (m, [:])
        } else {
            let last = x.iova &+ (x.size &- 1)
            removed = m.filter { $0.key >= x.iova && $0.key <= last }
            m = m.filter { !($0.key >= x.iova && $0.key <= last) }
        }
        mappings[x.fd] = m
        if !unalignedPins.isEmpty {
            unalignedPins = unalignedPins.filter { p in !removed.contains { p.key >= $0.key && p.key - $0.key < $0.value.size } }
        }
    }

    private func dirtyPages(_ x: DirtyPages, _ notes: inout [BackendNote]) -> (CallResult?, BitmapBytes?) {
        var arg = UAPI.DirtyBitmap(argsz: x.argsz, flags: x.flags)
        var region: (UserRegion, BitmapBytes?)? = nil
        if let range = x.range {
            region = bitmapRegion(range.bitmap)
            guard let region else {
                notes.append(.notReplayed("could not allocate the bitmap buffer"))
                return (nil, nil)
            }
            arg.range = .init(iova: range.iova, size: range.size,
                              bitmap: UAPI.Bitmap(pgsize: range.bitmap.pgsize, size: range.bitmap.size, data: region.0.address))
        }
        // Always the range's room (and slack past it): the kernel reads
        // only what argsz says.
        var buf = arg.bytes + [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { ioctl(x.fd, cvfio_IOMMU_DIRTY_PAGES, $0.baseAddress, &notes) }
        return (r, region.flatMap { contents($0.0, x.range!.bitmap, prior: $0.1) })
    }

    private func getDeviceFD(_ x: GroupGetDeviceFD, _ notes: inout [BackendNote]) -> CallResult? {
        // The recorded device name belongs to the recording host; use the
        // real group's device when it has exactly one.
        var name = x.name
        if let real = fds[x.fd], let devices = host.devices(inGroupOfFD: real), devices.count == 1 { name = devices[0] }
        let r = name.withCString { ioctl(x.fd, cvfio_GROUP_GET_DEVICE_FD, UnsafeMutableRawPointer(mutating: $0), &notes) }
        if case .ok(let real)? = r {
            let traceFD = x.result?.value.flatMap { Int32(exactly: $0) } ?? Int32(real)
            fds[traceFD] = Int32(real)
            if let g = groupOfFD[x.fd] { deviceOfGroup[g] = Int32(real) }
            return .ok(Int64(traceFD))
        }
        return r
    }
}
