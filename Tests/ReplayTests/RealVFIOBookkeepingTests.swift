import Foundation
import CVFIO
import Testing
import Trace
@testable import Replay

/// A stand-in for the kernel's side of the real-VFIO backend: it hands out
/// fds from 100 up, answers ioctls as told, and keeps what it was asked, so
/// the backend's own bookkeeping is checked without root. The backend
/// against the real kernel is checked in the VM lab lane.
final class ScriptedVFIOHost: VFIOHost {
    let kernelRelease = "6.12.0-test"
    /// Group nodes and what they hold.
    var kinds: [String: GroupKind] = [:]
    var devicesOfNode: [String: [String]] = [:]
    /// Requests that fail, with the errno.
    var failing: [UInt: Int32] = [:]
    private(set) var opened: [(path: String, fd: Int32)] = []
    private(set) var closed: [Int32] = []
    private(set) var calls: [(fd: Int32, request: UInt, arg: [UInt8])] = []
    private var nextFD: Int32 = 100

    func open(_ path: String) -> Result<Int32, PosixError> {
        defer { nextFD += 1 }
        opened.append((path, nextFD))
        return .success(nextFD)
    }

    func close(_ fd: Int32) -> PosixError? {
        closed.append(fd)
        return nil
    }

    func ioctl(_ fd: Int32, _ request: UInt, _ arg: UnsafeMutableRawPointer?) -> Result<Int32, PosixError> {
        let size = request == cvfio_GROUP_SET_CONTAINER ? 4 : request == cvfio_IOMMU_MAP_DMA ? 32 : request == cvfio_IOMMU_UNMAP_DMA ? 24 : 0
        let bytes = arg.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        calls.append((fd, request, bytes))
        if let e = failing[request] { return .failure(PosixError(e)) }
        if request == cvfio_PIN_IOCTL, let req = arg?.assumingMemoryBound(to: vfiotrace_pin_req.self),
           req.pointee.op == UInt32(VFIOTRACE_PIN_OP_PIN) {
            req.pointee.result = Int64(req.pointee.length)  // every page pinned, as vfio_pin_pages does
        }
        if request == cvfio_GROUP_GET_DEVICE_FD {
            defer { nextFD += 1 }
            return .success(nextFD)
        }
        return .success(0)
    }

    /// A host whose /dev/vfio/7 is an emulated group holding one mdev.
    static func withPinningDevice() -> ScriptedVFIOHost {
        let host = ScriptedVFIOHost()
        host.kinds = ["/dev/vfio/7": .emulated]
        host.devicesOfNode = ["/dev/vfio/7": ["83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"]]
        return host
    }

    func groupKind(ofNode node: String) -> GroupKind { kinds[node] ?? .unknown }

    func devices(inGroupOfFD fd: Int32) -> [String]? {
        opened.first { $0.fd == fd }.flatMap { devicesOfNode[$0.path] }
    }
}

@Suite("Real-VFIO backend bookkeeping, with a scripted host")
struct RealVFIOBookkeepingTests {
    static let twoGroups = """
    open /dev/vfio/vfio -> 3
    open /dev/vfio/12 -> 4
    open /dev/vfio/20 -> 5
    group_set_container fd=4 container=3 kind=iommu -> ok
    group_set_container fd=5 container=3 kind=emulated -> ok
    set_iommu TYPE1v2 -> ok

    """

    func replay(_ text: String, on backend: RealVFIOBackend) throws -> [Performed] {
        try TextParser.parse(text).1.map { backend.perform($0) }
    }

    @Test("trace groups bind to real groups of their kind, in the order the trace opens them; an explicit binding wins")
    func groupBinding() throws {
        let host = ScriptedVFIOHost()
        host.kinds = ["/dev/vfio/7": .emulated, "/dev/vfio/3": .iommu, "/dev/vfio/9": .emulated]
        let events = try TextParser.parse(Self.twoGroups).1
        let kinds = RealVFIOBackend.traceGroupKinds(events)
        #expect(kinds == [12: .iommu, 20: .emulated])
        let backend = RealVFIOBackend(groups: ["/dev/vfio/7", "/dev/vfio/3"], traceKinds: kinds, host: host)
        for e in events { _ = backend.perform(e) }
        #expect(host.opened.map(\.path) == ["/dev/vfio/vfio", "/dev/vfio/3", "/dev/vfio/7"])

        let pinned = ScriptedVFIOHost()
        pinned.kinds = host.kinds
        let bound = RealVFIOBackend(groups: ["/dev/vfio/7", "/dev/vfio/3"], bindings: [20: "/dev/vfio/9"], traceKinds: kinds, host: pinned)
        for e in events { _ = bound.perform(e) }
        #expect(pinned.opened.map(\.path) == ["/dev/vfio/vfio", "/dev/vfio/3", "/dev/vfio/9"])
    }

