import Testing
import Trace
@testable import Replay

/// The host traits a trace states itself (HostModel.stated): taken only
/// from answers given while an IOMMU-backed group is attached, and then
/// used by the engine, so that a recording from another IOMMU replays.
@Suite("Host traits from the trace")
struct HostInferenceTests {
    static func events(_ text: String) throws -> [Event] { try TextParser.parse(text).1 }

    /// How many of `trace`'s events the engine answers otherwise on `host`.
    static func divergent(_ trace: [Event], on host: HostModel, profile: KernelProfile = .latest) -> Int {
        var r = Replayer(backend: BitmapEngine(profile: profile, host: host))
        return trace.filter { r.step($0).diverged }.count
    }

    @Test("page sizes, IOVA ranges and DMA_CC come from a domain's answers; before the domain, nothing is taken")
    func stated() throws {
        let (host, traits) = HostModel.stated(by: try Self.events("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container container=3 kind=iommu -> ok
        get_info fd=3 -> ok argsz=16 flags=PGSIZES pgsizes=0x1000 cap_offset=0
        set_iommu TYPE1v2 -> ok
        check_extension DMA_CC -> 1
        get_info -> ok argsz=104 flags=PGSIZES|CAPS pgsizes=0xfffffffffffff000 cap_offset=24 cap=migration@24:v1,next=56,flags=0,hole=0x0,pgsizes=0x1000,max=256M cap=dma_avail@56:v1,next=72,avail=65535 cap=iova_range@72:v1,next=0,ranges=0x0-0xfedfffff/0xfef00000-0xffffffffff
        """))
        #expect(host.domainPgsizeBitmap == 0xffff_ffff_ffff_f000)
        #expect(host.domainIOVARanges == [0...0xfed_fffff, 0xfef0_0000...0xff_ffff_ffff])
        #expect(host.domainEnforcesCacheCoherency)
        #expect(traits.count == 3, "\(traits)")
        // Without a domain (an emulated group only), the same answers say nothing of the host.
        let (plain, none) = HostModel.stated(by: try Self.events("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 4
        group_set_container container=3 kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        check_extension DMA_CC -> 1
        get_info -> ok argsz=16 flags=PGSIZES pgsizes=0xfffffffffffff000 cap_offset=0
        """))
        #expect(plain == HostModel() && none.isEmpty, "\(none)")
    }

    @Test("the engine with the stated host reproduces a host whose domain has every page size (as 5.10's intel-iommu)")
    func replaysAnotherHost() throws {
        let trace = try Self.events("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container container=3 kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        get_info argsz=16 -> ok argsz=120 flags=PGSIZES|CAPS pgsizes=0xfffffffffffff000 cap_offset=0
        check_extension DMA_CC -> 1
        map_dma iova=0x0 size=8K -> ok
        """)
        #expect(Self.divergent(trace, on: HostModel(), profile: .v6_6) == 2, "the lab's default host differs in page sizes and DMA_CC")
        #expect(Self.divergent(trace, on: HostModel.stated(by: trace).0, profile: .v6_6) == 0)
    }

    @Test("a domain that joins a TYPE1_NESTING container says the host has nesting; the engine then lets it join")
    func nesting() throws {
        let trace = try Self.events("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container container=3 kind=iommu -> ok
        set_iommu TYPE1_NESTING -> ok
        map_dma iova=0x0 size=8K -> ok
        unmap_dma iova=0x0 size=4K -> EINVAL
        """)
        let (host, traits) = HostModel.stated(by: trace)
        #expect(host.domainSupportsNesting && traits == ["nesting yes"], "\(traits)")
        // The lab's VT-d has none: the SET_IOMMU fails there, and the MAP after it (the partial UNMAP fails either way).
        #expect(Self.divergent(trace, on: HostModel()) == 2)
        #expect(Self.divergent(trace, on: host) == 0)
    }
}
