import Testing
@testable import Trace

@Suite("CRC-32C: the instruction and the table agree")
struct CRC32CTests {
    @Test("the standard check value, and the empty input")
    func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.tableChecksum($0) } == 0xE306_9283)
    }

    @Test("every length up to 300 bytes at every offset 0..15, and longer runs, give the table's result; a running seed continues it")
    func hardwareMatchesTable() {
        var rng = SystemRandomNumberGenerator()
        let buffer = (0..<9000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        buffer.withUnsafeBytes { all in
            var lengths = Array(0...300)
            lengths += [511, 512, 513, 4095, 4096, 4097, 8000]
            for offset in 0..<16 {
                for n in lengths {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    let reference = CRC32C.tableChecksum(slice)
                    #expect(CRC32C.checksum(slice) == reference, "length \(n) at offset \(offset)")
                    let cut = n / 3
                    let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slice[0..<cut]))
                    #expect(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slice[cut...]), seed: first) == reference,
                            "length \(n) split at \(cut)")
                }
            }
        }
    }

    @Test("this machine has the instruction (x86-64 with SSE4.2, or Armv8 CRC): the fast path is the one measured")
    func instructionPresent() {
        #if arch(x86_64) || arch(arm64)
        #expect(CRC32C.hardwareAvailable)
        #endif
    }
}