    @Test("a trace group with no real group of its kind is not replayed, and says why")
    func noGroupLeft() throws {
        let host = ScriptedVFIOHost()
        host.kinds = ["/dev/vfio/3": .iommu]
        let events = try TextParser.parse(Self.twoGroups).1
        let backend = RealVFIOBackend(groups: ["/dev/vfio/3"], traceKinds: RealVFIOBackend.traceGroupKinds(events), host: host)
        let open20 = try #require(events.map { backend.perform($0) }.dropFirst(2).first)
        #expect(open20.notes.contains { if case .notReplayed(let why) = $0 { return why.contains("group 20 is emulated") }; return false })
        #expect(host.opened.count == 2)
    }

    @Test("trace fd numbers become real fds in every argument, and come back in the trace's numbering")
    func fdTranslation() throws {
        let host = ScriptedVFIOHost()
        host.kinds = ["/dev/vfio/3": .iommu, "/dev/vfio/7": .emulated]
        let events = try TextParser.parse(Self.twoGroups + "close fd=5 -> ok\n").1
        let backend = RealVFIOBackend(groups: ["/dev/vfio/3", "/dev/vfio/7"], traceKinds: RealVFIOBackend.traceGroupKinds(events), host: host)
        let done = events.map { backend.perform($0) }
        // Trace fds 3, 4, 5 are real 100, 101, 102.
        guard case .open(let o) = done[1].event.body else { Issue.record("not an open"); return }
        #expect(o.result == .ok(4))
        let setContainer = host.calls.filter { $0.request == cvfio_GROUP_SET_CONTAINER }
        #expect(setContainer.map(\.fd) == [101, 102])
        #expect(setContainer.map { $0.arg.le32(at: 0) } == [100, 100], "the container argument must be the real container fd")
        #expect(host.calls.last { $0.request == cvfio_SET_IOMMU }?.fd == 100)
        #expect(host.closed == [102])
        backend.close()
        #expect(host.closed == [102, 101, 100], "newest first, every fd once")
    }

    @Test("mappings keep their memory until an UNMAP succeeds or the container closes; a failed UNMAP keeps it")
    func mappingMemory() throws {
        let host = ScriptedVFIOHost()
        host.kinds = ["/dev/vfio/3": .iommu]
        let prelude = """
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container fd=4 container=3 kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x100000 size=64K -> ok
        map_dma iova=0x200000 size=64K -> ok

        """
        let backend = RealVFIOBackend(groups: ["/dev/vfio/3"], host: host)
        _ = try replay(prelude, on: backend)
        #expect(backend.mappings[3]?.keys.sorted() == [0x100000, 0x200000])
        let maps = host.calls.filter { $0.request == cvfio_IOMMU_MAP_DMA }
        #expect(maps.count == 2 && Set(maps.map { $0.arg.le64(at: 8) }).count == 2, "each mapping has its own vaddr")
        host.failing[cvfio_IOMMU_UNMAP_DMA] = 22
        let failed = try replay("unmap_dma fd=3 iova=0x100000 size=64K\n", on: backend)
        #expect(failed.first?.event.result == .error(22))
        #expect(backend.mappings[3]?.count == 2)
        host.failing = [:]
        _ = try replay("unmap_dma fd=3 iova=0x100000 size=64K\n", on: backend)
        #expect(backend.mappings[3]?.keys.sorted() == [0x200000])
        _ = try replay("close fd=3 -> ok\n", on: backend)
        #expect(backend.mappings[3] == nil)
    }

