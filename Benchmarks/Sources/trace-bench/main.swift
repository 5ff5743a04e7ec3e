// Trace codec throughput against the zstd CLI on the same bytes, in the same
// run, printed as ratios (a ratio is stable across machines; seconds are not).
//
//   write: TraceWriter (encode events + zstd -3 frames + index) vs `zstd -3`
//          compressing the same raw record bytes from a file;
//   read:  TraceReader (zstd frames + decode every event) vs `zstd -d` of the
//          zstd CLI's own output.
import BenchSupport
import Foundation
import Trace


func sh(_ args: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw NSError(domain: "bench", code: Int(p.terminationStatus)) }
}

/// A realistic mix: mostly pins/unpins and dma_rw from a few threads, queries
/// with small bitmaps, maps and unmaps.
func workload(_ n: Int) -> [Event] {
    var events: [Event] = []
    events.reserveCapacity(n)
    var t: UInt64 = 5_000_000_000
    var x: UInt64 = 0x2545F4914F6CDD1D
    for i in 0..<n {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        t += 800 + x % 4000
        let iova = 0x1_0000_0000 + (x % 262_144) * 4096
        let body: EventBody
        switch i % 16 {
        case 0: body = .dirtyPages(DirtyPages(fd: 3, argsz: 48, flags: 4,
                                              range: DirtyRange(iova: 0x1_0000_0000, size: 1 << 30, bitmap: BitmapArg(pgsize: 4096, size: 32768)),
                                              result: .ok(0), bitmapOut: BitmapBytes(byteCount: 32768, setBits: [Range(uncheckedBounds: (x % 1000, x % 1000 + 40))])))
        case 1: body = .mapDMA(MapDMA(fd: 3, iova: iova, size: 2 << 20, result: .ok(0)))
        case 2: body = .dmaRW(DMARW(group: 12, iova: iova + x % 4096, length: 64, write: true, result: .ok(0)))
        case 3, 4, 5: body = .unpin(Unpin(group: 12, iova: iova, npage: 1))
        default: body = .pin(Pin(group: 12, iova: iova, npage: 1, prot: 3, result: .ok(1)))
        }
        events.append(Event(seq: UInt64(i), time: t, tid: UInt32(4000 + i % 3), body))
    }
    return events
}

let n = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
let dir = NSTemporaryDirectory() + "vfiotrace-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }

let events = workload(n)
// The raw records, exactly as the writer frames them (one delta state per MiB).
var raw = ByteWriter(capacity: n * 16)
var codec = EventCodec()
for e in events {
    codec.encode(e, into: &raw)
    if raw.bytes.count % (1 << 20) < 24 { codec.reset() }
}
FileManager.default.createFile(atPath: dir + "/raw", contents: Data(raw.bytes))
let rawMB = Double(raw.bytes.count) / 1e6

let vft = dir + "/t.vft"
let tWrite = try best(3) {
    let w = try TraceWriter(path: vft, header: TraceHeader(captureMode: "bench"))
    for e in events { try w.append(e) }
    try w.close()
}
let tZstd = try best(3) { try sh(["zstd", "-3", "-q", "-f", dir + "/raw", "-o", dir + "/raw.zst"]) }
// The CLI's default reads and writes on a second thread (asynchronous I/O,
// zstd 1.5): on two cores it runs up to twice as fast when nothing else
// does. The same work on one thread, as vfiotrace's writer and reader do
// it, is the steadier comparison.
let tZstdSingle = try best(3) { try sh(["zstd", "-3", "-q", "-f", "--single-thread", dir + "/raw", "-o", dir + "/raw1.zst"]) }

var readCount = 0
let tRead = try best(3) {
    readCount = 0
    var events = try TraceReader(path: vft).events()
    while try events.next() != nil { readCount += 1 }
}
let tUnzstd = try best(3) { try sh(["zstd", "-d", "-q", "-f", dir + "/raw.zst", "-o", "/dev/null"]) }
let tUnzstdSingle = try best(3) { try sh(["zstd", "-d", "-q", "-f", "--no-asyncio", dir + "/raw.zst", "-o", "/dev/null"]) }
precondition(readCount == n, "read \(readCount) of \(n) events")

let vftSize = (try FileManager.default.attributesOfItem(atPath: vft)[.size] as? Int) ?? 0
let zstSize = (try FileManager.default.attributesOfItem(atPath: dir + "/raw.zst")[.size] as? Int) ?? 0
func f(_ v: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", v) }
print("trace-bench: \(n) events, \(f(rawMB, 1)) MB of raw records")
print("  size:  .vft \(vftSize) bytes (\(f(Double(vftSize) / Double(n))) B/event); zstd -3 of the raw records \(zstSize) bytes")
print("  write: vfiotrace \(f(rawMB / tWrite, 1)) MB/s (\(f(Double(n) / tWrite / 1e6)) M events/s); zstd -3 CLI \(f(rawMB / tZstd, 1)) MB/s; ratio vfiotrace/zstd = \(f(tZstd / tWrite))")
print("  read:  vfiotrace \(f(rawMB / tRead, 1)) MB/s (\(f(Double(n) / tRead / 1e6)) M events/s, decoded); zstd -d CLI \(f(rawMB / tUnzstd, 1)) MB/s; ratio vfiotrace/zstd = \(f(tUnzstd / tRead))")
print("  one thread: zstd -3 --single-thread \(f(rawMB / tZstdSingle, 1)) MB/s, ratio \(f(tZstdSingle / tWrite)); zstd -d --no-asyncio \(f(rawMB / tUnzstdSingle, 1)) MB/s, ratio \(f(tUnzstdSingle / tRead))")
metric("write_vs_zstd3", tZstd / tWrite)
metric("read_vs_zstd_d", tUnzstd / tRead)
metric("write_vs_zstd3_single_thread", tZstdSingle / tWrite)
metric("read_vs_zstd_d_no_asyncio", tUnzstdSingle / tRead)
