import Trace
#if canImport(Glibc)
import Glibc
#endif

/// `record --pins`: the kernel's own record of `vfio_pin_pages`,
/// `vfio_unpin_pages` and `vfio_dma_rw` calls, from kprobe events.
///
/// Signatures (6.0 and later, ``API/vfioDevice``):
///
///     int  vfio_pin_pages(struct vfio_device *, dma_addr_t iova, int npage, int prot, struct page **)
///     void vfio_unpin_pages(struct vfio_device *, dma_addr_t iova, int npage)
///     int  vfio_dma_rw(struct vfio_device *, dma_addr_t iova, void *data, size_t len, bool write)
///
/// The group number is fetched in the probe as
/// `device->group->iommu_group->id`, with the three offsets read from the
/// kernel's BTF (vmlinux and the vfio module). Results come from return
/// probes, paired with their call by task.
///
/// Before 6.0 (5.8 to 5.19, ``API/pfnArrays``; checked on Debian's 5.10):
///
///     int vfio_pin_pages(struct device *, unsigned long *user_pfn, int npage, int prot, unsigned long *phys_pfn)
///     int vfio_unpin_pages(struct device *, unsigned long *user_pfn, int npage)
///     int vfio_dma_rw(struct vfio_group *, dma_addr_t iova, void *data, size_t len, bool write)
///
/// The group is `dev->iommu_group->id` (offsets from vmlinux's BTF: 5.10
/// has no module BTF), the IOVA the first user pfn times the page size (a
/// driver passes consecutive pfns for a run of pages, as the test device
/// does). `struct vfio_group` lives in the vfio module, whose layout no BTF
/// gives there, so dma_rw's group comes from pairing the group pointer with
/// the call that handed it out: `vfio_group_get_external_user_from_dev(dev)`,
/// which a driver calls when its device opens. A dma_rw through a group
/// handed out before recording started is a loss record.
///
/// The probes live in a kprobe group and a tracefs instance named after
/// this process (`vfiotrace_<pid>`), so that concurrent recorders and other
/// tracing users do not see each other; the instance's clock is `mono`, the
/// clock the recorder stamps ioctls with. Leftovers of a recorder that was
/// killed are removed by the next one.
public final class KernelPinTracer {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// One kernel event, decoded: a trace event body and when it happened.
    public struct Decoded: Sendable {
        public var time: UInt64
        public var tid: UInt32
        public var body: EventBody
    }

    private let fs: Tracefs
    private let group: String
    /// Appended to every event name: `_<pid>`.
    private let suffix: String
    private let instance: String
    private var readers: [(cpu: Int, fd: Int32)] = []
    private var layout = RingBufferPage.Layout()
    private var decoder: PinEventDecoder
    /// The probe names of this kernel's API.
    private let names: [String]
    /// Events the kernel says it dropped, counted per CPU from the pages.
    private var missedPerCPU: [Int: UInt64] = [:]
    public var eventsRead: UInt64 { decoder.eventsRead }
    private var stopped = false

    /// The kprobe definitions for a group name, an event-name suffix and
    /// the BTF offsets of `vfio_device.group`, `vfio_group.iommu_group`,
    /// `iommu_group.id`. The suffix makes the event names unique on the
    /// system: `kprobe_profile`, where the kernel counts missed hits, names
    /// events without their group.
    static func probeDefinitions(group g: String, suffix s: String, offsets o: [UInt32]) -> [String] {
        let groupArg = "group=+\(o[2])(+\(o[1])(+\(o[0])($arg1))):s32"
        return [
            "p:\(g)/pin\(s) vfio_pin_pages \(groupArg) iova=$arg2:x64 npage=$arg3:s32 prot=$arg4:s32",
            "r:\(g)/pin_ret\(s) vfio_pin_pages ret=$retval:s32",
            "p:\(g)/unpin\(s) vfio_unpin_pages \(groupArg) iova=$arg2:x64 npage=$arg3:s32",
            "p:\(g)/dma_rw\(s) vfio_dma_rw \(groupArg) iova=$arg2:x64 len=$arg4:u64 write=$arg5:u8",
            "r:\(g)/dma_rw_ret\(s) vfio_dma_rw ret=$retval:s32",
        ]
    }

