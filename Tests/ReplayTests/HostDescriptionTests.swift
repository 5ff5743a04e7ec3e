import Testing
import Trace
@testable import Replay

/// Host description files (`--host FILE`, `vfiotrace host`): what they say
/// reaches the model, what the model prints reads back, and a wrong line is
/// refused at its place.
@Suite("Host descriptions")
struct HostDescriptionTests {
    @Test("every key printed reads back to the same host, for the defaults and for a host unlike them")
    func roundTrip() throws {
        var arm = HostModel()
        arm.pageSize = 64 << 10
        arm.domainPgsizeBitmap = 0x2001_0000
        arm.domainIOVARanges = [0...0x7fff_ffff, 0x1_0000_0000...0xffff_ffff_ffff]
        arm.domainEnforcesCacheCoherency = true
        arm.domainSupportsNesting = true
        arm.domainMapBeyondApertureErrno = .EINVAL
        arm.dmaEntryLimit = 1000
        arm.pinPagesMaxEntries = 8192
        for h in [HostModel(), arm] {
            let back = try HostModel(description: h.descriptionText, path: "h")
            #expect(back == h, "\(h.descriptionText)")
        }
        #expect(arm != HostModel())
    }

    @Test("a key not named keeps its default; comments and blank lines are ignored")
    func partial() throws {
        let h = try HostModel(description: "# only this\n\ndomain_nesting yes   # ARM SMMUv3\n  dma_entry_limit 0x10\n", path: "h")
        var want = HostModel()
        want.domainSupportsNesting = true
        want.dmaEntryLimit = 16
        #expect(h == want)
    }

    @Test("a wrong line is refused with the file, line and column of the word at fault",
          arguments: [
              ("page_size 4K\ncolour blue\n", "h:2:1: unknown key colour"),
              ("page_size 3000\n", "h:1:11: page_size must be a power of two"),
              ("dma_entry_limit 0x1ffffffff\n", "h:1:17: dma_entry_limit must fit 32 bits"),
              ("domain_nesting maybe\n", "h:1:16: domain_nesting: maybe is not yes or no"),
              ("domain_iova_ranges 0x0-0xfff 0x800-0x2000\n", "h:1:30: domain_iova_ranges: 0x800-0x2000 is not above"),
              ("domain_iova_ranges 0x10-0x1\n", "h:1:20: domain_iova_ranges: 0x10-0x1 ends before it starts"),
              ("domain_pgsizes\n", "h:1:15: domain_pgsizes takes one value"),
              ("domain_pgsizes 0x1000 0x2000\n", "h:1:23: domain_pgsizes takes one value"),
              ("domain_map_beyond_aperture EWHAT\n", "h:1:28: domain_map_beyond_aperture: EWHAT is not an errno"),
              ("pin_pages_max_entries 1\npin_pages_max_entries 2\n", "h:2:1: pin_pages_max_entries is given twice"),
              ("col\u{1b}[31mour red\n", "h:1:1: unknown key \"col\\x1b[31mour\""),
          ])
    func refused(_ text: String, _ message: String) {
        do {
            _ = try HostModel(description: text, path: "h")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix(message), "\(error.description)")
            #expect(!error.description.contains("\u{1b}"), "a control character reached the message")
        }
    }

    @Test("the host reaches the engine: with nesting, an IOMMU-backed group joins a TYPE1_NESTING container")
    func nestingHost() throws {
        let events = try TextParser.parse("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container container=3 kind=iommu -> ok
        set_iommu TYPE1_NESTING -> ok
        """).1
        func result(_ host: HostModel) -> CallResult? {
            BitmapEngine(host: host).outcomes(of: events).last.flatMap { if case .setIOMMU(let x) = $0.body { x.result } else { nil } }
        }
        #expect(result(HostModel()) == .error(.EINVAL))
        #expect(result(try HostModel(description: "domain_nesting yes\n", path: "h")) == .ok(0))
    }
}
