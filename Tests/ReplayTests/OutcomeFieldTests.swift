import Testing
@testable import Replay
import Trace

/// Every scalar field the comparison knows is compared (issue 19 item 4):
/// an expectation that differs from the actual outcome in that field alone
/// is reported under the field's name, and the same line against itself
/// is not.
@Suite("Outcome fields: each one compared")
struct OutcomeFieldTests {
    static let info = "get_info argsz=256 -> ok argsz=256 flags=PGSIZES|CAPS pgsizes=0x40201000 cap_offset=24 cap=dma_avail@24:v1,next=0,avail=65535"

    /// (field, the expected line, the actual line): the same event, one field apart.
    static let cases: [(String, String, String)] = [
        ("result", "dirty start -> ok", "dirty start -> EINVAL"),
        ("unmap.size", "unmap_dma iova=0x100000 size=1M -> ok size=1M", "unmap_dma iova=0x100000 size=1M -> ok size=2M"),
        ("status flags", "group_get_status -> ok flags=VIABLE", "group_get_status -> ok flags=VIABLE|CONTAINER_SET"),
        ("info.argsz", info, info.replacingOccurrences(of: "-> ok argsz=256", with: "-> ok argsz=264")),
        ("info.flags", info, info.replacingOccurrences(of: "flags=PGSIZES|CAPS", with: "flags=PGSIZES")),
        ("info.iova_pgsizes", info, info.replacingOccurrences(of: "pgsizes=0x40201000", with: "pgsizes=0x1000")),
        ("info.cap_offset", info, info.replacingOccurrences(of: "cap_offset=24", with: "cap_offset=32")),
        ("info.cap[0]", info, info.replacingOccurrences(of: "avail=65535", with: "avail=65534")),
        ("argument out", "ioctl fd=6 kind=device req=0x3b6b arg=10000000 -> ok out=10000000",
         "ioctl fd=6 kind=device req=0x3b6b arg=10000000 -> ok out=1000000003000000"),
    ]

    static func event(_ line: String) throws -> Event {
        let prefix = "open /dev/vfio/vfio -> 3\nopen /dev/vfio/12 -> 4\n"
        return try TextParser.parse(prefix + line + "\n").1.last!
    }

    @Test("a wrong expectation in one field is reported under that field", arguments: cases)
    func reported(field: String, expected: String, actual: String) throws {
        let e = try Self.event(expected), a = try Self.event(actual)
        let names = OutcomeComparison.differences(expected: e, actual: a, coverage: []).compactMap { d -> String? in
            if case .field(let name, _, _) = d { return name }
            return nil
        }
        #expect(names == [field], "\(names)")
        #expect(OutcomeComparison.differences(expected: e, actual: e, coverage: []).isEmpty)
    }
}