    static let eventNames = ["pin", "pin_ret", "unpin", "dma_rw", "dma_rw_ret"]

    /// The pre-6.0 probes, with the BTF offsets of `device.iommu_group` and
    /// `iommu_group.id`: `iova` holds the first user pfn, dma_rw and the
    /// group hand-out carry the `vfio_group` pointer (`vgroup`).
    static func pfnArrayProbeDefinitions(group g: String, suffix s: String, offsets o: [UInt32]) -> [String] {
        let groupArg = "group=+\(o[1])(+\(o[0])($arg1)):s32"
        return [
            "p:\(g)/pin\(s) vfio_pin_pages \(groupArg) iova=+0($arg2):x64 npage=$arg3:s32 prot=$arg4:s32",
            "r:\(g)/pin_ret\(s) vfio_pin_pages ret=$retval:s32",
            "p:\(g)/unpin\(s) vfio_unpin_pages \(groupArg) iova=+0($arg2):x64 npage=$arg3:s32",
            "p:\(g)/dma_rw\(s) vfio_dma_rw vgroup=$arg1:x64 iova=$arg2:x64 len=$arg4:u64 write=$arg5:u8",
            "r:\(g)/dma_rw_ret\(s) vfio_dma_rw ret=$retval:s32",
            "p:\(g)/group_get\(s) vfio_group_get_external_user_from_dev \(groupArg)",
            "r:\(g)/group_get_ret\(s) vfio_group_get_external_user_from_dev vgroup=$retval:x64",
        ]
    }

    static let pfnArrayEventNames = eventNames + ["group_get", "group_get_ret"]

    /// Which signatures a kernel's VFIO core has.
    public enum API: Sendable, Equatable {
        /// 6.0+: a `struct vfio_device *` and an IOVA.
        case vfioDevice
        /// 5.8 to 5.19: a `struct device *` and arrays of pfns (dma_rw on the group).
        case pfnArrays

        /// The API of a kernel release (`uname -r`), nil before 5.8 (no
        /// dirty tracking, no `vfio_dma_rw`).
        public init?(release: String) {
            let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
            guard parts.count == 2 else { return nil }
            if parts[0] >= 6 { self = .vfioDevice } else if parts[0] == 5 && parts[1] >= 8 { self = .pfnArrays } else { return nil }
        }
    }

