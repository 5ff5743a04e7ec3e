import Trace

/// The bitmap engine: a userspace model of `drivers/vfio/vfio_iommu_type1.c`
/// and the container/group layer above it, precise enough to return what
/// the kernel returns for the same events — every errno, every written-back
/// field, every bit of every bitmap — under a chosen ``KernelProfile``.
///
/// State mirrors the kernel's: containers with their type1 `vfio_iommu`
/// (mappings, tracking, page size, dirty scope, `dma_avail`), groups with
/// their kind and dirty scope, and file descriptors numbered as in the
/// trace. Memory follows what is mapped and tracked, never the IOVA span:
/// bitmaps exist only while tracking, one bit per page of a mapping, and a
/// budget (`bitmapMemoryLimit`) stands in for the allocation failure a real
/// kernel would hit, so a hostile trace cannot make the engine allocate more
/// than the kernel could.
public final class BitmapEngine: Backend {
    public let profile: KernelProfile
    public let host: HostModel
    /// Dirty bitmap bytes the engine will hold at once before START or MAP
    /// fail with ENOMEM, as `kvzalloc` would on a host without that memory.
    public var bitmapMemoryLimit: UInt64

    public var name: String { "engine:\(profile.name)" }

    var fds: [Int32: FileObject] = [:]
    /// No fd below this one is free (from 3): the kernel's lowest-free-fd
    /// rule without scanning from 3 at every open (which made N opens
    /// without a close quadratic).
    var lowestMaybeFree: Int32 = 3
    /// Numbers looked at while allocating fds (for the test that the
    /// search stays linear).
    var fdProbes = 0
    /// Groups by number (`/dev/vfio/N`); they outlive their fds.
    var groups: [UInt32: GroupState] = [:]
    /// Bytes of dirty bitmaps currently allocated (kernel sizes).
    var bitmapBytes: UInt64 = 0
    /// Notes collected while performing the current event.
    var notes: [BackendNote] = []

    public init(profile: KernelProfile = .latest, host: HostModel = HostModel(), bitmapMemoryLimit: UInt64 = 4 << 30) {
        self.profile = profile
        self.host = host
        self.bitmapMemoryLimit = bitmapMemoryLimit
    }

    /// A group holds its container and the container lists its groups, as
    /// the kernel's do (`vfio_group` ↔ `vfio_container`); the engine's end
    /// breaks those cycles, so that a replay of every profile in one
    /// process (conform --profile all, the fuzzer) does not leak them.
    deinit {
        for g in groups.values { g.container = nil }
    }

    public func perform(_ event: Event) -> Performed {
        notes = []
        var e = event
        switch event.body {
        case .open(var x): x.result = open(x.path, recorded: x.result); e.body = .open(x)
        case .close(var x): x.result = close(x.fd); e.body = .close(x)
        case .getAPIVersion(var x): x.result = onContainer(x.fd) { _ in .ok(0) }; e.body = .getAPIVersion(x)
        case .checkExtension(var x): x.result = onContainer(x.fd) { checkExtension($0, x.ext) }; e.body = .checkExtension(x)
        case .setIOMMU(var x): x.result = onContainer(x.fd) { setIOMMU($0, x.iommuType) }; e.body = .setIOMMU(x)
        case .getInfo(var x):
            switch type1(x.fd) {
            case .failure(let f): x.result = f.result; x.info = nil
            case .success(let t): (x.result, x.info) = getInfo(t, argsz: x.argsz)
            }
            e.body = .getInfo(x)
        case .mapDMA(var x):
            switch type1(x.fd) {
            case .failure(let f): x.result = f.result
            case .success(let t): x.result = mapDMA(t, x)
            }
            e.body = .mapDMA(x)
        case .unmapDMA(var x):
            var out = UnmapOutcome()
            switch type1(x.fd) {
            case .failure(let f): out.result = f.result
            case .success(let t): out = unmapDMA(t, x)
            }
            x.result = out.result
            x.sizeOut = out.sizeOut
            x.bitmapOut = out.bitmapOut ?? untouched(x.bitmap)
            e.body = .unmapDMA(x)
        case .dirtyPages(var x):
            var out = DirtyPagesOutcome()
            switch type1(x.fd) {
            case .failure(let f): out.result = f.result
            case .success(let t): out = dirtyPages(t, x)
            }
            x.result = out.result
            x.bitmapOut = out.bitmapOut ?? untouched(x.range?.bitmap)
            e.body = .dirtyPages(x)
        case .groupGetStatus(var x): (x.result, x.flagsOut) = groupGetStatus(x); e.body = .groupGetStatus(x)
        case .groupSetContainer(var x): x.result = groupSetContainer(x); e.body = .groupSetContainer(x)
        case .groupUnsetContainer(var x): x.result = onGroup(x.fd) { unsetContainer($0) }; e.body = .groupUnsetContainer(x)
        case .groupGetDeviceFD(var x): x.result = onGroup(x.fd) { getDeviceFD($0, recorded: x.result) }; e.body = .groupGetDeviceFD(x)
        case .pin(let x) where x.result == .error(.EINTR):
            // A pin cut short by a signal (its task being killed): the
            // kernel unwound it (vfio_iommu_type1_pin_pages). The engine
            // models no signals: the event changes nothing, keeps the
            // kernel's answer, and is counted as not modelled, not compared.
            notes.append(.notModelled("pin interrupted by a signal (EINTR): signals are not modelled"))
        case .dmaRW(let x) where x.result == .error(.EINTR):
            notes.append(.notModelled("dma_rw interrupted by a signal (EINTR): signals are not modelled"))
        case .pin(var x): x.result = pin(x); e.body = .pin(x)
        case .unpin(var x): x.result = unpin(x); e.body = .unpin(x)
        case .dmaRW(var x): x.result = dmaRW(x); e.body = .dmaRW(x)
        case .rawIoctl(var x):
            x.result = nil
            x.argOut = nil
            notes.append(.notModelled("undecoded ioctl 0x\(String(x.request, radix: 16)) on a \(x.fdKind.name) fd"))
            e.body = .rawIoctl(x)
        case .marker, .loss:
            break
        }
        return Performed(e, notes: notes)
    }

