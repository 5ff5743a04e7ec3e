// The bitmap engine at the kernel's limits, each number next to a baseline
// measured in the same run (ratios are stable across machines; seconds are
// not):
//
//   8 TiB query:  one GET_BITMAP over the largest mapping with a bitmap
//                 (2^31 - 1 pages) into a 256 MiB buffer, against a memcpy of
//                 256 MiB; all-dirty (IOMMU-backed), sparse (a few pins), and
//                 dense (random dma_rw bits everywhere);
//   65535 maps:   one GET_BITMAP across 65535 one-page mappings at unaligned
//                 offsets, per mapping;
//   replay:       a pin-heavy trace through Replayer + engine, against only
//                 decoding the same trace;
//   memory:       8 TiB mapped as 2048 sparse 4 GiB mappings in a 48-bit
//                 space with tracking on and a pinned page in each: resident
//                 memory grown, against the bytes the kernel itself would
//                 allocate for their bitmaps.
import BenchSupport
import Foundation
import Replay
import Trace


func f(_ v: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", v) }

func maxRSS() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return u.ru_maxrss * 1024
}

func currentRSS() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = s.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
    return pages * Int(getpagesize())
}

@discardableResult
func perform(_ engine: BitmapEngine, _ body: EventBody) -> Event {
    engine.perform(Event(body)).event
}

func emulatedContainer(_ engine: BitmapEngine) {
    perform(engine, .open(Open(path: "/dev/vfio/vfio", result: .ok(3))))
    perform(engine, .open(Open(path: "/dev/vfio/20", result: .ok(4))))
    perform(engine, .groupSetContainer(GroupSetContainer(fd: 4, container: 3, kind: .emulated)))
    perform(engine, .setIOMMU(SetIOMMU(fd: 3, iommuType: 3)))
    perform(engine, .groupGetDeviceFD(GroupGetDeviceFD(fd: 4, name: "mdev0", result: .ok(5))))
}

func iommuContainer(_ engine: BitmapEngine) {
    perform(engine, .open(Open(path: "/dev/vfio/vfio", result: .ok(3))))
    perform(engine, .open(Open(path: "/dev/vfio/12", result: .ok(4))))
    perform(engine, .groupSetContainer(GroupSetContainer(fd: 4, container: 3, kind: .iommu)))
    perform(engine, .setIOMMU(SetIOMMU(fd: 3, iommuType: 3)))
}

let page: UInt64 = 4096
let maxPages: UInt64 = (1 << 31) - 1
let range8T: UInt64 = 1 << 43
let buffer256M: UInt64 = 1 << 28

func query(_ iova: UInt64, _ size: UInt64, bitmap: UInt64) -> EventBody {
    .dirtyPages(DirtyPages(fd: 3, argsz: 48, flags: 4,
                           range: DirtyRange(iova: iova, size: size, bitmap: BitmapArg(pgsize: page, size: bitmap))))
}

// `engine-bench --write-pin-trace N PATH`: only write the pin-heavy trace
// (scripts/bench replays it with the CLI to measure peak memory).
if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "--write-pin-trace", let n = Int(CommandLine.arguments[2]) {
    try writePinHeavyTrace(CommandLine.arguments[3], events: n)
    exit(0)
}

// `engine-bench --only memory|queries|mappings|replay`: one section (to
// profile it alone).
let only: String? = CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--only" ? CommandLine.arguments[2] : nil
func section(_ name: String) -> Bool { only == nil || only == name }

// Memory first, while the process holds nothing else that malloc could reuse.
// 8 TiB mapped sparsely in a 48-bit space: 2048 mappings of 4 GiB, 128 GiB apart.
if section("memory") {
    let before = currentRSS()
    let engine = BitmapEngine(profile: .latest)
    emulatedContainer(engine)
    for i in 0..<UInt64(2048) { perform(engine, .mapDMA(MapDMA(fd: 3, iova: i << 37, size: 1 << 32))) }
    perform(engine, .dirtyPages(DirtyPages(fd: 3, flags: 1)))
    // One pinned page in each mapping, so every bitmap holds a bit.
    for i in 0..<UInt64(2048) { perform(engine, .pin(Pin(group: 20, iova: (i << 37) + (i % 1024) * (1 << 22), npage: 1))) }
    for i in stride(from: UInt64(0), to: 2048, by: 64) {
        perform(engine, query(i << 37, 64 << 37, bitmap: ((64 << 37) / page + 63) / 64 * 8))
    }
    let grown = currentRSS() - before
    let kernel = 2048 * (Int((1 << 32) / page / 8) + 8)
    print("engine-bench: memory, 8 TiB in 2048 mappings over 2^48, one pin each: resident +\(grown >> 20) MiB; the kernel's own bitmaps \(kernel >> 20) MiB; ratio \(f(Double(grown) / Double(kernel))); peak RSS \(maxRSS() >> 20) MiB")
}

