import Testing
@testable import Trace

@Suite("Varints and record lengths, the writer's fast paths against the format")
struct ByteCodingTests {
    /// The LEB128 encoding, written the slow way: the reference.
    func leb128(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }

    @Test("every width of varint, 1 to 10 bytes, is LEB128 and reads back")
    func varintWidths() throws {
        var values: [UInt64] = [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, .max, .max - 1, 1 << 63]
        for shift in stride(from: 7, to: 64, by: 7) { values += [(1 << UInt64(shift)) - 1, 1 << UInt64(shift)] }
        var rng = SystemRandomNumberGenerator()
        values += (0..<200).map { _ in UInt64.random(in: 0 ... .max, using: &rng) >> UInt64.random(in: 0...63, using: &rng) }
        for v in values {
            var w = ByteWriter()
            w.u8(0xAA)
            w.varint(v)
            w.u8(0x55)
            #expect(w.bytes == [0xAA] + leb128(v) + [0x55], "\(v)")
            let back = w.bytes.withUnsafeBytes { raw -> (UInt64, Int)? in
                var r = ByteReader(raw, offset: 1)
                guard let x = try? r.varint() else { return nil }
                return (x, r.offset)
            }
            #expect(back?.0 == v && back?.1 == 1 + leb128(v).count, "\(v)")
        }
    }

    @Test("a length placeholder is filled in place below 128 bytes and widened at and above it, keeping what follows")
    func patchedLengths() {
        for n in [0, 1, 127, 128, 129, 16383, 16384, 70000] {
            var w = ByteWriter()
            w.u8(7)
            let at = w.bytes.count
            w.u8(0)
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            w.bytes.append(contentsOf: payload)
            w.patchLength(at: at)
            var reference = ByteWriter()
            reference.u8(7)
            reference.blob(payload)
            #expect(w.bytes == reference.bytes, "payload of \(n) bytes")
        }
    }
}
