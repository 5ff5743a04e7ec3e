import Testing
import Trace
@testable import Replay
#if canImport(Glibc)
import Glibc
#endif

/// The kernel rules of `docs/kernel-rules.md` about containers, groups,
/// limits, pins and GET_INFO, continued from EngineRuleTests.
@Suite("Engine: container, group, pin and GET_INFO rules (docs/kernel-rules.md)")
struct EngineContainerRuleTests {
    @Test("containers and groups: SET_IOMMU needs a group, one open per group, EBUSY with devices open, the last group out releases the IOMMU")
    func containerAndGroups() throws {
        try Scenario.expectMatches("""
        open /dev/vfio/vfio -> 3
        set_iommu TYPE1v2 -> EINVAL
        map_dma iova=0x0 size=4K -> EINVAL
        check_extension TYPE1v2 -> 1
        check_extension DMA_CC -> 0
        open /dev/vfio/12 -> 4
        open /dev/vfio/12 -> EBUSY
        group_get_status fd=4 -> ok flags=VIABLE
        group_get_device_fd fd=4 name="0000:00:03.0" -> EINVAL
        group_set_container fd=4 container=3 kind=iommu -> ok
        group_set_container fd=4 container=3 kind=iommu -> EINVAL
        group_get_status fd=4 -> ok flags=VIABLE|CONTAINER_SET
        set_iommu 7 -> ENODEV
        set_iommu TYPE1v2 -> ok
        set_iommu TYPE1v2 -> EINVAL
        check_extension DMA_CC -> ok
        map_dma iova=0xfee00000 size=4K -> EINVAL
        map_dma iova=0x0 size=4K vaddr=unmapped -> EFAULT
        map_dma iova=0x0 size=4K flags=0 -> EINVAL
        map_dma iova=0x0 size=6K -> EINVAL
        map_dma iova=0x0 size=4K vaddr=valid+0x10 -> EINVAL
        map_dma iova=0x0 size=4K -> ok
        map_dma iova=0x0 size=8K -> EEXIST
        group_get_device_fd fd=4 name="0000:00:03.0" -> 5
        group_unset_container fd=4 -> EBUSY
        close fd=5 -> ok
        group_unset_container fd=4 -> ok
        map_dma fd=3 iova=0x0 size=4K -> EINVAL
        close fd=9 -> EBADF
        """)
    }

