import Testing
@testable import Record
import TestSupport
import Trace

/// Writes ring-buffer pages as kernel/trace/ring_buffer.c lays them out:
/// u64 timestamp, u64 commit (data bytes | missed-event flags), data.
struct PageBuilder {
    var data: [UInt8] = []
    var timestamp: UInt64

    init(timestamp: UInt64) { self.timestamp = timestamp }

    mutating func word(_ v: UInt32) { for i in 0..<4 { data.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }

    /// A data record; small ones carry their length in type_len, others in
    /// a length word (type_len 0).
    mutating func event(delta: UInt32, _ payload: [UInt8], long: Bool = false) {
        var p = payload
        while p.count % 4 != 0 { p.append(0) }
        if long || p.count > 112 {
            word(delta << 5)
            word(UInt32(p.count + 4))
        } else {
            word(delta << 5 | UInt32(p.count / 4))
        }
        data += p
    }

    mutating func timeExtend(_ delta: UInt64) {
        word(UInt32(delta & (1 << 27 - 1)) << 5 | 30)
        word(UInt32(delta >> 27))
    }

    mutating func absolute(_ ts: UInt64) {
        word(UInt32(ts & (1 << 27 - 1)) << 5 | 31)
        word(UInt32(truncatingIfNeeded: ts >> 27))
    }

    mutating func padding(_ bytes: Int) {
        word(1 << 5 | 29)
        word(UInt32(bytes + 4)) // the kernel counts the length word too
        data += [UInt8](repeating: 0xee, count: bytes)
    }

    func page(missed: UInt64? = nil, storeCount: Bool = true, commitExtra: Int = 0, size: Int = 4096) -> [UInt8] {
        var commit = UInt64(data.count + commitExtra)
        var body = data
        if let missed {
            commit |= RingBufferPage.missedEvents
            if storeCount {
                commit |= RingBufferPage.missedStored
                for i in 0..<8 { body.append(UInt8(truncatingIfNeeded: missed >> (8 * UInt64(i)))) }
            }
        }
        var p: [UInt8] = []
        for i in 0..<8 { p.append(UInt8(truncatingIfNeeded: timestamp >> (8 * UInt64(i)))) }
        for i in 0..<8 { p.append(UInt8(truncatingIfNeeded: commit >> (8 * UInt64(i)))) }
        p += body
        return p + [UInt8](repeating: 0, count: max(0, size - p.count))
    }
}

@Suite("Trace ring-buffer pages")
struct RingBufferTests {
    @Test("every record kind: deltas, time extensions, absolute stamps, long records, padding")
    func recordKinds() {
        var b = PageBuilder(timestamp: 1_000_000)
        b.event(delta: 5, [1, 2, 3, 4, 5, 6, 7, 8])
        b.timeExtend(3 << 27 + 17)
        b.event(delta: 2, [9, 9, 9, 9], long: true)
        b.padding(12)
        b.absolute(0x0123_4567_89ab)
        b.event(delta: 1, Array(repeating: 7, count: 200))
        let page = RingBufferPage(b.page())
        #expect(page.damage == nil)
        #expect(page.missedBefore == nil)
        let extended: UInt64 = 1_000_005 + (3 << 27 + 17) + 2
        let afterAbsolute: UInt64 = 0x0123_4567_89ab + 1
        #expect(page.records.map(\.time) == [1_000_005, extended, afterAbsolute])
        #expect(page.records[0].data == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(page.records[1].data == [9, 9, 9, 9])
        #expect(page.records[2].data == Array(repeating: 7, count: 200))
    }

    @Test("an absolute stamp takes its top five bits from the current time")
    func absoluteHighBits() {
        var b = PageBuilder(timestamp: 0x0800_0000_0000_0100)
        b.absolute(0x0000_0000_0000_0200)
        b.event(delta: 0, [1, 1, 1, 1])
        #expect(RingBufferPage(b.page()).records.map(\.time) == [0x0800_0000_0000_0200])
    }

    @Test("lost events before a page: counted when the kernel stored the count")
    func missed() {
        var b = PageBuilder(timestamp: 10)
        b.event(delta: 1, [1, 2, 3, 4])
        #expect(RingBufferPage(b.page(missed: 42)).missedBefore == 42)
        #expect(RingBufferPage(b.page(missed: 42, storeCount: false)).missedBefore == 0)
        #expect(RingBufferPage(b.page(missed: 42)).records.count == 1)
    }

    @Test("a page whose sizes do not add up keeps the records before the damage")
    func damaged() {
        var b = PageBuilder(timestamp: 10)
        b.event(delta: 1, [1, 2, 3, 4])
        b.word(1 << 5 | 0)
        b.word(4000) // a long record running far past the data
        let page = RingBufferPage(b.page())
        #expect(page.records.count == 1)
        #expect(page.damage?.contains("runs past the data") == true)
        let short = RingBufferPage(b.page(commitExtra: 8000, size: 64))
        #expect(short.damage?.contains("arrived") == true)
        #expect(RingBufferPage([1, 2, 3]).damage != nil)
    }

    @Test("random bytes never crash or hang the page reader")
    func fuzz() {
        var rng = SplitMix(seed: 7)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 300)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n >= 16 { bytes[8] = UInt8(truncatingIfNeeded: n - 16); bytes[9] = 0; bytes[10] = 0; bytes[11] = 0 }
            let p = RingBufferPage(bytes)
            #expect(p.records.allSatisfy { $0.data.count <= n })
        }
    }
}