// Baseline: memcpy of 256 MiB (pages already faulted in, as the engine's
// bitmap is), and into freshly allocated memory, which pays the page faults
// the engine's output buffer pays. Only for the queries compared with it.
func memcpyBaselines() -> (warm: Double, fresh: Double) {
    let src = UnsafeMutableRawPointer.allocate(byteCount: Int(buffer256M), alignment: 64)
    let dst = UnsafeMutableRawPointer.allocate(byteCount: Int(buffer256M), alignment: 64)
    memset(src, 0x5a, Int(buffer256M))
    memset(dst, 0, Int(buffer256M))
    let warm = best(5) { memcpy(dst, src, Int(buffer256M)) }
    let fresh = best(5) {
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: Int(buffer256M), alignment: 64)
        memcpy(fresh, src, Int(buffer256M))
        fresh.deallocate()
    }
    src.deallocate()
    dst.deallocate()
    print("  memcpy of 256 MiB \(f(warm * 1000, 1)) ms (baseline); into fresh memory \(f(fresh * 1000, 1)) ms")
    return (warm, fresh)
}
let (tMemcpy, tMemcpyFresh) = section("queries") ? memcpyBaselines() : (1, 1)

func largestQuery(_ label: String, key: String? = nil, setup: (BitmapEngine) -> Void, between: (BitmapEngine) -> Void) {
    var host = HostModel()
    host.domainIOVARanges = [0...(1 << 48) - 1]
    let engine = BitmapEngine(profile: .latest, host: host)
    setup(engine)
    perform(engine, .mapDMA(MapDMA(fd: 3, iova: 0, size: maxPages * page)))
    perform(engine, .dirtyPages(DirtyPages(fd: 3, flags: 1)))
    var result: Event? = nil
    var t = Double.infinity
    for _ in 0..<3 {
        between(engine)
        let t0 = now()
        result = perform(engine, query(0, range8T, bitmap: buffer256M))
        t = min(t, now() - t0)
    }
    guard case .dirtyPages(let x)? = result?.body, x.result == .ok(0), let out = x.bitmapOut else { fatalError("query failed") }
    print("  8 TiB query, \(label): \(f(t * 1000, 1)) ms = \(f(t / tMemcpy)) x memcpy, \(f(t / tMemcpyFresh)) x memcpy to fresh memory; result \(out.popcount) dirty pages in \(out.segments.count) runs")
    if let key { metric(key, t / tMemcpy) }
}

if section("queries") {
largestQuery("all-dirty (IOMMU-backed)", setup: iommuContainer, between: { _ in })
largestQuery("sparse (16 pins)", setup: emulatedContainer, between: { e in
    for k in 0..<UInt64(16) { perform(e, .pin(Pin(group: 20, iova: k * (maxPages / 16) * page, npage: 1))) }
})
var x: UInt64 = 0x2545F4914F6CDD1D
largestQuery("dense (1 write per 64 pages)", key: "dense_query_vs_memcpy", setup: emulatedContainer, between: { e in
    for k in stride(from: UInt64(0), to: maxPages - 64, by: 64) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        perform(e, .dmaRW(DMARW(group: 20, iova: (k + x % 64) * page, length: 1, write: true)))
    }
})

}

