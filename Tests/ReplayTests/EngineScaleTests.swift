import Testing
import Trace
@testable import Replay
#if canImport(Glibc)
import Glibc
#endif

/// The sizes the kernel allows: the largest bitmap (2^31 - 1 pages, 8 TiB
/// less a page, in a 256 MiB buffer), 65535 mappings, and a budget that
/// stops a hostile trace from making the engine allocate without bound.
/// Speed is measured by `scripts/bench`, not here.
@Suite("Engine at the kernel's limits")
struct EngineScaleTests {
    static func run(_ engine: BitmapEngine, _ text: String) throws -> [Performed] {
        try Scenario.events(text).map { engine.perform($0) }
    }

    @Test("the largest mapping with a bitmap: pins at both ends come back from an 8 TiB query in a 256 MiB buffer")
    func largestMapping() throws {
        let engine = BitmapEngine(profile: .latest)
        let out = try Self.run(engine, Scenario.emulated + """
        map_dma iova=0x0 size=0x7fffffff000 -> ok
        dirty start -> ok
        pin group=20 iova=0x0 -> 1
        pin group=20 iova=0x7ffffffe000 -> 1
        dma_rw group=20 iova=0x40000000 len=8K write -> ok
        dirty get iova=0x0 size=8T bitmap_size=256M
        dirty get iova=0x0 size=8T bitmap_size=256M
        """)
        guard case .dirtyPages(let first) = out[10].event.body, case .dirtyPages(let second) = out[11].event.body else {
            Issue.record("not queries"); return
        }
        #expect(first.result == .ok(0))
        #expect(first.bitmapOut?.count == 1 << 28)
        #expect(first.bitmapOut?.setBitRuns() == [0..<1, 0x40000..<0x40002, 0x7fff_fffe..<0x7fff_ffff])
        #expect(second.bitmapOut?.setBitRuns() == [0..<1, 0x7fff_fffe..<0x7fff_ffff], "pins again, the write once")
        #expect(engine.bitmapBytes == VFIOLimits.dirtyBitmapBytes(0x7fff_ffff) + 8)
    }

    @Test("an IOMMU-backed 8 TiB-less-a-page mapping reports all-dirty as a run, not 256 MiB of literal bytes")
    func largestAllDirty() throws {
        var host = HostModel()
        host.domainIOVARanges = [0...(1 << 48) - 1]
        let engine = BitmapEngine(profile: .latest, host: host)
        let out = try Self.run(engine, Scenario.iommu + """
        map_dma iova=0x0 size=0x7fffffff000 -> ok
        dirty start -> ok
        dirty get iova=0x0 size=8T bitmap_size=256M
        """)
        guard case .dirtyPages(let q) = out[6].event.body, let bits = q.bitmapOut else { Issue.record("no bitmap"); return }
        #expect(bits.setBitRuns() == [0..<0x7fff_ffff])
        #expect(bits.segments.count <= 3)
    }

    @Test("65535 mappings: the next is ENOSPC; one query over all of them sets each one's page")
    func manyMappings() throws {
        let engine = BitmapEngine(profile: .latest)
        for e in try Scenario.events(Scenario.emulated) { _ = engine.perform(e) }
        for i in 0..<UInt64(65535) {
            let r = engine.perform(Event(.mapDMA(MapDMA(fd: 3, iova: i * 0x3000, size: 0x1000)))).event.result
            if r != .ok(0) { Issue.record("map \(i): \(String(describing: r))"); return }
        }
        #expect(engine.perform(Event(.mapDMA(MapDMA(fd: 3, iova: 65535 * 0x3000, size: 0x1000)))).event.result == .error(ENOSPC))
        #expect(engine.perform(Event(.dirtyPages(DirtyPages(fd: 3, flags: 1)))).event.result == .ok(0))
        for i in stride(from: UInt64(0), to: 65535, by: 7) {
            _ = engine.perform(Event(.dmaRW(DMARW(group: 20, iova: i * 0x3000 + 5, length: 1, write: true))))
        }
        let pages = UInt64(65535 * 3)
        let q = engine.perform(Event(.dirtyPages(DirtyPages(
            fd: 3, argsz: 48, flags: 4,
            range: DirtyRange(iova: 0, size: pages * 0x1000, bitmap: BitmapArg(pgsize: 4096, size: VFIOLimits.dirtyBitmapBytes(pages)))))))
        guard case .dirtyPages(let x) = q.event.body else { return }
        let expected = stride(from: UInt64(0), to: 65535, by: 7).map { $0 * 3..<$0 * 3 + 1 }
        #expect(x.bitmapOut?.setBitRuns() == expected)
    }

    @Test("a trace cannot make the engine hold more bitmap memory than its budget: START fails with ENOMEM")
    func memoryBudget() throws {
        let engine = BitmapEngine(profile: .latest, bitmapMemoryLimit: 64 << 20)
        let out = try Self.run(engine, Scenario.emulated + """
        map_dma iova=0x0 size=1T -> ok
        map_dma iova=0x10000000000 size=1T -> ok
        dirty start
        map_dma iova=0x20000000000 size=4K -> ok
        dirty start
        map_dma iova=0x30000000000 size=1T
        """)
        #expect(out[7].event.result == .error(ENOMEM), "two 32 MiB bitmaps and their scratch words exceed 64 MiB")
        #expect(engine.bitmapBytes == 0, "the failed START freed what it had allocated")
        #expect(out[9].event.result == .error(ENOMEM))
        #expect(out[10].event.result == .ok(0), "the budget is not charged without tracking")
    }
}

@Suite("Engine file descriptors")
struct EngineFDTests {
    @Test("N opens without a close look at about N fd numbers, not N^2 (32 000 opens took 49 s); a close frees the lowest number again")
    func linearAllocation() throws {
        let engine = BitmapEngine(profile: .latest)
        let n = 32_000
        var last: CallResult?
        for _ in 0..<n { last = engine.perform(Event(seq: 0, time: 0, tid: 1, .open(Open(path: "/dev/vfio/vfio")))).event.result }
        #expect(last == .ok(Int64(3 + n - 1)))
        #expect(engine.fdProbes <= 2 * n, "\(engine.fdProbes) numbers probed for \(n) opens")
        // The kernel hands out the lowest free number: after closing 10 and 5, 5 then 10.
        for fd in [10, 5] { _ = engine.perform(Event(seq: 0, time: 0, tid: 1, .close(Close(fd: Int32(fd))))) }
        let reopened = (0..<3).map { _ in engine.perform(Event(seq: 0, time: 0, tid: 1, .open(Open(path: "/dev/vfio/vfio")))).event.result }
        #expect(reopened == [.ok(5), .ok(10), .ok(Int64(3 + n))])
    }
}