    @Test("dma_entry_limit: the mapping after the limit is ENOSPC until one is unmapped")
    func mappingLimit() throws {
        var host = HostModel()
        host.dmaEntryLimit = 3
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=4K -> ok
        map_dma iova=0x2000 size=4K -> ok
        map_dma iova=0x4000 size=4K -> ok
        map_dma iova=0x6000 size=4K -> ENOSPC
        unmap_dma iova=0x2000 size=4K -> ok size=4K
        map_dma iova=0x6000 size=4K -> ok
        """, host: host)
    }

    @Test("pins: EINVAL without an open emulated device or mapping, EPERM on prot, E2BIG past 512 pages; an error unwinds the call's pins")
    func pinErrors() throws {
        try Scenario.expectMatches("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 4
        group_set_container kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x0 size=64K -> ok
        pin group=20 iova=0x0 -> EINVAL
        group_get_device_fd name="mdev0" -> 5
        map_dma iova=0x10000 size=8K flags=READ -> ok
        pin group=20 iova=0x10000 prot=WRITE -> EPERM
        pin group=20 iova=0x10000 prot=READ -> 1
        pin group=20 iova=0x0 npage=513 -> E2BIG
        pin group=20 iova=0x0 npage=0 -> EINVAL
        dirty start -> ok
        pin group=20 iova=0xf000 npage=4 prot=READ -> EINVAL
        dirty get iova=0x0 size=64K -> ok dirty=[15]
        dirty get iova=0x0 size=64K -> ok dirty=[]
        """)
    }

    @Test("GET_INFO: the migration capability (id 2, one page size, 256 MiB), DMA_AVAIL from 5.10, 8-byte alignment from 6.6",
          arguments: [(KernelProfile.v5_8, UInt32(56), [UInt32]()), (.v5_10, 68, [56]), (.v5_17, 68, [56]), (.v6_6, 72, [56])])
    func getInfo(profile: KernelProfile, needed: UInt32, dmaAvailAt: [UInt32]) throws {
        let steps = try Scenario.replay(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        get_info argsz=16
        get_info argsz=200
        """, profile: profile)
        guard case .getInfo(let short) = steps[6].actual.body, case .getInfo(let full) = steps[7].actual.body,
              let si = short.info, let fi = full.info else { Issue.record("no info"); return }
        #expect(si.argsz == needed && si.capOffset == 0 && si.caps.isEmpty)
        #expect(fi.argsz == 200 && fi.capOffset == 24 && fi.flags == 3 && fi.iovaPgsizes == ~0xFFF)
        #expect(fi.caps.first?.id == 2)
        #expect(fi.caps.first?.body == .migration(flags: 0, hole: 0, pgsizeBitmap: 4096, maxDirtyBitmapSize: 1 << 28))
        #expect(fi.caps.dropFirst().map(\.offset) == dmaAvailAt)
        #expect(fi.caps.dropFirst().first?.body == (dmaAvailAt.isEmpty ? nil : .dmaAvail(65534)))
        #expect(steps[7].notes.contains(.unspecified(.migrationCapHole)) == !profile.migrationCapHoleZeroed)
    }

    @Test("GET_INFO on an IOMMU-backed container lists the domain's page sizes and IOVA ranges last")
    func getInfoIOMMU() throws {
        let steps = try Scenario.replay(Scenario.iommu + "get_info argsz=200\n")
        guard case .getInfo(let x) = steps[4].actual.body, let info = x.info else { Issue.record("no info"); return }
        #expect(info.iovaPgsizes == 0x4020_1000)
        #expect(info.caps.map(\.id) == [2, 3, 1])
        #expect(info.caps.map(\.offset) == [24, 56, 72])
        #expect(info.caps.last?.body == .iovaRanges([IOVARange(start: 0, end: 0xfedf_ffff),
                                                     IOVARange(start: 0xfef0_0000, end: 0x7f_ffff_ffff)]))
    }

    @Test("docs/kernel-rules.md#delta-d7 (2bed2ced40c9): before 5.17 freeing a vmalloc'd bitmap is a host-corruption hazard the engine reports",
          arguments: [(KernelProfile.v5_12, true), (.v5_17, false)])
    func kfreeHazard(profile: KernelProfile, hazard: Bool) throws {
        let steps = try Scenario.replay(Scenario.emulated + """
        map_dma iova=0x0 size=256G -> ok
        dirty start -> ok
        dirty stop -> ok
        """, profile: profile)
        #expect(steps.last!.notes.contains { if case .hazard = $0 { return true }; return false } == hazard)
        #expect(steps.last!.diverged == hazard)
    }

    /// The kernel allocates `DIRTY_BITMAP_BYTES(npages) + sizeof(u64)` with
    /// `kvzalloc`, which takes vmalloc above `KMALLOC_MAX_SIZE` (4 MiB on
    /// x86_64); `kfree` of it is the hazard. 0x1ffffc0000 bytes of 4 KiB
    /// pages is a 4 MiB − 8 bitmap, 4 MiB with its extra word; 128 GiB is
    /// one word more.
    @Test("the pre-5.17 kfree hazard starts one word past a 4 MiB allocation (profile 5.8)",
          arguments: [("0x1ffffc0000", false), ("0x2000000000", true)])
    func kfreeHazardEdge(size: String, hazard: Bool) throws {
        let steps = try Scenario.replay(Scenario.emulated + """
        map_dma iova=0x0 size=\(size) -> ok
        dirty start -> ok
        dirty stop -> ok
        """, profile: .v5_8)
        #expect(steps.last!.notes.contains { if case .hazard = $0 { return true }; return false } == hazard, "\(steps.last!.notes)")
    }
}

@Suite("Kernel events cut short by a signal")
struct InterruptedKernelEventTests {
    @Test("a pin or dma_rw the kernel ended with EINTR (its task was killed) is skipped as not modelled, and changes nothing")
    func interrupted() throws {
        let text = Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        pin group=20 iova=0x1000 -> EINTR
        dma_rw group=20 iova=0x2000 len=4K write -> EINTR
        dirty get iova=0x0 size=64K -> ok dirty=[]

        """
        let steps = try Scenario.expectMatches(text)
        var summary = ReplaySummary()
        for s in steps { summary.add(s) }
        #expect(summary.notModelled == 2 && summary.divergent == 0 && summary.firstUnreplayable == nil, "\(summary.line())")
    }
}