// 65535 one-page mappings, every other one at an odd page so most are shifted.
if section("mappings") {
    let engine = BitmapEngine(profile: .latest)
    emulatedContainer(engine)
    let t0 = now()
    for i in 0..<UInt64(65535) { perform(engine, .mapDMA(MapDMA(fd: 3, iova: i * 3 * page, size: page))) }
    let tMap = now() - t0
    perform(engine, .dirtyPages(DirtyPages(fd: 3, flags: 1)))
    let pages = UInt64(65535 * 3)
    let t = best(5) {
        perform(engine, query(0, pages * page, bitmap: (pages + 63) / 64 * 8))
    }
    print("  65535 mappings: map \(f(tMap * 1e9 / 65535, 0)) ns each; one query over all \(f(t * 1000, 2)) ms = \(f(t * 1e9 / 65535, 0)) ns per mapping")
    metric("ns_per_mapping_query", t * 1e9 / 65535)
}

/// Writes the pin-heavy trace the replay benchmark uses: the prelude of an
/// emulated container with a 4 GiB mapping and tracking on, then `n` events
/// of pins, unpins, dma_rw writes and a query every 1000, the device holding
/// at most 65536 pages. Returns the count.
@discardableResult
func writePinHeavyTrace(_ path: String, events n: Int) throws -> Int {
    var x: UInt64 = 0x2545F4914F6CDD1D
    let w = try TraceWriter(path: path, header: TraceHeader(captureMode: "bench"))
    let prelude: [EventBody] = [
        .open(Open(path: "/dev/vfio/vfio", result: .ok(3))),
        .open(Open(path: "/dev/vfio/20", result: .ok(4))),
        .groupSetContainer(GroupSetContainer(fd: 4, container: 3, kind: .emulated, result: .ok(0))),
        .setIOMMU(SetIOMMU(fd: 3, iommuType: 3, result: .ok(0))),
        .groupGetDeviceFD(GroupGetDeviceFD(fd: 4, name: "mdev0", result: .ok(5))),
        .mapDMA(MapDMA(fd: 3, iova: 0, size: 1 << 32, result: .ok(0))),
        .dirtyPages(DirtyPages(fd: 3, flags: 1, result: .ok(0))),
    ]
    var seq: UInt64 = 0
    for b in prelude { try w.append(Event(seq: seq, b)); seq += 1 }
    // The pages pinned and not yet unpinned, as the device would hold them:
    // at most 65536 (256 MiB, a large vGPU's working set), so that the
    // engine's state stops growing and a longer trace measures the replay,
    // not a bigger pfn_list. A query's expected bitmap is left unstated
    // (its outcome is the engine's, not compared).
    let maxHeld = 65536
    var pinned: [UInt64] = []
    for i in 0..<n {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        let body: EventBody
        if i % 1000 == 999 {
            body = query(0, 1 << 32, bitmap: 1 << 17)
        } else if i % 3 == 2 || pinned.count >= maxHeld, let p = pinned.popLast() {
            body = .unpin(Unpin(group: 20, iova: p, npage: 1))
        } else if i % 7 == 6 {
            body = .dmaRW(DMARW(group: 20, iova: (x % (1 << 20)) * page + x % 4000, length: 64, write: true, result: .ok(0)))
        } else {
            let p = (x % (1 << 20)) * page
            pinned.append(p)
            body = .pin(Pin(group: 20, iova: p, npage: 1, result: .ok(1)))
        }
        try w.append(Event(seq: seq, time: seq * 1000, tid: 7, body))
        seq += 1
    }
    try w.close()
    return n + prelude.count
}

// Replay throughput on a pin-heavy trace, against decoding it alone.
if section("replay") {
    let dir = NSTemporaryDirectory() + "vfiotrace-engine-bench-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/pins.vft"
    let n = 1_000_000
    let total = Double(try writePinHeavyTrace(path, events: n))
    let reader = try TraceReader(path: path)
    let tDecode = try best(3) {
        var events = try reader.events()
        while try events.next() != nil {}
    }
    var divergent = 0
    let tReplay = try best(3) {
        var r = Replayer(backend: BitmapEngine(profile: .latest))
        divergent = 0
        var events = try reader.events()
        while let e = try events.next() {
            if r.step(e).diverged { divergent += 1 }
        }
    }
    precondition(divergent == 0, "the benchmark trace diverged \(divergent) times")
    print("  replay (pin-heavy, \(n) events): \(f(total / tReplay / 1e6)) M events/s; decode alone \(f(total / tDecode / 1e6)) M events/s; replay/decode time = \(f(tReplay / tDecode))")
    metric("replay_vs_decode", tReplay / tDecode)
}