    /// Sets up the probes and starts tracing, with a ring buffer of
    /// `bufferKB` per CPU. Throws, leaving nothing behind, when the kernel
    /// cannot do it (no tracefs, no BTF, vfio not loaded, a kernel older
    /// than 6.0).
    public init(bufferKB: Int = 4096) throws {
        let release = Posix.uname().release
        guard let api = API(release: release) else {
            throw Failure(description: "--pins reads the signatures of vfio_pin_pages and friends from 5.8 on; this kernel is \(release)")
        }
        guard access("/sys/module/vfio", F_OK) == 0 else {
            throw Failure(description: "--pins: the vfio module is not loaded (modprobe vfio, or load a VFIO driver first)")
        }
        let offsets: [UInt32]
        do {
            switch api {
            case .vfioDevice:
                let module = "/sys/kernel/btf/vfio"
                let btf = try BTF.load(modules: access(module, F_OK) == 0 ? [module] : [])
                offsets = try btf.offsets(start: "vfio_device", path: ["group", "iommu_group", "id"])
            case .pfnArrays:
                offsets = try BTF.load(modules: []).offsets(start: "device", path: ["iommu_group", "id"])
            }
        } catch {
            let needs = api == .vfioDevice ? "CONFIG_DEBUG_INFO_BTF and _MODULES" : "CONFIG_DEBUG_INFO_BTF"
            throw Failure(description: "--pins needs the kernel's BTF (\(needs)) to find a device's group: \(error)")
        }
        names = api == .vfioDevice ? Self.eventNames : Self.pfnArrayEventNames
        do { fs = try Tracefs.locate() } catch { throw Failure(description: "\(error)") }
        group = "vfiotrace_\(getpid())"
        suffix = "_\(getpid())"
        instance = "instances/" + group
        Self.removeLeftovers(fs)
        decoder = PinEventDecoder(formats: [:])
        do {
            let definitions = api == .vfioDevice ? Self.probeDefinitions(group: group, suffix: suffix, offsets: offsets)
                : Self.pfnArrayProbeDefinitions(group: group, suffix: suffix, offsets: offsets)
            for d in definitions { try fs.write("kprobe_events", d, append: true) }
            var formats: [UInt16: (name: String, format: TraceEventFormat)] = [:]
            for name in names {
                let text = try fs.read("events/\(group)/\(name)\(suffix)/format")
                guard let f = TraceEventFormat(text: text) else { throw Failure(description: "events/\(group)/\(name)\(suffix)/format: no ID line") }
                formats[f.id] = (name, f)
            }
            decoder = PinEventDecoder(formats: formats, pageSize: api == .pfnArrays ? UInt64(getpagesize()) : nil)
            if let hp = try? fs.read("events/header_page") { layout = RingBufferPage.Layout(headerPage: hp) }
            if mkdir(fs.path(instance), 0o755) != 0 && errno != EEXIST {
                throw Failure(description: "\(fs.path(instance)): \(String(cString: strerror(errno)))")
            }
            try fs.write(instance + "/trace_clock", "mono")
            try fs.write(instance + "/buffer_size_kb", String(bufferKB))
            for cpu in fs.list(instance + "/per_cpu") where cpu.hasPrefix("cpu") {
                let p = fs.path(instance + "/per_cpu/\(cpu)/trace_pipe_raw")
                let fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                guard fd >= 0 else { throw Failure(description: "\(p): \(String(cString: strerror(errno)))") }
                readers.append((Int(cpu.dropFirst(3)) ?? 0, fd))
            }
            try fs.write(instance + "/events/\(group)/enable", "1")
        } catch {
            teardown()
            throw (error as? Failure) ?? Failure(description: "\(error)")
        }
    }

    deinit { teardown() }

    /// Removes the probe groups and instances of recorders that are gone.
    static func removeLeftovers(_ fs: Tracefs) {
        for name in fs.list("instances") where name.hasPrefix("vfiotrace_") {
            if let pid = pid_t(name.dropFirst("vfiotrace_".count)), kill(pid, 0) != 0, errno == ESRCH {
                rmdir(fs.path("instances/" + name))
            }
        }
        guard let defs = try? fs.read("kprobe_events") else { return }
        for line in defs.split(separator: "\n") {
            // "p:vfiotrace_123/pin vfio_pin_pages ..."
            guard let name = line.split(separator: " ").first?.dropFirst(2), name.hasPrefix("vfiotrace_"),
                  let slash = name.firstIndex(of: "/"), let pid = pid_t(name[name.index(name.startIndex, offsetBy: 10)..<slash]),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? fs.write("kprobe_events", "-:" + name, append: true)
        }
    }

    /// One thing read from a CPU's buffer, to be put in time order with
    /// the other CPUs' before decoding.
    private enum Item {
        case record(RingBufferPage.Record)
        case loss(Decoded)
    }

