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

    @Test("rule `bitmap.clubbing`: words in holes are untouched, adjacent mappings share a word (clubbing), the last word is written whole")
    func clubbing() throws {
        // Pages: A = 0..9, B = 16..17, C = 256; prior 0xa5 everywhere. A
        // writes word 0, B ORs into it, C writes word 4, words 1-3 keep 0xa5.
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=40K -> ok
        map_dma iova=0x10000 size=8K -> ok
        map_dma iova=0x100000 size=4K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x1000 len=1 write -> ok
        dma_rw group=20 iova=0x11000 len=1 write -> ok
        dirty get iova=0x0 size=0x101000 prior=fill(0xa5) -> ok dirty=bytes(02,00,02,00*5,a5*24,00*8)
        """)
    }

    @Test("rule `bitmap.leftover-whole-word`: a shifted mapping's first word ORs in the caller's whole word (__bitmap_or works in words; the real kernels agree)")
    func leftoverWholeWord() throws {
        // A mapping at page 3 of the range: the caller's 0xa5 bytes of word 0
        // survive below the mapping and inside it too. The notes first said
        // only the bits below; Debian 6.1 and 6.12 keep the whole word
        // (corpora/lab-probes.vfs, corpora/real/, docs/kernel-rules.md#leftover-or).
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x3000 size=8K -> ok
        dirty start -> ok
        dirty get iova=0x0 size=20K prior=fill(0xa5) -> ok dirty=bytes(a5*8)
        """)
    }

    @Test("rule `bitmap.fault-part-way`: EFAULT part-way; mappings already reported lost their bits, later ones keep them")
    func faultPartWay() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=256K -> ok
        map_dma iova=0x40000 size=256K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x0 len=1 write -> ok
        dma_rw group=20 iova=0x40000 len=1 write -> ok
        dirty get iova=0x0 size=512K data=valid/8 -> EFAULT dirty=[0]
        dirty get iova=0x0 size=512K -> ok dirty=[64]
        """)
    }

    @Test("rule `bitmap.unmap-discards`: UNMAP without the bitmap discards dirty state; a re-MAP starts clean")
    func unmapDiscards() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x0 len=4K write -> ok
        unmap_dma iova=0x0 size=64K -> ok size=64K
        map_dma iova=0x0 size=64K -> ok
        dirty get iova=0x0 size=64K -> ok dirty=[]
        """)
    }

    @Test("rule `ioctl.unmap-not-tracking`, rule `pgsize.unmap-mismatch`, rule `ioctl.unmap-flag-combos`, rule `ioctl.unmap-size`, rule `ioctl.unmap-bisect`, rule `repop.unmap-reports-pinned`: UNMAP with the bitmap: checks, layout from unmap.iova, pinned pages unpinned and reported")
    func unmapWithBitmap() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x10000 size=64K -> ok
        unmap_dma iova=0x0 size=64K bitmap -> EINVAL
        dirty start -> ok
        unmap_dma iova=0x0 size=64K bitmap pgsize=8K -> EINVAL
        unmap_dma iova=0x0 size=64K bitmap argsz=47 -> EINVAL
        unmap_dma iova=0x0 size=64K bitmap bitmap_size=0 -> EINVAL
        unmap_dma iova=0x0 size=64K bitmap data=kernel -> EINVAL
        unmap_dma iova=0x0 size=64K flags=GET_DIRTY_BITMAP|VADDR bitmap -> EINVAL
        unmap_dma iova=0x0 size=64K flags=GET_DIRTY_BITMAP|ALL bitmap -> EINVAL
        unmap_dma iova=0x8000 size=64K bitmap -> EINVAL
        unmap_dma iova=0x0 size=96K bitmap -> EINVAL
        map_dma iova=0x0 size=4K -> EEXIST
        pin group=20 iova=0x13000 -> 1
        dma_rw group=20 iova=0x2000 len=1 write -> ok
        unmap_dma iova=0x0 size=128K bitmap -> ok size=128K dirty=[2,19]
        dirty get iova=0x0 size=128K -> ok
        map_dma iova=0x0 size=128K -> ok
        """)
    }

    @Test("rule `ioctl.unmap-fault` (docs/kernel-rules.md#unmap-with-bitmap): EFAULT part-way through UNMAP: earlier mappings are gone, unmap.size is not written back")
    func unmapFaultPartWay() throws {
        let steps = try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=256K -> ok
        map_dma iova=0x40000 size=256K -> ok
        dirty start -> ok
        unmap_dma iova=0x0 size=512K bitmap data=valid/8 -> EFAULT
        map_dma iova=0x0 size=256K -> ok
        map_dma iova=0x40000 size=256K -> EEXIST
        """)
        guard case .unmapDMA(let u) = steps[8].actual.body else { Issue.record("step 8 is not the unmap"); return }
        #expect(u.sizeOut == nil)
    }

    @Test("v16 unmapped with the bitmap flag while not tracking and skipped the bitmap; 5.8 says EINVAL",
          arguments: [(KernelProfile.v16, "ok size=64K"), (.v5_8, "EINVAL"), (.latest, "EINVAL")])
    func unmapBitmapNotTracking(profile: KernelProfile, outcome: String) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        unmap_dma iova=0x0 size=64K bitmap -> \(outcome)
        """, profile: profile)
    }

    @Test("docs/kernel-rules.md#delta-d6: UNMAP ALL and VADDR exist from 5.12", arguments: [(KernelProfile.v5_10, "EINVAL"), (.v5_12, "ok size=128K")])
    func unmapAll(profile: KernelProfile, outcome: String) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x100000 size=64K -> ok
        unmap_dma iova=0x0 size=0 flags=ALL -> \(outcome)
        """, profile: profile)
    }

    @Test("UNMAP VADDR invalidates without removing; pins wait with EBUSY (6.x) until MAP VADDR restores the mapping")
    func updateVaddr() throws {
        try Scenario.expectMatches(Scenario.iommu + """
        map_dma iova=0x0 size=64K -> ok
        map_dma iova=0x10000 size=64K -> ok
        unmap_dma iova=0x0 size=128K flags=VADDR -> ok size=128K
        unmap_dma iova=0x0 size=64K flags=VADDR -> EINVAL
        map_dma iova=0x0 size=4K -> EEXIST
        map_dma iova=0x0 size=64K flags=VADDR|READ -> EINVAL
        map_dma iova=0x0 size=32K flags=VADDR -> EINVAL
        map_dma iova=0x0 size=64K flags=VADDR -> ok
        map_dma iova=0x0 size=64K flags=VADDR -> EINVAL
        map_dma iova=0x40000 size=64K flags=VADDR -> ENOENT
        check_extension UPDATE_VADDR -> 1
        """)
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        unmap_dma iova=0x0 size=64K flags=VADDR -> EBUSY
        check_extension UPDATE_VADDR -> 0
        """)
    }

    @Test("the last group leaving removes every mapping; the container needs SET_IOMMU again")
    func lastGroupLeaves() throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        close fd=5 -> ok
        group_unset_container fd=4 -> ok
        map_dma iova=0x0 size=64K -> EINVAL
        group_set_container fd=4 container=3 kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x0 size=64K -> ok
        """)
    }

    @Test("v1 containers unmap whole mappings that start in the range and stop at one starting before it")
    func v1Unmap() throws {
        try Scenario.expectMatches("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 4
        group_set_container kind=emulated -> ok
        set_iommu TYPE1 -> ok
        map_dma iova=0x10000 size=64K -> ok
        map_dma iova=0x20000 size=64K -> ok
        unmap_dma iova=0x18000 size=64K -> ok size=0
        unmap_dma iova=0x10000 size=8K -> ok size=64K
        unmap_dma iova=0x20000 size=64K -> ok size=64K
        """)
    }

    @Test("rule `scope.detach-populates` (d0a78f91761f, docs/kernel-rules.md#delta-d5): detaching the IOMMU-backed group while tracking: 5.12+ reports all pages once more, earlier kernels lose them",
          arguments: [(KernelProfile.v16, "[1]"), (.v5_8, "[1]"), (.v5_10, "[1]"), (.v5_12, "[0..15]"), (.v5_17, "[0..15]"), (.v6_6, "[0..15]"), (.latest, "[0..15]")])
    func detachWhileTracking(profile: KernelProfile, afterDetach: String) throws {
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=64K -> ok
        dirty start -> ok
        pin group=20 iova=0x1000 -> 1
        dirty get iova=0x0 size=64K -> ok dirty=[1]
        open /dev/vfio/12 -> 6
        group_set_container fd=6 container=3 kind=iommu -> ok
        dirty get iova=0x0 size=64K -> ok dirty=[0..15]
        dirty get iova=0x0 size=64K -> ok dirty=[0..15]
        group_unset_container fd=6 -> ok
        dirty get iova=0x0 size=64K -> ok dirty=\(afterDetach)
        dirty get iova=0x0 size=64K -> ok dirty=[1]
        """, profile: profile)
    }

    @Test("rule `bitmap.scratch-residue`: scratch bits of a shifted query come back past the mapping's end on a later query (as on the real kernels)")
    func scratchResidue() throws {
        // A 70-page mapping at page 60 of the first range: shifted by 60, the
        // copy leaves bits 70..129 in the kernel bitmap; an aligned query of
        // the mapping alone then copies two words and shows bits 70..127,
        // past the range's end.
        let text = Scenario.emulated + """
        map_dma iova=0x100000 size=280K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x100000 len=280K write -> ok
        dirty get iova=0xc4000 size=0x82000 -> ok dirty=[60..129]
        dirty get iova=0x100000 size=280K -> ok dirty=[70..127]
        """
        try Scenario.expectMatches(text)
        // The residue lies outside every mapping: lenient comparison against
        // a clean expectation does not count it, strict does.
        let clean = text.split(separator: "\n").map { $0.hasSuffix("dirty=[70..127]") ? $0.dropLast(15) + "dirty=[]" : $0 }
            .joined(separator: "\n")
        let strict = try Scenario.replay(clean)
        #expect(strict.last!.diverged)
        let lenient = try Scenario.replay(clean, options: ComparisonOptions(strictOutsideMappings: false))
        #expect(!lenient.last!.diverged)
        guard case .bitmap(let d)? = lenient.last!.differences.first else { Issue.record("no bitmap difference"); return }
        #expect(d.inMappings.isEmpty)
        #expect(d.outsideMappings == [PageRun(pages: 70..<128, expectedDirty: false)])
    }

    @Test("docs/kernel-rules.md#pgsize-bitmap [analysis]: a domain with a larger smallest page changes the page size every check uses")
    func pageSizeChange() throws {
        var host = HostModel()
        host.domainPgsizeBitmap = 0x1_0000 | 0x20_0000
        try Scenario.expectMatches(Scenario.emulated + """
        map_dma iova=0x0 size=128K -> ok
        dirty start -> ok
        open /dev/vfio/12 -> 6
        group_set_container fd=6 container=3 kind=iommu -> ok
        dirty get iova=0x0 size=128K -> EINVAL
        dirty get iova=0x0 size=128K pgsize=64K -> ok dirty=[0..1]
        """, host: host)
    }

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
        check_extension DMA_CC -> 1
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
}
