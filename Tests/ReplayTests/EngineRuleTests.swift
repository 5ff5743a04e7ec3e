import Testing
import Trace
@testable import Replay
#if canImport(Glibc)
import Glibc
#endif

/// The kernel rules of `docs/kernel-rules.md`, one scenario each (named after
/// the catalogue rule in corpora/rules that checks the same point), replayed on
/// the engine; where kernels differ, a table over the profiles.
@Suite("Engine: kernel rules (docs/kernel-rules.md)")
struct EngineRuleTests {
    static let spanProfiles: [KernelProfile] = [.v5_8, .v5_10, .v5_12, .v5_17, .v6_6, .latest]

    @Test("rule `ioctl.v1-container`: DIRTY_PAGES on a TYPE1 (v1) container is EACCES, before any other check")
    func v1Container() throws {
        try Scenario.expectMatches("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container kind=iommu -> ok
        set_iommu TYPE1 -> ok
        dirty start -> EACCES
        dirty flags=0x8 argsz=4 -> EACCES
        """)
    }

    @Test("rule `ioctl.argsz-short`, rule `ioctl.unknown-flags`, rule `ioctl.several-flags`, rule `ioctl.get-argsz`: argsz, unknown flags and more than one flag are EINVAL")
    func headerChecks() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        dirty start argsz=7 -> EINVAL
        dirty flags=0x8 -> EINVAL
        dirty flags=START|STOP -> EINVAL
        dirty flags=START|GET_BITMAP -> EINVAL
        dirty flags=START|STOP|GET_BITMAP -> EINVAL
        dirty start -> ok
        dirty get iova=0x0 size=64K argsz=47 -> EINVAL
        """)
    }

    @Test("rule `ioctl.flags-zero`: flags == 0 is ENOTTY on 5.8 (x86) and EINVAL from 5.9 (ccd59dce1a21, docs/kernel-rules.md#delta-d3)",
          arguments: [(KernelProfile.v16, ENOTTY), (.v5_8, ENOTTY), (.v5_10, EINVAL), (.v5_12, EINVAL), (.latest, EINVAL)])
    func flagsZero(profile: KernelProfile, errno: Int32) throws {
        try Scenario.expectMatches(Scenario.emulated + "dirty flags=0 -> \(ErrnoName.name(errno))\n", profile: profile)
    }

