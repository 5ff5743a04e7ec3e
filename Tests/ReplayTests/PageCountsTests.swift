import Testing
@testable import Replay

@Suite("PageCounts: the pin tables against a Dictionary")
struct PageCountsTests {
    @Test("random sets, increments and removals over few and many keys give a Dictionary's contents", arguments: [8, 64, 5000] as [UInt64])
    func againstDictionary(keySpace: UInt64) {
        var rng = SystemRandomNumberGenerator()
        var table = PageCounts()
        var reference: [UInt64: UInt32] = [:]
        for step in 0..<40_000 {
            // Page-aligned keys and a few unaligned ones, as pins have.
            let key = UInt64.random(in: 0..<keySpace, using: &rng) << 12 | (step % 7 == 0 ? 0x100 : 0)
            switch UInt8.random(in: 0..<4, using: &rng) {
            case 0, 1:
                table[key, default: 0] += 1
                reference[key, default: 0] += 1
            case 2:
                let v = reference[key].map { $0 > 1 ? $0 - 1 : nil } ?? nil
                table[key] = v
                reference[key] = v
            default:
                table[key] = nil
                reference[key] = nil
            }
            if step % 997 == 0 {
                #expect(table.count == reference.count)
                for (k, v) in reference { #expect(table[k] == v, "key \(k)") }
            }
        }
        var seen: [UInt64: UInt32] = [:]
        for (k, v) in table { seen[k] = v }
        #expect(seen == reference)
        #expect(table.minKey() == reference.keys.min())
        #expect(table[UInt64.max] == nil)
        table.removeAll()
        #expect(table.isEmpty && table.minKey() == nil && table[0] == nil)
    }
}