    // MARK: File descriptors

    /// What a trace fd refers to.
    enum FileObject {
        case container(ContainerState)
        case group(GroupState)
        case device(GroupState)
    }

    /// The fd an open returns: the recorded one when there is one (so that
    /// later events' fds still refer to the same objects), else the lowest
    /// free number from 3.
    func allocateFD(recorded: CallResult?) -> Int32 {
        if let v = recorded?.value, v >= 0, v <= Int64(Int32.max), fds[Int32(v)] == nil { return Int32(v) }
        var fd = lowestMaybeFree
        while fds[fd] != nil {
            fd += 1
            fdProbes += 1
        }
        lowestMaybeFree = fd
        return fd
    }

    func open(_ path: String, recorded: CallResult?) -> CallResult? {
        if path == "/dev/vfio/vfio" {
            let fd = allocateFD(recorded: recorded)
            fds[fd] = .container(ContainerState())
            return .ok(Int64(fd))
        }
        guard path.hasPrefix("/dev/vfio/"), let n = UInt32(path.dropFirst("/dev/vfio/".count)) else {
            notes.append(.notModelled("open of \(path), which is not a VFIO node"))
            return nil
        }
        let g = groups[n] ?? GroupState(number: n)
        groups[n] = g
        // vfio_group_fops_open: one open file per group.
        if g.fdOpen { return .error(.EBUSY) }
        g.fdOpen = true
        let fd = allocateFD(recorded: recorded)
        fds[fd] = .group(g)
        return .ok(Int64(fd))
    }

    func close(_ fd: Int32) -> CallResult {
        guard let obj = fds.removeValue(forKey: fd) else { return .error(.EBADF) }
        if fd >= 3 { lowestMaybeFree = min(lowestMaybeFree, fd) }
        switch obj {
        case .container:
            // The container lives on while groups hold it.
            break
        case .group(let g):
            g.fdOpen = false
            // Device fds hold the group file: release happens at the last.
            if g.deviceFDs == 0, g.container != nil { _ = unsetContainer(g) }
        case .device(let g):
            g.deviceFDs -= 1
            if g.deviceFDs == 0 { releasePins(of: g) }
            if g.deviceFDs == 0, !g.fdOpen, g.container != nil { _ = unsetContainer(g) }
        }
        return .ok(0)
    }

    /// Runs a container ioctl: EBADF for an fd that is not open, ENOTTY for
    /// one that is not a container.
    func onContainer(_ fd: Int32, _ body: (ContainerState) -> CallResult) -> CallResult {
        switch fds[fd] {
        case nil: .error(.EBADF)
        case .container(let c)?: body(c)
        case _?: .error(.ENOTTY)
        }
    }

    /// A failed fd lookup, as the ioctl's result.
    struct LookupFailure: Error {
        var result: CallResult
    }

    /// The type1 state behind a container fd: EBADF for an fd that is not
    /// open, ENOTTY for one that is not a container, EINVAL while no IOMMU
    /// driver is set (the container's default ioctl arm).
    func type1(_ fd: Int32) -> Result<Type1State, LookupFailure> {
        switch fds[fd] {
        case nil: return .failure(LookupFailure(result: .error(.EBADF)))
        case .container(let c)?:
            guard let iommu = c.iommu else { return .failure(LookupFailure(result: .error(.EINVAL))) }
            return .success(iommu)
        case _?: return .failure(LookupFailure(result: .error(.ENOTTY)))
        }
    }

    func onGroup(_ fd: Int32, _ body: (GroupState) -> CallResult) -> CallResult {
        switch fds[fd] {
        case nil: .error(.EBADF)
        case .group(let g)?: body(g)
        case _?: .error(.ENOTTY)
        }
    }

    /// The caller's buffer after a call that never touched it.
    func untouched(_ arg: BitmapArg?) -> BitmapBytes? {
        guard let arg, arg.data.pointerClass == .valid || arg.data.pointerClass == .readOnly,
              arg.size <= VFIOLimits.dirtyBitmapSizeMax else { return nil }
        if let prior = arg.prior, prior.count == arg.size { return prior }
        return UserBitmapBuffer(size: arg.size, prior: arg.prior, pointer: arg.data).contents
    }
}

/// Kernel constants of the dirty-tracking code (`docs/kernel-rules.md#constants`).
public enum VFIOLimits {
    /// `DIRTY_BITMAP_BYTES(n)`: `ALIGN(n, 64) / 8`, in the kernel's u64
    /// arithmetic (it wraps for n near 2^64, as the kernel's does).
    public static func dirtyBitmapBytes(_ n: UInt64) -> UInt64 { ((n &+ 63) & ~63) / 8 }
    /// `DIRTY_BITMAP_SIZE_MAX`: 256 MiB.
    public static let dirtyBitmapSizeMax: UInt64 = dirtyBitmapBytes(UInt64(Int32.max))
    /// `verify_bitmap_size(npages, bitmap_size)`.
    public static func bitmapSizeIsValid(npages: UInt64, size: UInt64) -> Bool {
        !(npages == 0 || size == 0 || size > dirtyBitmapSizeMax || size < dirtyBitmapBytes(npages))
    }
    /// `KMALLOC_MAX_SIZE` on x86_64: larger `kvzalloc`s come from vmalloc.
    public static let kmallocMaxSize: UInt64 = 4 << 20
}