    @Test("a damaged trace is refused before anything reaches the kernel")
    func damagedTraceRefused() throws {
        let dir = NSTemporaryDirectory() + "vfiotrace-damaged-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let events = try TextParser.parse(Self.twoGroups + (0..<200).map { "marker \"m\($0)\"\n" }.joined()).1
        let w = try TraceWriter(path: dir + "/t.vft", header: TraceHeader(captureMode: "test"), options: .init(frameBytes: 300))
        for e in events { try w.append(e) }
        try w.close()
        var bytes = [UInt8](FileManager.default.contents(atPath: dir + "/t.vft")!)
        for i in (bytes.count / 2)..<(bytes.count / 2 + 64) { bytes[i] ^= 0x5A }
        FileManager.default.createFile(atPath: dir + "/t.vft", contents: Data(bytes))
        let input = try EventInput.open(dir + "/t.vft")
        #expect(throws: InputError.self) { _ = try RealVFIOBackend.traceGroupKinds(of: input) }
    }

    @Test("the pin budget: mappings an IOMMU domain would pin past it are not sent to the kernel, in either order; emulated-only containers pin nothing")
    func pinBudget() throws {
        func run(_ text: String, budget: UInt64) throws -> (host: ScriptedVFIOHost, notes: [[BackendNote]]) {
            let host = ScriptedVFIOHost()
            host.kinds = ["/dev/vfio/3": .iommu, "/dev/vfio/7": .emulated]
            let events = try TextParser.parse(text).1
            let backend = RealVFIOBackend(groups: ["/dev/vfio/3", "/dev/vfio/7"], traceKinds: RealVFIOBackend.traceGroupKinds(events),
                                          host: host, pinBudget: budget)
            return (host, events.map { backend.perform($0).notes })
        }
        func refused(_ notes: [[BackendNote]]) -> [Int] {
            notes.indices.filter { notes[$0].contains { if case .notReplayed(let w) = $0 { w.contains("over the replay's budget of 16M") } else { false } } }
        }
        let maps = Self.twoGroups + "map_dma iova=0x0 size=8M -> ok\nmap_dma iova=0x800000 size=8M -> ok\nmap_dma iova=0x1000000 size=4K -> ok\n"
        // The domain is there (group 12 is IOMMU-backed): the third mapping would make 16M + 4K.
        let (host, notes) = try run(maps, budget: 16 << 20)
        #expect(refused(notes) == [8], "\(notes)")
        #expect(host.calls.filter { $0.request == cvfio_IOMMU_MAP_DMA }.count == 2)
        // Emulated only: nothing is pinned at MAP time, so nothing is refused.
        let emulated = """
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 5
        group_set_container fd=5 container=3 kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x0 size=1G -> ok
        """
        let plain = try run(emulated, budget: 16 << 20)
        #expect(refused(plain.notes).isEmpty, "\(plain.notes)")
        // ... but an IOMMU-backed group joining it then would pin the whole 1G.
        let joining = try run(emulated + "\nopen /dev/vfio/12 -> 4\ngroup_set_container fd=4 container=3 kind=iommu -> ok\n", budget: 16 << 20)
        #expect(refused(joining.notes) == [6], "\(joining.notes)")
        #expect(joining.host.calls.filter { $0.request == cvfio_GROUP_SET_CONTAINER }.count == 1)
        // After an UNMAP the room is back.
        let unmapped = try run(maps.replacingOccurrences(of: "map_dma iova=0x1000000", with: "unmap_dma iova=0x0 size=8M -> ok\nmap_dma iova=0x1000000"), budget: 16 << 20)
        #expect(refused(unmapped.notes).isEmpty, "\(unmapped.notes)")
    }

    @Test("a pin whose page reaches a mapping from below is not sent to the kernel (it crashes it); other unaligned pins are")
    func pinBelowRefused() throws {
        let host = ScriptedVFIOHost.withPinningDevice()
        let events = try TextParser.parse(Scenario.emulated + """
        map_dma iova=0x1c000 size=8K -> ok
        pin group=20 iova=0x1b100 -> 1
        pin group=20 iova=0x1c100 -> 1
        pin group=20 iova=0x1a000 npage=3 -> 1

        """).1
        let backend = RealVFIOBackend(groups: ["/dev/vfio/7"], traceKinds: RealVFIOBackend.traceGroupKinds(events), host: host)
        let notes = events.map { backend.perform($0).notes }
        func refused(_ n: [BackendNote]) -> Bool { n.contains { if case .notReplayed(let w) = $0 { w.contains("from below") } else { false } } }
        #expect(refused(notes[6]), "\(notes[6])")
        #expect(!refused(notes[7]) && !refused(notes[8]), "inside the mapping, and aligned: sent (\(notes[7]), \(notes[8]))")
        #expect(host.calls.filter { $0.request == cvfio_PIN_IOCTL }.count == 2)
    }

    @Test("a MAP starting inside the page of a held unaligned pin is not sent (the pin's unpin would be lost and crash the kernel); after the unpin, the close or an UNMAP of its mapping it is")
    func mapOverHeldPinRefused() throws {
        let host = ScriptedVFIOHost.withPinningDevice()
        let setup = Scenario.emulated + """
        map_dma iova=0x400000 size=4K -> ok
        pin group=20 iova=0x400100 -> 1

        """
        func refused(_ n: [BackendNote]) -> Bool { n.contains { if case .notReplayed(let w) = $0 { w.contains("unpin would be lost") } else { false } } }
        func run(_ tail: String) throws -> [[BackendNote]] {
            let events = try TextParser.parse(setup + tail).1
            let backend = RealVFIOBackend(groups: ["/dev/vfio/7"], traceKinds: RealVFIOBackend.traceGroupKinds(events), host: host)
            return events.map { backend.perform($0).notes }
        }
        let held = try run("map_dma iova=0x401000 size=4K -> ok\nmap_dma iova=0x402000 size=4K -> ok\nmap_dma iova=0x400800 size=4K -> EEXIST\n")
        #expect(refused(held[7]), "starts inside the pin's page: \(held[7])")
        #expect(!refused(held[8]) && !refused(held[9]), "past the page, and overlapping the pin's own mapping (EEXIST): sent")
        for release in ["unpin group=20 iova=0x400100\n", "close fd=5\n", "unmap_dma iova=0x400000 size=4K -> ok\n"] {
            let after = try run(release + "map_dma iova=0x401000 size=4K -> ok\n")
            #expect(!refused(after[8]), "after \(release): \(after[8])")
        }
        let aligned = try run("pin group=20 iova=0x400000 -> 1\nunpin group=20 iova=0x400000\nmap_dma iova=0x401000 size=4K -> ok\n")
        #expect(refused(aligned[9]), "an aligned unpin does not release the unaligned pin: \(aligned[9])")
    }
}