    @Test("rule `repop.start-twice-keeps`, rule `ioctl.stop-idle`, rule `ioctl.get-after-stop`, rule `repop.stop-start-fresh`: START twice keeps bits, STOP always 0, GET after STOP EINVAL, STOP+START keeps only pinned pages",
          arguments: spanProfiles)
    func startStop(profile: KernelProfile) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=1M -> ok
        dirty stop -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x5000 len=4K write -> ok
        dirty start -> ok
        dirty get iova=0x0 size=1M -> ok dirty=[5]
        pin group=20 iova=0x7000 -> 1
        dma_rw group=20 iova=0x9000 len=4K write -> ok
        dirty stop -> ok
        dirty stop -> ok
        dirty get iova=0x0 size=1M -> EINVAL
        dirty start -> ok
        dirty get iova=0x0 size=1M -> ok dirty=[7]
        """, profile: profile)
    }

    @Test("rule `size.start-int-max`, rule `size.start-int-max-exact`: START with a mapping over DIRTY_BITMAP_PAGES_MAX pages fails and leaves tracking off (INT_MAX-1 in v16)",
          arguments: [(KernelProfile.v16, "EINVAL"), (.v5_17, "ok"), (.latest, "ok")])
    func startPageLimit(profile: KernelProfile, intMaxPages: String) throws {
        // 2^31 - 1 pages (8 TiB - 4 KiB) is the largest bitmap from 5.8.
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=0x7fffffff000 -> ok
        dirty start -> \(intMaxPages)
        dirty stop -> ok
        map_dma iova=0x100000000000 size=8T -> ok
        dirty start -> EINVAL
        dirty get iova=0x0 size=4K -> EINVAL
        """, profile: profile)
    }

    @Test("rule `size.map-int-max`: MAP while tracking with more than INT_MAX pages is EINVAL and creates nothing")
    func mapPageLimitWhileTracking() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        dirty start -> ok
        map_dma iova=0x100000000000 size=8T -> EINVAL
        map_dma iova=0x100000000000 size=4K -> ok
        """)
    }

    @Test("rule `ioctl.get-not-tracking`, rule `ioctl.get-kernel-pointer`, rule `ioctl.get-fault`, rule `ioctl.get-empty-range`: tracking is checked before the buffer is touched; a bad buffer faults only with a mapping in range")
    func checkOrder() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty get iova=0x0 size=64K data=unmapped -> EINVAL
        dirty start -> ok
        dirty get iova=0x0 size=64K data=kernel -> EINVAL
        dirty get iova=0x0 size=64K data=unmapped -> EFAULT
        dirty get iova=0x0 size=64K data=readonly -> EFAULT
        dirty get iova=0x100000 size=64K data=null -> ok
        """)
    }

    @Test("rule `pgsize.get-zero`, rule `pgsize.get-smaller`, rule `pgsize.get-larger`, rule `pgsize.get-not-power-of-two`, rule `ioctl.get-unaligned`, rule `size.bitmap-zero`, rule `size.bitmap-too-small`, rule `size.cap-256mib`: page size, alignment, size and bitmap size bounds are EINVAL")
    func argumentChecks() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        dirty get iova=0x0 size=64K pgsize=0 bitmap_size=8 -> EINVAL
        dirty get iova=0x0 size=64K pgsize=2K -> EINVAL
        dirty get iova=0x0 size=64K pgsize=8K -> EINVAL
        dirty get iova=0x0 size=64K pgsize=0x3000 bitmap_size=8 -> EINVAL
        dirty get iova=0x800 size=64K -> EINVAL
        dirty get iova=0x0 size=0x10800 bitmap_size=8 -> EINVAL
        dirty get iova=0x0 size=64K bitmap_size=0 -> EINVAL
        dirty get iova=0x0 size=8M bitmap_size=255 -> EINVAL
        dirty get iova=0x0 size=64K bitmap_size=0x10000008 -> EINVAL
        dirty get iova=0x0 size=64K bitmap_size=0x10000000 -> ok
        """)
    }

    @Test("rule `ioctl.get-wrap`, rule `ioctl.unmap-top`, rule `size.largest-query`: a range ending at 2^64 is EINVAL for GET_BITMAP but fine for UNMAP; 8 TiB is the largest query")
    func rangeEnds() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0xfffffffffff00000 size=1M -> ok
        dirty start -> ok
        dirty get iova=0xfffffffffff00000 size=1M -> EINVAL
        dirty get iova=0x0 size=8T bitmap_size=256M -> ok
        dirty get iova=0x0 size=0x80000001000 bitmap_size=256M -> EINVAL
        unmap_dma iova=0xfffffffffff00000 size=1M bitmap -> ok size=1M dirty=[]
        """)
    }

    @Test("rule `ioctl.get-span`, rule `ioctl.get-bisect` (docs/kernel-rules.md#delta-d12): a span of whole mappings with holes (5.8+); ranges that bisect a mapping are EINVAL",
          arguments: spanProfiles)
    func spanQuery(profile: KernelProfile) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x20000 size=64K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x0 len=4K write -> ok
        dma_rw group=20 iova=0x2f000 len=4K write -> ok
        dirty get iova=0x8000 size=32K -> EINVAL
        dirty get iova=0x0 size=0x28000 -> EINVAL
        dirty get iova=0x0 size=256K -> ok dirty=[0,47]
        dirty get iova=0x0 size=64K -> ok dirty=[]
        dirty get iova=0x10000 size=64K -> ok
        """, profile: profile)
    }

    @Test("rule `ioctl.get-span` (docs/kernel-rules.md#delta-d12): the seed's v16 accepts only a range that is exactly one mapping, copied unshifted")
    func v16ExactQuery() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x20000 size=64K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x0 len=4K write -> ok
        dma_rw group=20 iova=0x2f000 len=4K write -> ok
        dirty get iova=0x0 size=256K -> EINVAL
        dirty get iova=0x10000 size=64K -> EINVAL
        dirty get iova=0x20000 size=64K -> ok dirty=[15]
        dirty get iova=0x0 size=64K -> ok dirty=[0]
        """, profile: .v16)
    }

    @Test("rule `ioctl.get-empty-range`: a range with no mapping returns 0 and leaves the buffer byte for byte")
    func emptyRangeUntouched() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        dirty get iova=0x100000 size=64K prior=fill(0xa5) -> ok dirty=fill(0xa5)
        """)
    }

    @Test("rule `repop.emulated-clean`, rule `bitmap.all-dirty`, rule `bitmap.map-while-tracking`: emulated-only reports nothing; an IOMMU-backed group makes every mapping all-dirty on every query, new ones too",
          arguments: KernelProfile.presets)
    func allDirtyScope(profile: KernelProfile) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        dirty get iova=0x0 size=64K -> ok dirty=[]
        """, profile: profile)
        try Scenario.expectMatches(Scenario.iommu + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        dirty get iova=0x0 size=64K -> ok dirty=[0..15]
        dirty get iova=0x0 size=64K -> ok dirty=[0..15]
        map_dma iova=0x10000 size=8K -> ok
        dirty get iova=0x10000 size=8K -> ok dirty=[0..1]
        """, profile: profile)
    }

    @Test("rule `repop.pinned-every-query`, rule `repop.unpin-once-more`, rule `repop.start-populates`, rule `repop.dma-rw-once`: pinned pages are reported on every query, dma_rw writes once, pins before START by the first query",
          arguments: spanProfiles)
    func repopulation(profile: KernelProfile) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=256K -> ok
        pin group=20 iova=0x3000 -> 1
        pin group=20 iova=0x3000 -> 1
        dirty start -> ok
        dirty get iova=0x0 size=256K -> ok dirty=[3]
        dma_rw group=20 iova=0x20000 len=8K write -> ok
        dirty get iova=0x0 size=256K -> ok dirty=[3,32..33]
        dirty get iova=0x0 size=256K -> ok dirty=[3]
        unpin group=20 iova=0x3000
        dirty get iova=0x0 size=256K -> ok dirty=[3]
        unpin group=20 iova=0x3000
        dirty get iova=0x0 size=256K -> ok dirty=[3]
        dirty get iova=0x0 size=256K -> ok dirty=[]
        """, profile: profile)
    }

    @Test("rule `repop.dma-rw-span` (2c5af98592f6, docs/kernel-rules.md#delta-d4): a dma_rw write sets every page it touched from 5.10; 5.8 sets copied>>pgshift bits",
          arguments: [(KernelProfile.v5_8, "[2]"), (.v5_10, "[0,2..3,15..16]"), (.latest, "[0,2..3,15..16]")])
    func dmaRWBits(profile: KernelProfile, expected: String) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x10000 size=64K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x10 len=1 write -> ok
        dma_rw group=20 iova=0x2800 len=4K write -> ok
        dma_rw group=20 iova=0x8000 len=8K read -> ok
        dma_rw group=20 iova=0xffff len=2 write -> ok
        dma_rw group=20 iova=0x30000 len=1 write -> EINVAL
        dirty get iova=0x0 size=128K -> ok dirty=\(expected)
        """, profile: profile)
    }

    @Test("a pin whose page starts below its mapping: the recorded outcome decides; held or made while tracking it is the kernel's out-of-bounds bitmap write, a hazard")
    func pinBelowMapping() throws {
        let below = Scenario.emulated + "map_dma iova=0x1c000 size=4K -> ok\n"
        func hazards(_ steps: [ReplayStep]) -> [Int] {
            steps.indices.filter { steps[$0].notes.contains { if case .hazard(let h) = $0 { h.contains("512 MiB past") } else { false } } }
        }
        // Nothing recorded, or EFAULT recorded: EFAULT, as where no memory is below.
        var steps = try Scenario.replay(below + "pin group=20 iova=0x1b100\n")
        guard case .pin(let p) = steps.last!.actual.body else { Issue.record("not a pin"); return }
        #expect(p.result == .error(.EFAULT))
        // Recorded as pinned (memory was there): the engine follows, no bit is set in the bitmap, no hazard untracked.
        steps = try Scenario.expectMatches(below + "pin group=20 iova=0x1b100 -> 1\n")
        #expect(hazards(steps).isEmpty)
        // Tracking started over the held pin: vfio_dma_populate_bitmap writes past the bitmap.
        steps = try Scenario.replay(below + "pin group=20 iova=0x1b100 -> 1\ndirty start -> ok\ndirty get iova=0x1c000 size=4K -> ok dirty=[]\n")
        #expect(hazards(steps) == [7, 8], "\(steps.map(\.notes))")
        // Pinned while tracking: the pin itself writes past it.
        steps = try Scenario.replay(below + "dirty start -> ok\npin group=20 iova=0x1b100 -> 1\n")
        #expect(hazards(steps) == [7], "\(steps.map(\.notes))")
        // A page across two mappings goes where vfio_find_dma's descent meets one first: with three
        // inserted in order, the middle one (the tree's root), below which the pin lands; by IOVA order it
        // would have been the first one's last page, and pinned.
        steps = try Scenario.replay(Scenario.emulated + """
        map_dma iova=0x200000 size=4K -> ok
        map_dma iova=0x201000 size=4K -> ok
        map_dma iova=0x300000 size=4K -> ok
        pin group=20 iova=0x200100

        """)
        guard case .pin(let straddling) = steps.last!.actual.body else { Issue.record("not a pin"); return }
        #expect(straddling.result == .error(.EFAULT))
        // Unmapped while it holds such a pin: the device cannot release it, the kernel BUGs.
        steps = try Scenario.replay(below + "pin group=20 iova=0x1b100 -> 1\nunmap_dma iova=0x1c000 size=4K -> ok size=4K\n")
        #expect(steps.last!.notes.contains { if case .hazard(let h) = $0 { h.contains("BUG_ON") } else { false } }, "\(steps.last!.notes)")
        // And it unpins like any pin: tracking then finds nothing below.
        steps = try Scenario.replay(below + "pin group=20 iova=0x1b100 -> 1\nunpin group=20 iova=0x1b100\ndirty start -> ok\n")
        #expect(hazards(steps).isEmpty)
    }

    @Test("a pinned page a later mapping also overlaps: the unpin is looked for there and lost, the page stays pinned, and its mapping's UNMAP is the kernel's BUG_ON")
    func pinLostToLaterMapping() throws {
        let pinned = Scenario.emulated + """
        map_dma iova=0x400000 size=4K -> ok
        pin group=20 iova=0x400100 -> 1

        """
        let later = "map_dma iova=0x401000 size=4K -> ok\nmap_dma iova=0x500000 size=4K -> ok\n"
        let queries = "dirty start -> ok\nunpin group=20 iova=0x400100\ndirty get iova=0x400000 size=4K\ndirty get iova=0x400000 size=4K\n"
        func lastQuery(_ steps: [ReplayStep]) -> BitmapBytes? {
            guard case .dirtyPages(let q) = steps.last(where: { if case .dirtyPages = $0.actual.body { true } else { false } })!.actual.body
            else { return nil }
            return q.bitmapOut
        }
        func bug(_ step: ReplayStep) -> Bool { step.notes.contains { if case .hazard(let h) = $0 { h.contains("BUG_ON") } else { false } } }
        // Without the later mappings the unpin finds the page: the second query after it reports nothing.
        var steps = try Scenario.replay(pinned + queries + "unmap_dma iova=0x400000 size=4K\n")
        #expect(lastQuery(steps)?.popcount == 0)
        #expect(!bug(steps.last!))
        // With them (the middle one the tree's root) it is lost: reported on every query, as on 6.1 and 6.12.
        steps = try Scenario.replay(pinned + later + queries + "unmap_dma iova=0x400000 size=4K\n")
        #expect(lastQuery(steps)?.popcount == 1)
        #expect(bug(steps.last!), "\(steps.last!.notes)")
        // The device closed instead of unpinning: its close_device unpins the same way, and loses it too.
        steps = try Scenario.replay(pinned + later + "close fd=5\nunmap_dma iova=0x400000 size=4K\n")
        #expect(bug(steps.last!), "\(steps.last!.notes)")
        // A pin the device still holds is released by its dma_unmap: no hazard.
        steps = try Scenario.replay(pinned + "unmap_dma iova=0x400000 size=4K\n")
        #expect(!bug(steps.last!), "\(steps.last!.notes)")
    }
}