    /// Reads every page the kernel has ready and returns the complete
    /// events (a call whose return is not read yet waits), in time order.
    /// All CPUs' records are merged by time before they are decoded: a
    /// pin call can sleep, and its return probe may fire on another CPU
    /// than its entry.
    public func drain() -> [Decoded] {
        var items: [(time: UInt64, cpu: Int, order: Int, item: Item)] = []
        var page = [UInt8](repeating: 0, count: Int(getpagesize()))
        for (cpu, fd) in readers {
            while true {
                let n = page.withUnsafeMutableBytes { Posix.read(fd, into: $0) }
                guard n > 0 else { break }
                let p = RingBufferPage(Array(page[0..<n]), layout: layout)
                if let missed = p.missedBefore {
                    // Lost before this page: placed ahead of its first event.
                    missedPerCPU[cpu, default: 0] &+= missed
                    let time = p.records.first?.time ?? 0
                    items.append((time, cpu, items.count, .loss(Decoded(time: time, tid: 0, body: .loss(Loss(
                        count: missed, reason: missed > 0
                            ? "the kernel's trace buffer on CPU \(cpu) overflowed: \(missed) pin/unpin/dma_rw events lost"
                            : "the kernel's trace buffer on CPU \(cpu) overflowed: pin/unpin/dma_rw events lost (count unknown)"))))))
                }
                for r in p.records { items.append((r.time, cpu, items.count, .record(r))) }
                if let d = p.damage {
                    let time = p.records.last?.time ?? 0
                    items.append((time, cpu, items.count, .loss(Decoded(time: time, tid: 0, body: .loss(Loss(count: 0, reason: "a trace buffer page from CPU \(cpu) was malformed: \(d)"))))))
                }
            }
        }
        items.sort { ($0.time, $0.cpu, $0.order) < ($1.time, $1.cpu, $1.order) }
        var out: [Decoded] = []
        for x in items {
            switch x.item {
            case .record(let r): out += decoder.decode(r)
            case .loss(let l): out.append(l)
            }
        }
        decoder.endOfRead()
        out += decoder.takeLosses()
        return Self.inTimeOrder(out)
    }

    /// Sorted by time; events of equal time keep their order (a loss
    /// record stays ahead of the page it was found on).
    static func inTimeOrder(_ events: [Decoded]) -> [Decoded] {
        events.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
    }

    /// The earliest call still waiting for its return: nothing later may be
    /// written before it is complete.
    public var oldestOpenCall: UInt64? { decoder.oldestOpenCall }

    /// Stops tracing, reads what is left, and removes the probes. Calls
    /// still open (the recorder stopped during them) come back without a
    /// result; events the buffer's statistics count as overrun but no page
    /// reported come back as one loss record.
    public func finish() -> [Decoded] {
        guard !stopped else { return [] }
        try? fs.write(instance + "/events/\(group)/enable", "0")
        var out = drain()
        out += decoder.unfinished()
        for (cpu, _) in readers {
            guard let stats = try? fs.read(instance + "/per_cpu/cpu\(cpu)/stats") else { continue }
            var overrun: UInt64 = 0
            for line in stats.split(separator: "\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                if kv.count == 2, kv[0] == "overrun" || kv[0] == "dropped events" { overrun &+= UInt64(kv[1].trimmingSpaces) ?? 0 }
            }
            let seen = missedPerCPU[cpu] ?? 0
            if overrun > seen {
                out.append(Decoded(time: .max, tid: 0, body: .loss(Loss(count: overrun - seen, reason: "the kernel's trace buffer on CPU \(cpu) overran: \(overrun - seen) pin/unpin/dma_rw events lost"))))
            }
        }
        // A return probe the kernel could not arm (too many calls in flight) is a miss.
        if let profile = try? fs.read("kprobe_profile") {
            for line in profile.split(separator: "\n") {
                let cols = line.split(separator: " ")
                guard cols.count >= 3, names.contains(where: { $0 + suffix == cols[0] }),
                      let misses = UInt64(cols[2]), misses > 0 else { continue }
                out.append(Decoded(time: .max, tid: 0, body: .loss(Loss(count: misses, reason: "the kernel missed \(misses) hits of probe \(cols[0])"))))
            }
        }
        teardown()
        return Self.inTimeOrder(out)
    }

    private func teardown() {
        guard !stopped else { return }
        stopped = true
        for (_, fd) in readers { close(fd) }
        readers = []
        rmdir(fs.path(instance))
        for name in names { try? fs.write("kprobe_events", "-:\(group)/\(name)\(suffix)", append: true) }
    }
}

/// Turns the probes' ring-buffer records into trace events: a call's entry
/// waits for its return on the same task (pin, dma_rw); unpin is complete
/// at entry. A return without its call, or a call whose return never came,
/// becomes a loss record.
public struct PinEventDecoder {
    public typealias Decoded = KernelPinTracer.Decoded
    let formats: [UInt16: (name: String, format: TraceEventFormat)]
    /// Calls whose return probe has not been read yet, by task.
    private var openCalls: [UInt32: Decoded] = [:]
    /// Returns read before their call (the call's record was committed on
    /// another CPU after that CPU had been read): each waits one more read
    /// for its call, then counts as lost.
    private var earlyReturns: [UInt32: (record: RingBufferPage.Record, name: String, read: Int)] = [:]
    private var reads = 0
    private var losses: [Decoded] = []
    public private(set) var eventsRead: UInt64 = 0
    /// Pre-6.0 probes: `iova` is a pfn of this many bytes' pages.
    let pageSize: UInt64?
    /// Pre-6.0: the group number of each `vfio_group` pointer handed out
    /// by `vfio_group_get_external_user_from_dev`, and the calls waiting
    /// for their return, by task.
    private var groupOfPointer: [UInt64: UInt32] = [:]
    private var groupGets: [UInt32: UInt32] = [:]
    /// Tasks whose dma_rw became a loss: its return is dropped with it.
    private var dropReturn: Set<UInt32> = []

    /// `formats`: each probe's format by event id, named as in
    /// `KernelPinTracer.eventNames` (or `pfnArrayEventNames`, with
    /// `pageSize` the kernel's page size).
    public init(formats: [UInt16: (name: String, format: TraceEventFormat)], pageSize: UInt64? = nil) {
        self.formats = formats
        self.pageSize = pageSize
    }

    var oldestOpenCall: UInt64? { openCalls.values.map(\.time).min() }

    /// The events one ring-buffer record completes (none for a call whose
    /// return is still to come).
    public mutating func decode(_ r: RingBufferPage.Record) -> [Decoded] {
        var out: [Decoded] = []
        guard r.data.count >= 2 else { return out }
        let id = UInt16(r.data[0]) | UInt16(r.data[1]) << 8
        guard let (name, f) = formats[id] else { return out }
        eventsRead += 1
        func v(_ field: String) -> Int64 { f.value(field, in: r.data) ?? 0 }
        let tid = UInt32(truncatingIfNeeded: v("common_pid"))
        var group = UInt32(truncatingIfNeeded: v("group"))
        var iova = UInt64(bitPattern: v("iova"))
        if let pageSize, name == "pin" || name == "unpin" { iova = iova &* pageSize }
        switch name {
        case "group_get":
            groupGets[tid] = group
        case "group_get_ret":
            // An error pointer (IS_ERR) hands out nothing.
            let pointer = UInt64(bitPattern: v("vgroup"))
            if let g = groupGets.removeValue(forKey: tid), pointer != 0, pointer < 0xffff_ffff_ffff_f000 { groupOfPointer[pointer] = g }
        case "pin", "dma_rw":
            closeUnreturned(tid)
            if pageSize != nil && name == "dma_rw" {
                guard let g = groupOfPointer[UInt64(bitPattern: v("vgroup"))] else {
                    dropReturn.insert(tid)
                    out.append(Decoded(time: r.time, tid: tid, body: .loss(Loss(count: 1, reason:
                        "task \(tid): a dma_rw through a VFIO group handed out before recording started: its group number is unknown"))))
                    return out
                }
                group = g
            }
            let call = Decoded(time: r.time, tid: tid, body: name == "pin"
                ? .pin(Pin(group: group, iova: iova, npage: UInt32(truncatingIfNeeded: v("npage")), prot: UInt32(truncatingIfNeeded: v("prot"))))
                : .dmaRW(DMARW(group: group, iova: iova, length: UInt64(bitPattern: v("len")), write: v("write") != 0)))
            if let early = earlyReturns[tid], early.record.time >= r.time {
                earlyReturns[tid] = nil
                out.append(complete(call, returnName: early.name, early.record))
            } else {
                openCalls[tid] = call
            }
        case "unpin":
            // Returns nothing since 6.0: complete at entry.
            out.append(Decoded(time: r.time, tid: tid, body: .unpin(Unpin(group: group, iova: iova, npage: UInt32(truncatingIfNeeded: v("npage"))))))
        case "pin_ret", "dma_rw_ret":
            if name == "dma_rw_ret" && dropReturn.remove(tid) != nil { return out }
            guard let call = openCalls.removeValue(forKey: tid) else {
                if let older = earlyReturns[tid] { losses.append(orphan(older.record, older.name, tid)) }
                earlyReturns[tid] = (r, name, reads)
                return out
            }
            out.append(complete(call, returnName: name, r))
        default:
            break
        }
        return out
    }

    /// A call with the result its return record carries (a loss record
    /// when the two do not belong together).
    private func complete(_ call: Decoded, returnName: String, _ r: RingBufferPage.Record) -> Decoded {
        guard let (_, f) = formats.values.first(where: { $0.name == returnName }) else { return call }
        let ret = Int64(Int32(truncatingIfNeeded: f.value("ret", in: r.data) ?? 0))
        let result: CallResult = ret < 0 ? .error(Int32(clamping: -ret)) : .ok(ret)
        var call = call
        switch call.body {
        case .pin(var x) where returnName == "pin_ret": x.result = result; call.body = .pin(x)
        case .dmaRW(var x) where returnName == "dma_rw_ret": x.result = result; call.body = .dmaRW(x)
        default:
            return Decoded(time: call.time, tid: call.tid, body: .loss(Loss(count: 1, reason: "task \(call.tid): a call and a return that do not match")))
        }
        return call
    }

    private func orphan(_ r: RingBufferPage.Record, _ name: String, _ tid: UInt32) -> Decoded {
        Decoded(time: r.time, tid: tid, body: .loss(Loss(count: 1, reason: "task \(tid) returned from \(name == "pin_ret" ? "vfio_pin_pages" : "vfio_dma_rw") without a recorded call")))
    }

    /// The end of one read of every CPU: returns that have waited a whole
    /// read for their call give up.
    public mutating func endOfRead() {
        reads += 1
        for (tid, e) in earlyReturns where e.read < reads - 1 {
            earlyReturns[tid] = nil
            losses.append(orphan(e.record, e.name, tid))
        }
    }

    /// A new call on a task that still has one open: the return was lost.
    private mutating func closeUnreturned(_ tid: UInt32) {
        guard let old = openCalls.removeValue(forKey: tid) else { return }
        losses.append(old)
        losses.append(Decoded(time: old.time, tid: tid, body: .loss(Loss(count: 1, reason: "task \(tid): the return of a call was lost; its result is unknown"))))
    }

    /// Losses found while decoding (calls whose return was lost, with
    /// those calls, result unknown).
    public mutating func takeLosses() -> [Decoded] {
        defer { losses = [] }
        return losses
    }

    /// The calls still open, without results (the recording ended during
    /// them), and returns whose call never came, as losses.
    public mutating func unfinished() -> [Decoded] {
        defer { openCalls = [:]; earlyReturns = [:] }
        let orphans = earlyReturns.map { orphan($0.value.record, $0.value.name, $0.key) }
        return (openCalls.values.sorted { $0.time < $1.time }) + orphans.sorted { $0.time < $1.time }
    }
}
